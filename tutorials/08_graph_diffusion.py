"""Tutorial 8: graph diffusion on molecular graphs and on crystals, with
property-guided sampling.

Run it as a script (defaults take about ten minutes on a 2-core CPU):

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python tutorials/08_graph_diffusion.py

The same backbone (``graph-diffusion``) trains on two domains through the
graph view: molecular graphs (``molgraph``: atom types with charges as node
categories, bond orders as edge categories, hydrogens implicit, kekulized)
and crystals (element types, fractional coordinates with wrapped-normal
noise, lattice parameters with Gaussian noise). The crystal model is
conditioned on Perov-5's heat of formation (``heat_ref``), dropped 10 % of
the time in training, so one model samples with or without a condition and
classifier-free guidance strengthens the condition.

Command-line equivalents:

    molgen train --domain molgraph --backbone graph-diffusion --data qm9-train --max-minutes 20 --out runs/qm9
    molgen sample runs/qm9 -n 10000 -o qm9.smi --steps 100
    molgen train --domain crystal --backbone graph-diffusion --data perov-5-train --config crystal.toml --out runs/perov
    molgen sample runs/perov -n 1000 -o perov_cifs --condition heat_ref=0.6 --guidance 1

(``crystal.toml`` holds ``[model] conditions = ["heat_ref"]``.)

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_STEPS    training steps per model (default 2000)
    MOLGEN_TUTORIAL_SAMPLES  samples per call (default 500)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-08)
"""
# needs: data mirror (MOLGEN_DATA_MIRROR); the tutorial test skips it without one

import os
from pathlib import Path

import numpy as np

from molgen.backbones import load_generator
from molgen.workflows import RunConfig, run_training

steps = int(os.environ.get("MOLGEN_TUTORIAL_STEPS", 2000))
n_samples = int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 500))
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-08"))
out.mkdir(parents=True, exist_ok=True)
small = steps < 100  # the test suite's settings: a narrow model
width = dict(d_node=32, d_edge=16, d_global=32, n_layers=1, n_heads=2) if small else {}

# 1. Molecular graphs: QM9 (heavy atoms only) from the data mirror.
config = RunConfig.model_validate(dict(
    domain="molgraph", backbone="graph-diffusion", seed=0,
    data=dict(source="qm9-train", limit=2000 if small else 20_000),
    model=dict(width, sampling_steps=10 if small else 100),
    train=dict(batch_size=128, lr=1e-3, warmup_steps=min(100, steps), max_steps=steps, progress=False),
))
summary = run_training(config, out / "qm9")
model = load_generator(summary.model_dir)
print(f"molgraph model: {summary.n_parameters:,} parameters, node types {model.domain.graph_spec().node_types}")

molecules = model.sample(n_samples, seed=0)  # None where the graph is not a valid molecule
valid = [m for m in molecules if m is not None]
keys = {model.domain.key(m) for m in valid}
print(f"{len(valid) / n_samples:.1%} valid, {len(keys) / max(len(valid), 1):.1%} unique")
(out / "qm9_samples.smi").write_text("\n".join(model.sample_texts(n_samples, seed=0)) + "\n")

# 2. Crystals conditioned on the heat of formation (Perov-5).
config = RunConfig.model_validate(dict(
    domain="crystal", backbone="graph-diffusion", seed=0,
    data=dict(source="perov-5-train", limit=100 if small else None),
    model=dict(width, conditions=["heat_ref"], condition_dropout=0.1, sampling_steps=10 if small else 100),
    train=dict(batch_size=128, lr=1e-3, warmup_steps=min(100, steps), max_steps=steps, progress=False),
))
crystal_model = load_generator(run_training(config, out / "perov").model_dir)
domain = crystal_model.domain


def mean_density(structures) -> float:
    """Mean density (g/cm3) of the valid structures."""
    values = [s.density for s in structures if s is not None]
    return float(np.mean(values)) if values else float("nan")


for label, condition, guidance in [("unconditional", None, 0.0), ("heat_ref=0.6", {"heat_ref": 0.6}, 1.0), ("heat_ref=2.2", {"heat_ref": 2.2}, 1.0)]:
    crystals = crystal_model.sample(n_samples, seed=0, condition=condition, guidance=guidance)
    valid = [c for c in crystals if c is not None]
    print(f"{label:14s} {len(valid) / n_samples:.1%} valid, mean density {mean_density(valid):.2f} g/cm3")

# Valid crystals as CIF files (score them with `molgen evaluate <folder>`).
cif_dir = out / "perov_cifs"
cif_dir.mkdir(exist_ok=True)
for i, crystal in enumerate(crystal_model.sample(min(n_samples, 20), seed=1, condition={"heat_ref": 0.6}, guidance=1.0)):
    if crystal is not None:
        (cif_dir / f"sample_{i:03d}.cif").write_text(domain.export(crystal))
print(f"CIFs in {cif_dir}")
