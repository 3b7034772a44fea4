"""Tutorial 9: a self-contained HTML report of generated molecules. Sample
the shipped ZINC250k prior, then write one HTML file with the validity and
uniqueness of the samples, their MW/logP/QED/SA distributions over those of
a reference set, and a grid of depictions. The file holds its styles and
images inline: mail it, attach it to a lab notebook, open it offline.

Run it as a script (about half a minute on a laptop CPU with the defaults):

    .venv/bin/python tutorials/09_report.py

The same from the command line:

    molgen sample zinc250k -n 1000 -o samples.smi
    molgen report samples.smi --reference nci-5k -o samples.html

`write_report` (and `molgen report`) also takes a training run directory
(loss curves, settings, model size), a `molgen evaluate` JSON report, an
optimize run directory (top-k and AUC against oracle calls, best molecules)
or a discover run directory (funnel per round, selected structures); it
tells them apart by their content.

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  molecules to sample (default 1000)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-09)
"""

import os
from pathlib import Path

from molgen.backbones.base import Generator
from molgen.pretrained import pretrained_dir
from molgen.report import write_report
from molgen.workflows import sample_to_file

n_samples = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 1000)), 1)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-09"))

# 1. Sample the shipped prior (safetensors + JSON inside the package) to a
#    .smi file; invalid samples are kept, marked in their name.
model = Generator.from_pretrained(pretrained_dir("zinc250k"))
stats = sample_to_file(model, n_samples, out / "samples.smi", seed=0)
print(f"{stats.n} samples, validity {stats.validity:.3f}, uniqueness {stats.uniqueness:.3f} -> {stats.path}")

# 2. The report. The reference is any data set name or file; nci-5k ships
#    inside RDKit (a seeded subset of at most 2,000 molecules is used, and its
#    properties are cached under MOLGEN_HOME for the next report).
summary = write_report(out / "samples.smi", out / "samples.html", reference="nci-5k",
                       title=f"ZINC250k prior: {n_samples} samples", max_depictions=24)
print(f"{summary.kind} report with {summary.n_images} images -> {summary.path}")
for heading in summary.sections:
    print(" -", heading)
