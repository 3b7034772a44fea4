"""Ask/tell campaigns: pending asks, idempotent and all-or-nothing tells,
exact budgets, restarts, learning from measurements, the batch selector and
the GP surrogate, and the ``molgen campaign`` commands."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import SMALL_SMILES
from rdkit import Chem
from rdkit.Chem import Descriptors

from molgen.cli.main import main
from molgen.core.errors import DataError
from molgen.loops.acquisition import select_batch
from molgen.loops.asktell import BudgetSpentError, ConflictError, UnknownIdError
from molgen.predictors.gaussian_process import TanimotoGP
from molgen.workflows.lab import new_campaign, open_campaign


def lab(smiles: str) -> float:
    """The simulated assay: the optimiser never sees it."""
    return float(Descriptors.MolLogP(Chem.MolFromSmiles(smiles)))


def make(tmp_path, **campaign):
    folder = tmp_path / "c"
    new_campaign(folder, {"generator": "zinc250k", "device": "cpu",
                          "campaign": {"budget": 40, "pool_size": 120, "seed": 0, **campaign}})
    return folder


def test_ask_tell_counts_duplicates_conflicts_and_budget(tmp_path):
    folder = make(tmp_path)
    with open_campaign(folder) as c:
        first = c.ask(16)
        assert len(first) == 16 and len({p.id for p in first}) == 16 and len({p.key for p in first}) == 16
        assert all(p.status == "pending" and p.why for p in first)
        # Partial, out of order, with one failure.
        report = c.tell([{"id": first[5].id, "value": 1.5}, {"id": first[2].id, "error": "did not dissolve"},
                         {"id": first[0].id, "value": "2.25"}])
        assert (report.recorded, report.failed, report.pending, report.measured) == (3, 1, 13, 2)
        # Repeated answers are ignored, never counted twice.
        again = c.tell([{"id": first[5].id, "value": 1.5}, {"id": first[2].id, "error": "another reason"}])
        assert (again.recorded, again.duplicates, again.measured) == (0, 2, 2)
        # A bad answer rejects the whole call: nothing of it is recorded.
        with pytest.raises(ConflictError, match=first[5].id):
            c.tell([{"id": first[1].id, "value": 0.0}, {"id": first[5].id, "value": 9.0}])
        with pytest.raises(UnknownIdError, match="nope"):
            c.tell([{"id": first[1].id, "value": 0.0}, {"id": "nope", "value": 1.0}])
        for bad, message in (({"id": first[1].id, "value": float("nan")}, "not finite"),
                             ({"id": first[1].id, "value": "abc"}, "must be a number"),
                             ({"id": first[1].id}, "value or an error"),
                             ({"id": first[1].id, "value": 1.0, "error": "x"}, "not both"),
                             ({"value": 1.0}, "missing id")):
            with pytest.raises(DataError, match=message):
                c.tell([bad])
        assert c.store.ask_counts() == {"pending": 13, "measured": 2, "failed": 1}
        assert c.store.count() == 3  # one candidates row per answer
        # Budget 40: 16 asked, so 24 more, then no more.
        assert len(c.ask(20)) == 20
        assert len(c.ask(20)) == 4
        with pytest.raises(BudgetSpentError):
            c.ask(1)
        assert c.remaining_budget() == 0


def test_request_id_replays_the_same_batch(tmp_path):
    folder = make(tmp_path)
    with open_campaign(folder) as c:
        a = c.ask(5, request="lab-42")
        b = c.ask(5, request="lab-42")
        assert [p.id for p in a] == [p.id for p in b]
        assert c.remaining_budget() == 35


def test_restart_keeps_state_and_never_reasks(tmp_path):
    folder = make(tmp_path, min_measurements=5)
    with open_campaign(folder) as c:
        batch = c.ask(12)
        c.tell([{"id": p.id, "value": lab(p.key)} for p in batch[:8]])
    with open_campaign(folder) as c:
        assert c.store.ask_counts() == {"pending": 4, "measured": 8, "failed": 0}
        second = c.ask(12)
        assert not {p.key for p in second} & {p.key for p in batch}
        assert all(p.predicted is not None and p.uncertainty is not None for p in second)  # the GP is in use (8 >= 5)
        assert "GP on 8 measurements" in second[0].why
        assert c.status()["learned_from"] == 8
        # Late answers for the first batch arrive after the second ask.
        c.tell([{"id": p.id, "value": lab(p.key)} for p in batch[8:]])
    with open_campaign(folder) as c:
        # The learned set survives the restart: the 8 are not learned again, the 4 late ones are next.
        assert len(c.checkpoint.learned) == 8
        c.ask(2)
        assert len(c.checkpoint.learned) == 12
        status = c.status()
        assert status["measured"] == 12 and status["pending"] == 14 and status["batches"] == 3
        assert status["best"]["value"] == max(lab(p.key) for p in batch)


def test_generator_learns_over_all_measurements_once_per_new_answers(tmp_path):
    folder = make(tmp_path, learn_steps=3)
    with open_campaign(folder) as c:
        calls = []
        learn = c.strategy.learn

        def spy(texts, keys, rewards):
            stats = learn(texts, keys, rewards)
            calls.append((list(keys), list(rewards), stats["loss"]))
            return stats

        c.strategy.learn = spy
        batch = c.ask(6)
        assert calls == []  # nothing measured yet: nothing to learn
        c.tell([{"id": p.id, "value": lab(p.key)} for p in batch[:4]])
        c.ask(2)
        assert len(calls) == 3 and all(len(keys) == 4 for keys, _, _ in calls)
        best = max(batch[:4], key=lambda p: lab(p.key)).key
        assert dict(zip(calls[0][0], calls[0][1]))[best] == 1.0  # rewards are ranks: the best measured gets 1
        assert calls[-1][2] < calls[0][2]  # the steps move the agent towards the measured ranking
        c.ask(2)
        assert len(calls) == 3  # no new answers: no update


def test_objective_filters_and_prescreen_apply_before_asking(tmp_path):
    objective = tmp_path / "cheap.toml"
    objective.write_text('[[components]]\ntype = "qed"\n\n[[filters]]\ntype = "molecular_weight"\nmax = 350\n')
    folder = tmp_path / "c"
    new_campaign(folder, {"generator": "zinc250k", "device": "cpu", "objective": str(objective),
                          "campaign": {"budget": 20, "pool_size": 150, "prescreen_fraction": 0.2}})
    with open_campaign(folder) as c:
        batch = c.ask(10)
    assert all(Descriptors.MolWt(Chem.MolFromSmiles(p.key)) <= 350 for p in batch)
    assert all(p.cheap_score is not None for p in batch)
    assert "pre-screened" in batch[0].why and "removed by the objective's filters" in batch[0].why
    # Cold start with a cheap score: the batch is its best (subject to the similarity cap).
    assert np.mean([p.cheap_score for p in batch]) > 0.7


def test_select_batch_spreads_picks():
    rng = np.random.default_rng(0)
    mean = np.array([1.0, 1.0, 0.9, 0.1])
    cov = np.array([[0.25, 0.25, 0.0, 0.0], [0.25, 0.25, 0.0, 0.0], [0.0, 0.0, 0.25, 0.0], [0.0, 0.0, 0.0, 0.25]])
    picks = [i for i, _ in select_batch(2, mean, cov, rng, "ucb", beta=2.0, noise=1e-6)]
    assert picks[0] in (0, 1) and picks[1] == 2  # the twin of the first pick lost its uncertainty
    picks = [i for i, _ in select_batch(2, mean, None, rng, "greedy")]
    assert sorted(picks) == [0, 1]
    similarity = np.array([[1, 0.9, 0.1, 0.1], [0.9, 1, 0.1, 0.1], [0.1, 0.1, 1, 0.1], [0.1, 0.1, 0.1, 1]])
    picks = [i for i, _ in select_batch(2, mean, None, rng, "greedy", similarity=similarity, max_similarity=0.7)]
    assert picks[1] == 2
    # The cap gives way once nothing else is left.
    assert len(select_batch(4, mean, None, rng, "greedy", similarity=similarity, max_similarity=0.05)) == 4
    with pytest.raises(ValueError, match="unknown"):
        select_batch(1, mean, None, rng, "best")


def test_gp_learns_and_knows_where_it_is_unsure():
    train = SMALL_SMILES[:10]
    y = np.array([lab(s) for s in train])
    gp = TanimotoGP().fit(train, y)
    mean, std = gp.predict(train)
    assert np.corrcoef(mean, y)[0, 1] > 0.9
    _, far = gp.predict(["FC(F)(F)C(F)(F)C(F)(F)C(F)(F)F"])
    assert far[0] > std.max()
    mean, cov = gp.posterior(train[:3], full_cov=True)
    assert cov.shape == (3, 3) and np.allclose(cov, cov.T)
    with pytest.raises(DataError, match="finite"):
        TanimotoGP().fit(train[:2], [1.0, float("nan")])
    with pytest.raises(DataError, match="not a molecule"):
        TanimotoGP().fit(["C1CC"], [1.0])


def test_cli_campaign_round_trip(tmp_path, capsys):
    folder = tmp_path / "c"
    assert main(["campaign", "new", "--budget", "30", "--pool-size", "100", "--device", "cpu", "--out", str(folder)]) == 0
    assert main(["campaign", "new", "--budget", "30", "--out", str(folder)]) == 2  # holds a campaign already
    batch = tmp_path / "batch.csv"
    assert main(["campaign", "ask", str(folder), "-n", "6", "-o", str(batch)]) == 0
    rows = list(csv.DictReader(batch.open()))
    assert len(rows) == 6 and {"id", "smiles", "why", "value", "error"} <= set(rows[0])
    for i, row in enumerate(rows):
        row["value"] = "" if i == 5 else f"{lab(row['smiles']):.4f}"  # the last one is still in the lab
        row["error"] = "degraded" if i == 4 else ""
        if i == 4:
            row["value"] = ""
    with (tmp_path / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    capsys.readouterr()
    assert main(["campaign", "tell", str(folder), str(tmp_path / "results.csv")]) == 0
    assert "recorded 5 answers (1 failed)" in capsys.readouterr().out
    assert main(["campaign", "tell", str(folder), str(tmp_path / "results.csv")]) == 0
    assert "0 answers (0 failed), 5 already recorded" in capsys.readouterr().out
    (tmp_path / "bad.csv").write_text("id,value\nb0001-006,inf\n")
    assert main(["campaign", "tell", str(folder), str(tmp_path / "bad.csv")]) == 2
    assert "row 2 (b0001-006)" in capsys.readouterr().err
    (tmp_path / "noid.csv").write_text("name,value\nx,1\n")
    assert main(["campaign", "tell", str(folder), str(tmp_path / "noid.csv")]) == 2
    assert main(["campaign", "ask", str(folder), "-n", "3", "-o", str(tmp_path / "b2.sdf")]) == 0
    supplier = [m for m in Chem.SDMolSupplier(str(tmp_path / "b2.sdf"))]
    assert len(supplier) == 3 and supplier[0].GetProp("_Name").startswith("b0002-")
    capsys.readouterr()
    assert main(["campaign", "status", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "asked 9 (4 pending, 4 measured, 1 failed)" in out and "21 left" in out
    assert main(["campaign", "report", str(folder), "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "Progress by batch" in html and "Pending in the lab" in html and "Failed measurements" in html
    assert main(["report", str(folder), "-o", str(tmp_path / "r2.html")]) == 0  # the generic report knows campaigns too
    assert main(["campaign", "ask", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.csv")]) == 2
