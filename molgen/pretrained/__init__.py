"""Models shipped inside the package (safetensors + JSON), found by name.

``zinc250k``: the autoregressive SMILES transformer trained on ZINC250k (the
prior data of the PMO benchmark) by ``benchmarks/train_zinc250k_prior.py``;
the default prior of ``molgen optimize``.

``perov5``: the autoregressive crystal-text transformer trained on the
registry's Perov-5 training split by ``benchmarks/bench_crystals.py`` (15 CPU
minutes; figures in ``benchmarks/RESULTS.md``); the default generator of
``molgen discover --preset photovoltaic``.
"""

from __future__ import annotations

from pathlib import Path

from molgen.core.paths import shipped_folder

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Shipped model name -> what it is.
PRETRAINED: dict[str, str] = {
    "zinc250k": "autoregressive SMILES transformer trained on ZINC250k (PMO's prior data)",
    "perov5": "autoregressive crystal-text transformer trained on the Perov-5 training split (15 CPU minutes)",
}


def pretrained_dir(name: str) -> Path:
    """Directory of a shipped model.

    Args:
        name: A key of :data:`PRETRAINED`.

    Returns:
        The model directory (``config.json`` + ``model.safetensors``).

    Raises:
        CheckpointError: unknown name (listing the shipped ones) or files
            missing from this installation.
    """
    return shipped_folder(name, PRETRAINED, DATA_DIR / name, "model.safetensors", "model")
