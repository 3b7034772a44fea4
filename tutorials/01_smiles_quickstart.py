"""Tutorial 1: train a SMILES generator, sample it, score what came out.

Run it as a script (defaults take about three minutes on a laptop CPU):

    .venv/bin/python tutorials/01_smiles_quickstart.py

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_STEPS    optimisation steps (default 1500)
    MOLGEN_TUTORIAL_SAMPLES  molecules to sample (default 1000)
    MOLGEN_TUTORIAL_OUT      run directory (default runs/tutorial-01)
"""

import os
from pathlib import Path

import torch

from molgen.backbones import AutoregressiveTransformer, Generator
from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.workflows import RunConfig, run_training, sample_to_file

steps = int(os.environ.get("MOLGEN_TUTORIAL_STEPS", 1500))
n_samples = int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 1000))
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-01"))

# 1. A domain knows what a valid molecule is and what "the same" means.
smiles = SmilesDomain()
aspirin = smiles.parse("CC(=O)Oc1ccccc1C(=O)O")
print("canonical key:", smiles.key(aspirin))
print("tokens:", smiles.tokenizer.tokenize("CC(=O)Oc1ccccc1C(=O)O"))
print("'C1CC' parses:", smiles.try_parse("C1CC") is not None)

# 2. Data sets are named (or a .smi/.csv path). nci-5k ships inside RDKit.
data = load_texts("nci-5k", smiles, limit=500, seed=0, canonicalize=True)
print(f"loaded {len(data.texts)} molecules from {data.path}")

# 3. Train: a run config is the same thing a TOML file passed to
#    `molgen train --config` holds.
config = RunConfig.model_validate(
    {
        "seed": 0,
        "data": {"source": "nci-5k", "limit": 2000},
        "model": {"d_model": 128, "n_layers": 3, "n_heads": 4},
        "train": {"batch_size": 64, "lr": 2e-3, "max_steps": steps, "warmup_steps": min(100, steps), "progress": False},
    }
)
summary = run_training(config, out)
print(f"trained {summary.n_parameters:,} parameters, validation loss {summary.result.val_loss:.3f}")

# 4. Load (safetensors + JSON, nothing unpickled) and sample reproducibly.
model = Generator.from_pretrained(summary.model_dir)
assert isinstance(model, AutoregressiveTransformer)
stats = sample_to_file(model, n_samples, out / "samples.csv", seed=0, temperature=1.0)
print(f"validity {stats.validity:.2f}, uniqueness {stats.uniqueness:.2f} -> {stats.path}")
same = model.sample_texts(5, generator=torch.Generator().manual_seed(1))
assert same == model.sample_texts(5, generator=torch.Generator().manual_seed(1))

# 5. Exact log-likelihoods, e.g. to rank candidates.
candidates = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"]
scores = model.log_likelihood(model.make_batch(candidates, on_unknown="unk"))
for smi, ll in zip(candidates, scores.tolist()):
    print(f"log p({smi}) = {ll:.1f}")
