"""Test set-up: an isolated MOLGEN_HOME and the shared data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets a private cache; the data mirror defaults to ../shared/data."""
    home = tmp_path_factory.getbasetemp() / "molgen_home"
    monkeypatch.setenv("MOLGEN_HOME", str(home))
    if not os.environ.get("MOLGEN_DATA_MIRROR") and DEFAULT_MIRROR.is_dir():
        monkeypatch.setenv("MOLGEN_DATA_MIRROR", str(DEFAULT_MIRROR))


def mirror_available() -> bool:
    """Whether the shared data mirror is reachable."""
    path = os.environ.get("MOLGEN_DATA_MIRROR") or str(DEFAULT_MIRROR)
    return (Path(path) / "moses" / "test.csv.gz").is_file()


needs_mirror = pytest.mark.skipif(not mirror_available(), reason="shared data mirror (MOLGEN_DATA_MIRROR) not found")

# Small hand-picked drug-like molecules for fast fixtures.
SMALL_SMILES = [
    "CCO",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "c1ccc2ccccc2c1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(O)c1ccccc1O",
    "C1CCNCC1",
    "Clc1ccc(Br)cc1",
    "C[C@@H](N)C(=O)O",
    "N#Cc1ccccc1",
    "CC(C)(C)OC(=O)N1CCC(CC1)C(=O)O",
    "c1ccncc1",
]

# Hand-built crystals in the compact text of the crystal domain (rock salt,
# perovskite, CsCl, diamond, fcc copper, wurtzite).
SMALL_CRYSTALS = [
    "4.0 4.0 4.0\n60 60 60\nNa 0.00 0.00 0.00\nCl 0.50 0.50 0.50",
    "3.9 3.9 3.9\n90 90 90\nO 0.00 0.50 0.50\nO 0.50 0.00 0.50\nO 0.50 0.50 0.00\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00",
    "4.1 4.1 4.1\n90 90 90\nCl 0.50 0.50 0.50\nCs 0.00 0.00 0.00",
    "3.8 3.8 3.8\n60 60 60\nSi 0.00 0.00 0.00\nSi 0.75 0.75 0.75",
    "3.6 3.6 3.6\n90 90 90\nCu 0.00 0.00 0.00\nCu 0.00 0.50 0.50\nCu 0.50 0.00 0.50\nCu 0.50 0.50 0.00",
    "3.2 3.2 5.2\n90 90 120\nO 0.33 0.67 0.38\nO 0.67 0.33 0.88\nZn 0.33 0.67 0.00\nZn 0.67 0.33 0.50",
]

# Well-known antimicrobial peptides (magainin 2, melittin, LL-37, indolicidin,
# cecropin A fragment, buforin II).
SMALL_PEPTIDES = [
    "GIGKFLHSAKKFGKAFVGEIMNS",
    "GIGAVLKVLTTGLPALISWIKRKRQQ",
    "LLGDFFRKSKEKIGKEFKRIVQRIKDFLRNLVPRTES",
    "ILPWKWPWWPWRR",
    "KWKLFKKIEKVGQNIRDGIIKAGPAVAVVGQATQIAK",
    "TRSSRAGLQFPVGRVHRLLRK",
]
