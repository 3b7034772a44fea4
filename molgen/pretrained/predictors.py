"""Property predictors shipped inside the package (safetensors + JSON), found
by name, so presets such as ``photovoltaic`` and the peptide metrics work
without a training run.

Each is a folder of ``molgen/pretrained/data/predictors/`` in the one saved
predictor format (:mod:`molgen.predictors.registry`). The Perov-5 models are
trained by ``benchmarks/bench_crystal_predictors.py --save`` on the registry's
Perov-5 training split, the AMP classifier by
``benchmarks/train_amp_classifier.py``, ``mp20-gap`` by
``bench_crystal_predictors.py --tasks mp20-gap --element-features descriptors+chgnet --save``; their held-out figures are in
``benchmarks/RESULTS.md`` and in each ``config.json``.
"""

from __future__ import annotations

from pathlib import Path

from molgen.core.paths import shipped_folder

DATA_DIR = Path(__file__).resolve().parent / "data" / "predictors"

#: Shipped predictor name -> what it predicts.
SHIPPED_PREDICTORS: dict[str, str] = {
    "perov5-gap": "CGCNN metal/non-metal classifier + non-metal gap regressor for Perov-5 direct GLLB-SC gaps (eV)",
    "perov5-ind-gap": "the same model for Perov-5 indirect GLLB-SC gaps (eV), for the direct-gap preference",
    "perov5-heat": "CGCNN regressor of the Perov-5 heat of formation heat_all (eV per 5-atom cell)",
    "mp20-gap": "CGCNN metal/non-metal classifier + non-metal gap regressor for MP-20 binary/ternary PBE band gaps (eV); "
                "element descriptors + CHGNet's pretrained atom embedding, 3-member ensembles",
    "amp-classifier": "CNN + descriptor classifier of antimicrobial peptides (probability of being antimicrobial)",
}


def shipped_predictor_dir(name: str) -> Path:
    """Directory of a shipped predictor.

    Args:
        name: A key of :data:`SHIPPED_PREDICTORS`.

    Returns:
        The predictor directory.

    Raises:
        CheckpointError: unknown name (listing the shipped ones) or files
            missing from this installation.
    """
    return shipped_folder(name, SHIPPED_PREDICTORS, DATA_DIR / name.replace("-", "_"), "config.json", "predictor")


def predictor_dir(name_or_path: str | Path) -> Path:
    """A shipped predictor's directory for a shipped name, else the path itself.

    Args:
        name_or_path: A key of :data:`SHIPPED_PREDICTORS` or a directory.

    Returns:
        The directory to load from.
    """
    return shipped_predictor_dir(str(name_or_path)) if str(name_or_path) in SHIPPED_PREDICTORS else Path(name_or_path)
