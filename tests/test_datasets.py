"""datasets/: registry, mirror, checksums, readers, subsampling, bad input."""

from __future__ import annotations

import gzip

import pytest
from conftest import SMALL_SMILES, needs_mirror

from molgen.core.errors import DataError, RegistryError
from molgen.datasets import (
    DatasetSpec,
    load_texts,
    read_records,
    register_dataset,
    resolve_dataset_file,
)
from molgen.domains.smiles import SmilesDomain


@pytest.fixture
def domain():
    return SmilesDomain()


def test_smi_file_with_names_header_and_comments(tmp_path, domain):
    path = tmp_path / "mols.smi"
    path.write_text("SMILES Name\n# a comment\nCCO ethanol\n\nc1ccccc1\tbenzene\n")
    loaded = load_texts(str(path), domain)
    assert loaded.texts == ["CCO", "c1ccccc1"]
    assert loaded.lines == [3, 5]


def test_csv_file_finds_smiles_column(tmp_path, domain):
    path = tmp_path / "mols.csv"
    path.write_text("id,smiles,score\n1,OCC,0.5\n2,c1ccncc1,0.1\n")
    loaded = load_texts(str(path), domain, canonicalize=True)
    assert loaded.texts == ["CCO", "c1ccncc1"]


def test_gzipped_file(tmp_path, domain):
    path = tmp_path / "mols.smi.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(SMALL_SMILES) + "\n")
    assert len(load_texts(str(path), domain).texts) == len(SMALL_SMILES)


def test_limit_is_a_seeded_subset_in_file_order(tmp_path):
    path = tmp_path / "many.smi"
    path.write_text("".join(f"{'C' * (i % 7 + 1)} m{i}\n" for i in range(1000)))
    a = read_records(path, limit=50, seed=1)
    b = read_records(path, limit=50, seed=1)
    c = read_records(path, limit=50, seed=2)
    assert [r.line for r in a] == [r.line for r in b] != [r.line for r in c]
    assert len(a) == 50 and [r.line for r in a] == sorted(r.line for r in a)
    assert max(r.line for r in a) > 500  # drawn from the whole file, not its head


def test_invalid_line_is_named_or_skipped(tmp_path, domain):
    path = tmp_path / "bad.smi"
    path.write_text("CCO\nC1CC\nc1ccccc1\n")
    with pytest.raises(DataError, match=r"bad.smi:2: unparsable SMILES 'C1CC'"):
        load_texts(str(path), domain)
    loaded = load_texts(str(path), domain, on_invalid="skip")
    assert loaded.texts == ["CCO", "c1ccccc1"] and loaded.skipped[0][0] == 2


def test_empty_missing_and_unknown_sources(tmp_path, domain):
    empty = tmp_path / "empty.smi"
    empty.write_text("")
    with pytest.raises(DataError, match="holds no entries"):
        load_texts(str(empty), domain)
    with pytest.raises(DataError, match="file not found"):
        load_texts(str(tmp_path / "missing.smi"), domain)
    with pytest.raises(RegistryError, match=r"unknown data set 'no-such-set'; valid names: .*moses-train"):
        load_texts("no-such-set", domain)
    with pytest.raises(DataError, match="no column 'smiles'"):
        csv = tmp_path / "x.csv"
        csv.write_text("a,b\n1,2\n")
        read_records(csv, column="smiles")


def test_nci_5k_ships_with_rdkit(domain):
    loaded = load_texts("nci-5k", domain, canonicalize=True)
    assert len(loaded.texts) == 4991 and len(loaded.skipped) == 8


def test_mirror_checksum_is_verified(tmp_path, monkeypatch, domain):
    mirror = tmp_path / "mirror"
    (mirror / "toy").mkdir(parents=True)
    (mirror / "toy" / "set.smi").write_text("CCO\n")
    register_dataset(
        DatasetSpec(name="toy-bad-checksum", domain="smiles", description="test", relpath="toy/set.smi", sha256="0" * 64, fmt="smi")
    )
    monkeypatch.setenv("MOLGEN_DATA_MIRROR", str(mirror))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_texts("toy-bad-checksum", domain)


def test_missing_local_copy_without_url_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGEN_DATA_MIRROR", str(tmp_path))
    spec = DatasetSpec(name="toy-nowhere", domain="smiles", description="test", relpath="toy/none.smi")
    with pytest.raises(DataError, match="not available locally; set MOLGEN_DATA_MIRROR"):
        resolve_dataset_file(spec)


@needs_mirror
def test_moses_test_subset_from_mirror(domain):
    loaded = load_texts("moses-test", domain, limit=300, seed=0)
    assert len(loaded.texts) == 300
    assert all(domain.try_parse(t) is not None for t in loaded.texts)
