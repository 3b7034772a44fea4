"""Regenerate ``molgen/metrics/data/magpie_scaler.json``: mean and standard
deviation of matminer's Magpie composition fingerprint over the training
split of ``mp20-biternary`` (a broad set of inorganic compositions), used to
standardise composition fingerprints in COV-R / COV-P whatever the reference.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/make_magpie_scaler.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from molgen.datasets import load_texts
from molgen.domains import CrystalDomain
from molgen.metrics.crystals import _featurizers


def main() -> None:
    domain = CrystalDomain()
    texts = load_texts("mp20-biternary-train", domain).texts
    _, magpie = _featurizers()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in texts:
            rows.append(magpie.featurize(domain.parse(text).composition))
    data = np.array(rows, dtype=float)
    out = Path(__file__).resolve().parents[1] / "molgen" / "metrics" / "data" / "magpie_scaler.json"
    out.write_text(
        json.dumps(
            {
                "source": "mp20-biternary-train (60/20/20 split, seed 42)",
                "n": len(texts),
                "features": magpie.feature_labels(),
                "mean": np.nanmean(data, 0).round(8).tolist(),
                "std": np.nanstd(data, 0).round(8).tolist(),
            },
            indent=1,
        )
    )
    print(f"wrote {out} from {len(texts)} compositions")


if __name__ == "__main__":
    main()
