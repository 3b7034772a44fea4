"""CDVAE-style crystal metrics, crystal data sets, and the crystal CLI path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SMALL_CRYSTALS, needs_mirror

from molgen.datasets import load_texts
from molgen.datasets.splits import split_indices
from molgen.domains.crystal import CrystalDomain
from molgen.metrics.crystals import (
    COVERAGE_PRESETS,
    CoverageCutoffs,
    CrystalEvalOptions,
    coverage,
    degenerate_cell,
    evaluate_crystals,
    fingerprint,
    novelty,
    uniqueness,
)


def test_split_indices_are_disjoint_complete_and_seeded():
    parts = split_indices(101, (0.6, 0.2, 0.2), seed=42)
    joined = np.concatenate(list(parts.values()))
    assert sorted(joined.tolist()) == list(range(101))
    assert [len(p) for p in parts.values()] == [61, 20, 20]
    again = split_indices(101, (0.6, 0.2, 0.2), seed=42)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(split_indices(101, seed=1)["test"], parts["test"])


def test_coverage_by_hand():
    ref_s = np.array([[0.0, 0.0], [1.0, 1.0]])
    ref_c = np.array([[0.0], [10.0]])
    gen_s = np.array([[0.05, 0.0], [5.0, 5.0], [np.nan, np.nan]])
    gen_c = np.array([[0.5], [10.0], [np.nan]])
    missed: dict = {}
    cov = coverage(gen_s, gen_c, ref_s, ref_c, CoverageCutoffs(0.2, 1.0), details=missed)
    # reference 0 is recalled by generated 0; reference 1 by nothing (structure too far)
    assert cov["COV-R"] == pytest.approx(0.5)
    assert missed["uncovered_reference"] == [1]
    # one precise crystal out of three generated (the NaN one counts in the denominator)
    assert cov["COV-P"] == pytest.approx(1 / 3)


def test_uniqueness_and_novelty_use_structure_matching():
    domain = CrystalDomain()
    shifted = domain.augment(SMALL_CRYSTALS[1], np.random.default_rng(0))
    assert uniqueness([SMALL_CRYSTALS[1], shifted, SMALL_CRYSTALS[0]]) == pytest.approx(2 / 3)
    assert novelty([shifted, SMALL_CRYSTALS[2]], training=[SMALL_CRYSTALS[1]]) == pytest.approx(0.5)


def test_report_on_a_set_against_itself_and_bad_entries():
    generated = SMALL_CRYSTALS + ["not a crystal", "4.0 4.0 4.0\n90 90 90\nNa 0.00 0.00 0.00\nCl 0.01 0.00 0.00"]
    report = evaluate_crystals(
        generated, SMALL_CRYSTALS, SMALL_CRYSTALS, options=CrystalEvalOptions(cutoffs=COVERAGE_PRESETS["mp-20"]), cache_root=None
    )
    v = report.values
    n = len(generated)
    assert v["struct_valid"] == pytest.approx(len(SMALL_CRYSTALS) / n)
    assert v["valid"] == pytest.approx(len(SMALL_CRYSTALS) / n)
    assert v["COV-R"] == pytest.approx(1.0)  # every reference crystal is in the generated set
    assert v["COV-P"] == pytest.approx(len(SMALL_CRYSTALS) / n)
    assert v["wdist_density"] == pytest.approx(0.0, abs=1e-9)
    assert v["wdist_num_elems"] == pytest.approx(0.0)
    assert v["unique"] == pytest.approx(1.0) and v["novelty"] == pytest.approx(0.0)
    assert report.metadata["options"]["matcher"]["stol"] == 0.3
    assert report.metadata["reference"]["uncovered"] == []


def test_degenerate_cells_get_no_structure_fingerprint():
    domain = CrystalDomain()
    normal = domain.parse(SMALL_CRYSTALS[1])
    assert not degenerate_cell(normal)
    degenerate = [
        "150.4 0.2 0.8\n62 81 23\nTi 0.11 0.60 0.34",  # a 0.2 A lattice vector: each atom overlaps its image
        "205.0 272.8 320.3\n32 7 23\nCf 0.33 0.06 0.00",  # a cell with almost no volume
        "0.8 0.8 0.8\n90 90 90\nNa 0.00 0.00 0.00\nNa 0.25 0.25 0.25\nNa 0.50 0.50 0.50\nNa 0.75 0.75 0.75\n"
        "Na 0.50 0.00 0.00\nNa 0.00 0.50 0.00\nNa 0.00 0.00 0.50\nNa 0.50 0.50 0.00",  # denser than spheres can pack
    ]
    for text in degenerate:
        structure = domain.parse(text)
        assert degenerate_cell(structure), text
        struct_fp, comp_fp = fingerprint(structure)  # returns at once instead of running CrystalNN for minutes
        assert np.isnan(struct_fp).all() and np.isfinite(comp_fp).all()
    struct_fp, _ = fingerprint(normal)
    assert np.isfinite(struct_fp).all()


def test_report_with_nothing_valid_is_null_with_reasons():
    report = evaluate_crystals(["garbage", ""], SMALL_CRYSTALS[:2], None, cache_root=None)
    assert report.values["valid"] == 0.0
    assert report.values["unique"] is None and "no valid" in report.reasons["unique"]
    assert report.values["novelty"] is None
    assert report.metadata["reference"]["uncovered"] == [0, 1]  # nothing generated covers anything


@needs_mirror
def test_crystal_data_sets_split_and_expose_targets():
    domain = CrystalDomain()
    sizes = {}
    for split in ("train", "val", "test"):
        loaded = load_texts(f"carbon-24-{split}", domain)
        sizes[split] = len(loaded.texts)
        assert list(loaded.targets) == ["energy_per_atom"]
        assert len(loaded.targets["energy_per_atom"]) == len(loaded.texts)
    assert sizes == {"train": 1219, "val": 406, "test": 407}
    test_again = load_texts("carbon-24-test", domain, limit=5, seed=3)
    assert set(test_again.texts) <= set(load_texts("carbon-24-test", domain).texts)


def test_cli_trains_samples_and_evaluates_crystals(tmp_path, capsys):
    from molgen.cli.main import main

    data = tmp_path / "crystals.csv"
    import csv

    from molgen.domains.crystal import to_cif

    domain = CrystalDomain()
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif"])
        for i, text in enumerate(SMALL_CRYSTALS * 4):
            writer.writerow([i, to_cif(domain.parse(text))])
    run = tmp_path / "run"
    assert main(["train", "--domain", "crystal", "--data", str(data), "--max-steps", "3", "--no-progress", "--out", str(run)]) == 0
    # Unconstrained: an untrained model under the grammar writes parsable cells 0.5 A by 900 A wide, whose
    # neighbour analysis in the coverage metrics takes minutes (noted in the issue notes).
    assert main(["sample", str(run), "-n", "6", "--max-length", "40", "--no-constrained", "-o", str(tmp_path / "samples")]) == 0
    files = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert len(files) == 6 and all(f.endswith(".cif") or f.endswith(".invalid.txt") for f in files)
    assert main(["sample", str(run), "-n", "4", "--max-length", "40", "-o", str(tmp_path / "s.csv")]) == 0
    report = tmp_path / "report.json"
    assert main(["evaluate", str(tmp_path / "samples"), "--ref", str(data), "--no-cache", "-o", str(report)]) == 0
    out = json.loads(report.read_text())
    assert out["metadata"]["n_generated"] == 6 and "COV-R" in out["metrics"]
    assert main(["evaluate", str(data), "--ref", str(data), "--train", str(data), "--no-cache"]) == 0
    table = capsys.readouterr().out
    assert "novelty" in table and "24 generated crystals" in table


def test_crystal_files_bad_input_and_extxyz(tmp_path, capsys):
    import ase.io

    from molgen.cli.main import main
    from molgen.domains.crystal import iter_structure_texts, to_ase

    domain = CrystalDomain()
    frames = [to_ase(domain.parse(t)) for t in SMALL_CRYSTALS[:3]]
    xyz = tmp_path / "gen.extxyz"
    ase.io.write(xyz, frames, format="extxyz")
    texts = [text for _, text, _ in iter_structure_texts(xyz)]
    assert len(texts) == 3
    assert all(domain.same(domain.parse(a), domain.parse(b)) for a, b in zip(texts, SMALL_CRYSTALS[:3]))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", str(empty), "--no-cache"]) == 2
    assert "holds no crystal structures" in capsys.readouterr().err
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("cif\n\"data_x\n_cell_length_a abc\"\n\n")
    assert main(["evaluate", str(bad_csv), "--no-cache"]) == 0  # judged: an invalid crystal, not a crash
    assert "1 generated crystals, 0 valid" in capsys.readouterr().out
