"""Scoring oracle and latent-space optimisation on a tiny trained VAE."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_SMILES

from molgen.core.errors import MolgenError
from molgen.loops import optimize_latent
from molgen.scoring import Objective, Oracle, get_objective
from molgen.scoring.components import PropertyComponent


def test_oracle_counts_unique_objects_caches_and_records_failures(tmp_path):
    from molgen.domains import SmilesDomain

    domain = SmilesDomain()
    oracle = Oracle(get_objective("qed"), domain, budget=3)
    mols = [domain.parse(s) for s in ["CCO", "OCC", "c1ccccc1", "CCN", "CCCl"]]
    scores = oracle.score([mols[0], None, mols[1], mols[2], mols[3], mols[4]])
    assert oracle.calls == 3 and oracle.remaining == 0
    assert scores[0] == scores[2] and np.isnan(scores[1]) and np.isnan(scores[5])
    assert oracle.score([mols[0]])[0] == scores[0]  # cached, free
    assert oracle.best(1)[0][0] == "c1ccccc1"

    def broken(mol):
        raise RuntimeError("tool crashed")

    table = Objective([(PropertyComponent("broken", broken), 1.0), ("qed", 1.0)])(mols[:2] + [None])
    assert np.isnan(table.total).all()
    assert table.reasons[0] == "broken: RuntimeError: tool crashed" and table.reasons[2] == "invalid object"
    assert np.isfinite(table.raw["qed"][:2]).all()


@pytest.mark.parametrize("method", ["cmaes", "gradient"])
def test_latent_optimisation_beats_the_start_set_within_budget(tiny_vae, method):
    model, domain, _, _ = tiny_vae
    qed = get_objective("qed")
    scores = qed([domain.parse(s) for s in SMALL_SMILES]).total
    start = [SMALL_SMILES[i] for i in np.argsort(scores)[:4]]  # the four least drug-like
    oracle = Oracle(qed, domain, budget=40)
    result = optimize_latent(model, oracle, start, method=method, population=8, sigma=1.0, max_rounds=10, seed=0)
    assert result.oracle_calls == oracle.calls <= 40
    assert result.start_best == pytest.approx(max(scores[np.argsort(scores)[:4]]))
    assert result.best[0][1] > result.start_best + 0.1
    assert result.history[-1][1] == result.best[0][1]
    assert [b for _, b in result.history] == sorted(b for _, b in result.history)
    again = optimize_latent(model, Oracle(qed, domain, budget=40), start, method=method, population=8, sigma=1.0, max_rounds=10, seed=0)
    assert again.best == result.best


def test_latent_optimisation_rejects_bad_setups(tiny_vae):
    model, domain, _, _ = tiny_vae
    with pytest.raises(MolgenError, match="budget"):
        optimize_latent(model, Oracle(get_objective("qed"), domain), ["CCO"])
    with pytest.raises(MolgenError, match="could be scored"):
        optimize_latent(model, Oracle(get_objective("qed"), domain, budget=5), ["not a smiles"])
    with pytest.raises(MolgenError, match="unknown latent"):
        optimize_latent(model, Oracle(get_objective("qed"), domain, budget=5), ["CCO"], method="bayes")
