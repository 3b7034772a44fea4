"""Tutorial 4: peptides. Read FASTA, compute the physicochemical properties
used in antimicrobial-peptide design, score sequences with the shipped AMP
classifier, train the shared autoregressive backbone on AMPs and judge the
samples.

Run it as a script (a few minutes on a laptop CPU with the defaults; needs the
AMP file: MOLGEN_DATA_MIRROR=../shared/data):

    .venv/bin/python tutorials/04_peptides.py

The same from the command line:

    molgen train --domain protein --data amp-positive-train --max-minutes 10 --out runs/amp
    molgen sample runs/amp -n 5000 -o runs/amp/samples.fasta
    molgen evaluate runs/amp/samples.fasta        # vs amp-positive-test / amp-positive-train

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_STEPS    training steps (default 1000)
    MOLGEN_TUTORIAL_SAMPLES  sequences sampled (default 500)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-04)
"""

import json
import os
from pathlib import Path

from molgen.backbones.base import Generator
from molgen.datasets.fasta import read_fasta, write_fasta
from molgen.domains.protein import ProteinDomain
from molgen.metrics.peptides import evaluate_peptides
from molgen.predictors.peptides import AMPClassifier
from molgen.properties.peptides import peptide_properties
from molgen.workflows.training import RunConfig, run_training

steps = max(int(os.environ.get("MOLGEN_TUTORIAL_STEPS", 1000)), 1)
n_samples = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 500)), 4)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-04"))
out.mkdir(parents=True, exist_ok=True)
tiny = steps < 50

# 1. FASTA in and out; the residue policy says what happens to odd letters.
known = {"magainin 2": "GIGKFLHSAKKFGKAFVGEIMNS", "melittin": "GIGAVLKVLTTGLPALISWIKRKRQQ",
         "LL-37": "LLGDFFRKSKEKIGKEFKRIVQRIKDFLRNLVPRTES"}
write_fasta(out / "known.fasta", list(known.items()))
records = read_fasta(out / "known.fasta")
domain = ProteinDomain()
print("lowercase is upper-cased:", domain.parse("gigkflhs"))
print("selenocysteine mapped on request:", ProteinDomain(nonstandard="map").parse("ACUK"))

# 2. Properties and the AMP classifier.
classifier = AMPClassifier.load()
print("classifier held-out ROC-AUC:", classifier.metrics["test"]["roc_auc"])
for (name, seq), p in zip(records, classifier.predict_proba([s for _, s in records])):
    props = peptide_properties(seq)
    print(f"{name:11s} charge {props['charge_pH7']:+.1f}  muH {props['hydrophobic_moment']:.2f}  "
          f"Boman {props['boman_index']:.2f}  P(AMP) {p:.2f}")

# 3. Train the shared autoregressive backbone on antimicrobial peptides.
source = str(out / "known.fasta") if tiny else "amp-positive-train"
config = RunConfig.model_validate(dict(
    domain="protein", seed=0, data=dict(source=source, val_fraction=0.05),
    model=dict(d_model=32 if tiny else 128, n_layers=1 if tiny else 4, n_heads=4, dropout=0.1),
    train=dict(batch_size=8 if tiny else 64, lr=1e-3, max_steps=steps, warmup_steps=min(100, steps), progress=False),
))
summary = run_training(config, out / "run")
model = Generator.from_pretrained(summary.model_dir)
samples = model.sample_texts(n_samples, seed=0)
write_fasta(out / "samples.fasta", [(f"sample_{i}", s) for i, s in enumerate(samples)])

# 4. Judge the samples.
if tiny:
    reference = training = [s for _, s in records]
else:
    from molgen.datasets import load_texts

    reference = load_texts("amp-positive-test", domain).texts
    training = load_texts("amp-positive-train", domain).texts
report = evaluate_peptides(samples, reference, training, classifier=classifier)
print(report.format_table())
(out / "report.json").write_text(json.dumps(report.to_dict(), indent=1))
