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
# QM9 (heavy atoms only, as its SMILES are written): the whole file and a
# seeded 80/10/10 split for generation benchmarks (novelty against qm9-train).
for _split in (None, "train", "val", "test"):
    register_dataset(
        DatasetSpec(
            name="qm9" if _split is None else f"qm9-{_split}",
            domain="smiles",
            description="QM9 small molecules, <= 9 heavy atoms (mirror only)"
            + ("" if _split is None else f", {_split} split (80/10/10, seed 42)"),
            relpath="qm9/qm9.csv.gz",
            sha256="76ea10e891b9605a19eea3139785cca4e33171ba7a528822028fc621395d4922",
            fmt="csv",
            column="smiles",
            license="MIT",
            split=_split,
            split_fractions=(0.8, 0.1, 0.1),
        )
    )

# Crystal benchmarks of CDVAE (Xie et al. 2022) and MP-20 binary/ternary
# (WyckoffTransformer): one file each, split here with a seeded 60/20/20
# permutation (numpy default_rng(42); see molgen.datasets.splits). Every
# split is registered as "<name>-train", "<name>-val" and "<name>-test"; the
# bare name is the whole file.
_CRYSTALS = {
    "perov-5": (
        "perov_5/perov_5.csv.gz",
        "d14316ed821d0fd1ada7f3593d108392d2f519ebf896ed0f0a054e254da80c4e",
        "Perov-5 cubic perovskites (3,787; 5 atoms per cell)",
        ("heat_all", "heat_ref", "dir_gap", "ind_gap"),
        "https://github.com/txie-93/cdvae/tree/main/data/perov_5",
        "MIT",
    ),
    "carbon-24": (
        "carbon_24/carbon_24.csv.gz",
        "99cc575b379b5156ba0ef18b6b428da395ad28ea82e392ec7e1ab25eb387f52e",
        "Carbon-24 carbon polymorphs (2,032; 6-24 atoms per cell)",
        ("energy_per_atom",),
        "https://github.com/txie-93/cdvae/tree/main/data/carbon_24",
        "MIT",
    ),
    "mp20-biternary": (
        "mp20_biternary/mp20_biternary.csv.gz",
        "f0a1743241ade50592ce24dd3efc8b5e4d4d84c6a72e827c16699e83ce254f07",
        "binary and ternary MP-20 crystals (7,140; <= 20 atoms per cell)",
        ("formation_energy_per_atom", "band_gap", "e_above_hull"),
        "https://github.com/SymmetryAdvantage/WyckoffTransformer/tree/main/data/mp_20_biternary",
        "Apache-2.0",
    ),
}
for _name, (_rel, _sha, _desc, _targets, _url, _license) in _CRYSTALS.items():
    for _split in (None, "train", "val", "test"):
        register_dataset(
            DatasetSpec(
                name=_name if _split is None else f"{_name}-{_split}",
                domain="crystal",
                description=_desc if _split is None else f"{_desc}, {_split} split (60/20/20, seed 42)",
                relpath=_rel,
                url=None,  # mirror only: the upstream files are not single downloads
                sha256=_sha,
                fmt="csv",
                column="cif",
                license=_license,
                split=_split,
                targets=_targets,
            )
        )

# Antimicrobial peptides vs random UniProt sequences (modlamp's AMPvsUniProt):
# the file's first row ("5200,1,UniProt,AMP") is not a header, so the columns
# are named here. Splits are stratified by label (60/20/20, seed 42); the
# "amp-positive" sets are the label-1 rows of the same splits, so a generator
# trained on amp-positive-train never sees the classifier's test peptides.
for _split in (None, "train", "val", "test"):
    _suffix = "" if _split is None else f"-{_split}"
    _part = "" if _split is None else f", {_split} split (stratified 60/20/20, seed 42)"
    for _name, _filter, _what in (
        ("amp", None, "AMP-vs-UniProt peptides (2,600 AMPs, 2,600 random UniProt), label column 'label'"),
        ("amp-positive", ("label", "1"), "antimicrobial peptides of AMP-vs-UniProt (2,600)"),
    ):
        register_dataset(
            DatasetSpec(
                name=f"{_name}{_suffix}",
                domain="protein",
                description=_what + _part,
                relpath="amp/AMPvsUniProt.csv",
                sha256="e1db3dd659179118dcfca63723385f2f0c95c49d27060a90f7a9d5848250eb48",
                fmt="csv",
                column="sequence",
                column_names=("sequence", "label", "source", "kind"),
                license="BSD-3-Clause (modlamp 4.3.3 package data)",
                split=_split,
                stratify="label",
                row_filter=_filter,
                targets=("label",),
            )
        )

