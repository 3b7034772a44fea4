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
        optimize_latent(model, Oracle(get_objective("qed"), domain, budget=5), ["C1CC"])
    with pytest.raises(MolgenError, match="none of the 1 start texts fits"):
        optimize_latent(model, Oracle(get_objective("qed"), domain, budget=5), ["not a smiles"])
    with pytest.raises(MolgenError, match="unknown latent"):
        optimize_latent(model, Oracle(get_objective("qed"), domain, budget=5), ["CCO"], method="bayes")


@pytest.mark.parametrize("strategy", ["latent-cmaes", "latent-gradient"])
def test_molgen_optimize_runs_latent_search_on_a_vae_and_resumes(tiny_vae, tmp_path, strategy):
    import json
    import sqlite3

    from molgen.cli.main import main

    model, domain, _, _ = tiny_vae
    model_dir = model.save_pretrained(tmp_path / "vae")
    qed = get_objective("qed")
    scores = qed([domain.parse(s) for s in SMALL_SMILES]).total
    start_file = tmp_path / "start.smi"
    start_file.write_text("\n".join(SMALL_SMILES[i] for i in np.argsort(scores)[:4]) + "\n")
    run = tmp_path / "run"
    common = ["--out", str(run), "--no-progress"]
    settings = tmp_path / "settings.toml"
    settings.write_text("[campaign]\nmax_idle_steps = 12\n[strategy]\npatience = 4\n")
    assert main(["optimize", "--config", str(settings), "--prior", str(model_dir), "--strategy", strategy, "--objective", "qed", "--budget", "25",
                 "--batch-size", "8", "--sigma", "1.0", "--start", str(start_file), "--diversity-filter", "off", *common]) == 0
    first = json.loads((run / "summary.json").read_text())
    # The tiny VAE knows ~15 molecules, so the run ends idle before its budget; a
    # resume with a larger budget restores the search state and searches on.
    assert main(["optimize", "--resume", "--budget", "40", *common]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] > first["steps"] and summary["calls"] >= first["calls"]
    assert summary["strategy"] == strategy and summary["calls"] <= 40
    with sqlite3.connect(run / "candidates.sqlite") as con:
        rows = con.execute("SELECT call, key, total FROM candidates ORDER BY call").fetchall()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1)) and len({r[1] for r in rows}) == len(rows)
    assert summary["calls"] == len(rows) >= 8
    assert summary["top1"] > max(scores[np.argsort(scores)[:4]]) + 0.1  # beat the start set's best


def test_latent_strategy_needs_a_vae(tiny_prior_dir, tmp_path, capsys):
    from molgen.cli.main import main

    code = main(["optimize", "--prior", str(tiny_prior_dir), "--strategy", "latent-cmaes", "--objective", "qed",
                 "--budget", "10", "--out", str(tmp_path / "r"), "--no-progress"])
    assert code == 2 and "needs a VAE" in capsys.readouterr().err


def test_bad_strategy_settings_are_named(tmp_path):
    from molgen.core.errors import ConfigError
    from molgen.workflows.optimization import optimize

    cases = [({"kind": "ga"}, "does not match any of the expected tags: 'reinvent', 'latent'"),
             ({"kind": "latent", "method": "bayes"}, "strategy.latent.method"),
             ({"kind": "latent", "learning_rate": 1e-3}, "unknown key 'strategy.latent.learning_rate'")]
    for strategy, message in cases:
        with pytest.raises(ConfigError, match=message):
            optimize({"objective": "qed", "campaign": {"budget": 5}, "strategy": strategy}, tmp_path / "run")
