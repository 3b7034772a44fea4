"""loops/screen: batched active-learning screening of a fixed library with a
surrogate, acquisition functions, budget and resume."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from rdkit import RDConfig

from molgen.domains import SmilesDomain
from molgen.loops.acquisition import acquisition_scores
from molgen.loops.screen import ScreenConfig, screen
from molgen.scoring import Objective, Term, build_component


def _library(n=400):
    lines = open(f"{RDConfig.RDDataDir}/NCI/first_5K.smi").read().splitlines()
    return [line.split()[0] for line in lines[:n]]


class HeavyAtomSurrogate:
    """A surrogate that knows the objective up to noise (the loop, not the
    model, is under test here; learned predictors have their own tests)."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def fit(self, objs, y):
        self.fitted = len(objs)
        return self

    def predict(self, objs):
        mean = np.array([m.GetNumHeavyAtoms() for m in objs], dtype=float) + self.rng.normal(0, 2, len(objs))
        return mean, np.full(len(objs), 2.0)


def _objective():
    return Objective([Term(build_component("heavy_atoms", {}), 1.0)], name="size")


def _top_found(run_dir, library_values, fraction=0.05):
    with sqlite3.connect(run_dir / "candidates.sqlite") as con:
        keys = {k for (k,) in con.execute("SELECT key FROM candidates")}
    threshold = np.quantile(list(library_values.values()), 1 - fraction)
    top = {k for k, v in library_values.items() if v >= threshold}
    return len(top & keys) / len(top)


def test_acquisition_functions_rank_as_defined():
    rng = np.random.default_rng(0)
    mean, std = np.array([1.0, 0.9, 0.2, np.nan]), np.array([0.0, 0.5, 2.0, 1.0])
    assert np.argmax(acquisition_scores("greedy", mean, std, 1.0, rng)) == 0
    assert np.argmax(acquisition_scores("ucb", mean, std, 1.0, rng, beta=2.0)) == 2
    ei = acquisition_scores("ei", mean, std, 1.0, rng)
    assert ei[0] == 0.0 and ei[2] > ei[1] > 0 and ei[3] == -np.inf
    assert len(set(acquisition_scores("thompson", mean, std, 1.0, rng)[:3])) == 3
    with pytest.raises(ValueError, match="greedy"):
        acquisition_scores("best", mean, std, 1.0, rng)


def test_greedy_screen_beats_random_and_counts_the_budget(tmp_path):
    domain = SmilesDomain()
    library = _library() + ["not a smiles", "CCO", "OCC"]  # an invalid entry and a duplicate
    values = {domain.key(m): m.GetNumHeavyAtoms() for m in (domain.try_parse(t) for t in library) if m is not None}
    found = {}
    for kind in ("random", "greedy"):
        config = ScreenConfig(init_fraction=0.05, batch_fraction=0.05, rounds=3, acquisition=kind, seed=0)
        result = screen(library, domain, _objective(), HeavyAtomSurrogate, tmp_path / kind, config)
        n = len(values)
        assert result.invalid == 1 and result.calls == round(0.05 * n) * 4
        assert len(result.acquired) == len(set(result.acquired)) == result.calls
        assert [r["round"] for r in result.rounds] == [0, 1, 2, 3]
        found[kind] = _top_found(tmp_path / kind, values)
    assert found["greedy"] > found["random"] + 0.3, found


def test_screen_resumes_after_a_crashed_oracle(tmp_path):
    domain = SmilesDomain()
    library = _library(300)
    config = ScreenConfig(init_fraction=0.05, batch_fraction=0.05, rounds=3, acquisition="ucb", seed=1)
    reference = screen(library, domain, _objective(), HeavyAtomSurrogate, tmp_path / "whole", config)

    class Crashing:
        name = "size"

        def __init__(self):
            self.calls, self.inner = 0, _objective()

        def __call__(self, objs):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("cluster node lost")
            return self.inner(objs)

    with pytest.raises(RuntimeError, match="node lost"):
        screen(library, domain, Crashing(), HeavyAtomSurrogate, tmp_path / "crash", config)
    with sqlite3.connect(tmp_path / "crash" / "candidates.sqlite") as con:
        before = con.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
    assert before == 2 * round(0.05 * 300)
    resumed = screen(library, domain, _objective(), HeavyAtomSurrogate, tmp_path / "crash", config, resume=True)
    assert resumed.calls == reference.calls
    assert resumed.acquired == reference.acquired  # the same selections, nothing scored twice


def test_table_lookup_component_reads_values_by_canonical_smiles(tmp_path):
    from molgen.core.errors import ConfigError

    table = tmp_path / "scores.csv"
    table.write_text("smiles,score\nOCC,-5.5\nc1ccccc1,-7.0\nnot-a-smiles,1\nCCN,\n")
    component = build_component("table", {"source": str(table), "column": "score"}, name="dock")
    domain = SmilesDomain()
    values, reasons = component([domain.parse("CCO"), domain.parse("C1=CC=CC=C1"), domain.parse("CCC"), None])
    assert values[:2].tolist() == [-5.5, -7.0]
    assert np.isnan(values[2]) and "not in the lookup table" in reasons[2] and reasons[3] == "invalid object"
    with pytest.raises(ConfigError, match="no column 'energy'"):
        build_component("table", {"source": str(table), "column": "energy"})


def test_scaffold_split_keeps_scaffolds_apart():
    from molgen.datasets.splits import scaffold_split_indices
    from molgen.loops.diversity import scaffold_key

    domain = SmilesDomain()
    mols = [domain.try_parse(t) for t in _library(300)]
    scaffolds = [scaffold_key(m) for m in mols if m is not None]
    parts = scaffold_split_indices(scaffolds, (0.8, 0.1, 0.1), seed=0)
    assert sum(len(p) for p in parts.values()) == len(scaffolds)
    seen = {name: {scaffolds[i] for i in idx} for name, idx in parts.items()}
    assert not seen["train"] & seen["test"] and not seen["train"] & seen["val"] and not seen["val"] & seen["test"]
    assert len(parts["train"]) >= 0.75 * len(scaffolds)
    other = scaffold_split_indices(scaffolds, (0.8, 0.1, 0.1), seed=1)
    assert not np.array_equal(other["test"], parts["test"])
