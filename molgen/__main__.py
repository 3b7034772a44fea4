"""``python -m molgen``: the command line (what ``torchrun -m molgen train ...`` runs per rank)."""

import sys

from molgen.cli.main import main

sys.exit(main())
