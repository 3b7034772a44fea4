"""Tutorial 2: judge generated molecules with the MOSES and GuacaMol metrics.

Run it as a script (defaults take about a minute on a laptop CPU):

    .venv/bin/python tutorials/02_evaluate_molecules.py

It splits RDKit's embedded NCI set into a "training" set, a "reference" set
and a stand-in for generated molecules (a few corrupted on purpose), then
computes single metrics and the whole report. For a real model, sample it
(`molgen sample RUN -n 30000 -o gen.smi`) and run
`molgen evaluate gen.smi --jobs 2 -o report.json`, which compares with MOSES
test and train by default.

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  generated molecules (default 1000)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-02)
"""

import json
import os
from pathlib import Path

from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.metrics import (
    MoleculeSet,
    evaluate_molecules,
    internal_diversity,
    snn,
    validity,
)

n_generated = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 1000)), 10)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-02"))
out.mkdir(parents=True, exist_ok=True)

# 1. Data: nci-5k ships inside RDKit, so this needs no download.
nci = load_texts("nci-5k", SmilesDomain(), limit=3 * n_generated, seed=0).texts
training, reference, generated = nci[:n_generated], nci[n_generated : 2 * n_generated], nci[2 * n_generated :]
generated = generated + ["C1CC(", "not a molecule"]  # generators emit invalid strings too

# 2. Single metrics take SMILES lists (invalid entries allowed) ...
print(f"validity {validity(generated):.3f}, IntDiv {internal_diversity(generated):.3f}")

# ... or MoleculeSet objects, which compute fingerprints, fragments, descriptors
# and ChemNet activations once and share them between metrics.
gen_set, ref_set = MoleculeSet(generated), MoleculeSet(reference)
print(f"SNN to the reference {snn(gen_set, ref_set):.3f}")

# 3. The whole report. Reference and training statistics are cached under
# MOLGEN_HOME/metrics keyed by content, so the second call skips that work.
k = (10, n_generated)
report = evaluate_molecules(generated, reference, training, k=k, n_jobs=2)
print(report.format_table())
again = evaluate_molecules(generated, reference, training, k=k, n_jobs=2)
print(f"first {report.metadata['total_seconds']:.1f} s, second {again.metadata['total_seconds']:.1f} s "
      f"(cached: {', '.join(again.metadata['reference']['cache_hits'])})")

# Metrics that cannot be computed are None, with the reason (here unique@k for
# k larger than the number of valid molecules).
for name, reason in report.reasons.items():
    print(f"{name}: {reason}")
(out / "report.json").write_text(json.dumps(report.to_dict(), indent=2))
print(f"report: {out / 'report.json'}")
