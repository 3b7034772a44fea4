"""The data sets molgen knows by name. Checksums match the files of the
shared data mirror (``MOLGEN_DATA_MIRROR``)."""

from __future__ import annotations

from pathlib import Path

from molgen.datasets.registry import DatasetSpec, register_dataset


def _rdkit_nci_first_5k() -> Path:
    from rdkit import RDConfig  # located lazily: only this data set needs it

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


_MOSES_URL = "https://github.com/molecularsets/moses/raw/master/moses/dataset/data/{}.csv.gz"
_MOSES_SPLITS = {
    "train": ("1,584,663", "786f0313aa6b9ba5514df685f885742a70ea8d86f1a4fa48115f7f80a634265c"),
    "test": ("176,226", "f896fbf3764f88d94670b9959e5872c600c12152a18233823e820761b7a791b2"),
}
for _split, (_rows, _sha) in _MOSES_SPLITS.items():
    register_dataset(
        DatasetSpec(
            name=f"moses-{_split}",
            domain="smiles",
            description=f"MOSES {_split} split ({_rows} drug-like molecules)",
            relpath=f"moses/{_split}.csv.gz",
            url=_MOSES_URL.format(_split),
            sha256=_sha,
            fmt="csv",
            column="SMILES",
            license="MIT",
        )
    )
register_dataset(
    DatasetSpec(
        name="nci-5k",
        domain="smiles",
        description="first 5,000 NCI molecules shipped inside RDKit (no download; 8 unparsable lines skipped)",
        locate=_rdkit_nci_first_5k,
        fmt="smi",
        skip_invalid=True,
        license="public domain (NCI), distributed with RDKit (BSD-3-Clause)",
    )
)
register_dataset(
    DatasetSpec(
        name="zinc250k",
        domain="smiles",
        description="ZINC250k drug-like molecules (mirror only)",
        relpath="zinc250k/zinc250k.smi.gz",
        sha256="c603a8389eb545340b5fe11b53d9257384f9b2c9cc050bb2f23856e3f0266f12",
        fmt="smi",
        license="MIT",
    )
)
register_dataset(
    DatasetSpec(
        name="qm9",
        domain="smiles",
        description="QM9 small molecules (mirror only)",
        relpath="qm9/qm9.csv.gz",
        sha256="76ea10e891b9605a19eea3139785cca4e33171ba7a528822028fc621395d4922",
        fmt="csv",
        column="smiles",
        license="MIT",
    )
)