# Property-prediction sets (MoleculeNet as cleaned by chemprop, kinase
# bioactivity, docking scores, organic photovoltaics). Whole files: the
# predictor workflows split them (random or scaffold, seeded) themselves.
_PROPERTY_SETS = {
    "esol": ("moleculenet/delaney.csv", "887aa5930b0a7e7fcb76a2d25dc0ebe11c23878ca2d8d1e2204ca2c46b175140", "smiles",
             ("logp",), "ESOL aqueous solubility (1,128; column 'logp' holds log mol/L)", "MIT (chemprop data)"),
    "freesolv": ("moleculenet/freesolv.csv", "97d74c86228d4c16c0fbbf063bb8280354d8152db09a85ade8517a2f43bd9824", "smiles",
                 ("freesolv",), "FreeSolv hydration free energies (642; kcal/mol)", "MIT (chemprop data)"),
    "lipo": ("moleculenet/lipo.csv", "aa9bd9669188e35efd908758a75561bba402016d901fed2d0d949289abbcf31c", "smiles",
             ("lipo",), "Lipophilicity logD7.4 (4,200)", "MIT (chemprop data)"),
    "bace": ("moleculenet/bace.csv", "847be1e38d3798c60df03e1aaf2ccd0f09f9ed89407de78e80463aa637088532", "mol",
             ("Class",), "BACE-1 inhibitors, binary label 'Class' (1,513)", "MIT (chemprop data)"),
    "bbbp": ("moleculenet/BBBP.csv", "a61e17872cbec0743a6147dc802a1f7550acfe8dc1053f881f4c42a3ce2dc597", "smiles",
             ("p_np",), "blood-brain barrier penetration, binary label 'p_np' (2,039)", "MIT (chemprop data)"),
    "tox21": ("moleculenet/tox21.csv", "b58cc1f683e78e3c7a1bf7116e9aac0119804018d100f7b8cdb0857941c31aca", "smiles",
              ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE", "SR-ATAD5",
               "SR-HSE", "SR-MMP", "SR-p53"), "Tox21 12 toxicity assays, binary with missing labels (7,831)", "MIT (chemprop data)"),
    "hiv": ("moleculenet/HIV.csv.gz", "0a4a7390d6f22035c293e8e0d500655d76233b35f0f68ab128f3ceccdd97a297", "smiles",
            ("HIV_active",), "HIV replication inhibition, binary (41,127)", "MIT (chemprop data)"),
    "gsk3b": ("bioactivity/gsk3b_all.csv", "b521672ec2ee23ff9f96c05c4ff71c9863fab6900101ff44fec2280b40f68038", "smiles",
              ("gsk3",), "GSK3-beta inhibition, binary label 'gsk3' (52,802)", "MIT (multiobj-rationale data)"),
    "jnk3": ("bioactivity/jnk3_all.csv", "e5a7ec91e3ba8f91cff2bd01077f705f61329a13abf783a21d28933272c8b559", "smiles",
             ("jnk3",), "JNK3 inhibition, binary label 'jnk3' (50,390)", "MIT (multiobj-rationale data)"),
    "enamine10k-docking": ("docking/Enamine10k_scores.csv.gz", "8c6b43d80a7cbc4f4beea4dbfee1355b3c040950a39cd58324b3a1162771619e",
                           "smiles", ("score",), "Enamine 10k library with AutoDock Vina scores (MolPAL benchmark; lower binds better)",
                           "MIT (molpal data)"),
    "hopv15": ("opv/hopv.csv", "9b7ae265cd868839d741fb4bdbb7ccd7eb1542e10b3435c7f08aaaf7acd0ca8e", "smiles",
               ("HOMO", "LUMO", "electrochemical_gap", "optical_gap", "PCE", "V_OC", "J_SC", "fill_factor"),
               "HOPV15 organic photovoltaic molecules with measured PCE, HOMO, LUMO, gaps (350)", "CC-BY 4.0 (data)"),
}
for _name, (_rel, _sha, _column, _targets, _desc, _license) in _PROPERTY_SETS.items():
    register_dataset(
        DatasetSpec(
            name=_name,
            domain="smiles",
            description=_desc + " (mirror only)",
            relpath=_rel,
            sha256=_sha,
            fmt="csv",
            column=_column,
            targets=_targets,
            license=_license,
        )
    )
