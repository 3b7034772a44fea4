"""Scoring through the executor layer: streamed files, ordered results, the
same scores from every executor, failures recorded (issue 33, item 3)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from _executor_tasks import square_after

from molgen.cli.main import main
from molgen.core.executors import ProcessPoolExecutor, SerialExecutor, TaskFailure, make_executor, ordered_map
from molgen.datasets.readers import iter_labeled, read_labeled

SMILES = ["CCO", "c1ccccc1O", "not_a_smiles", "CC(=O)Nc1ccc(O)cc1", "C1CC", "CCN(CC)CC", "O=C(O)c1ccccc1",
          "CCCCCCCC", "c1ccncc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "N#N", "OCC(O)CO"]


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_ordered_map_keeps_input_order_and_reads_a_window_at_a_time():
    taken = []

    def payloads():
        for i in range(10):
            taken.append(i)
            yield i, 0.05 * (i % 3 == 0)  # uneven durations: completion order differs from input order

    with ProcessPoolExecutor(2) as pool:
        results = []
        for value in ordered_map(pool, square_after, payloads(), window=4):
            results.append(value)
            assert len(taken) - len(results) < 4  # never more than a window read ahead
    assert results == [i * i for i in range(10)]
    with pytest.raises(ValueError, match="window"):
        list(ordered_map(SerialExecutor(), square_after, [], window=0))


def test_iter_labeled_streams_the_identifiers_read_labeled_gives(tmp_path):
    smi = tmp_path / "a.smi"
    smi.write_text("CCO ethanol\nc1ccccc1 benzene\nCC\n")
    table = tmp_path / "a.csv"
    table.write_text("Compound_ID,smiles\nm1,CCO\nm2,CCN\n")
    bare = tmp_path / "b.smi"
    bare.write_text("CCO\nCCN\n")
    for path in (smi, table, bare):
        stream, labeled = iter_labeled(path), read_labeled(path)
        pairs = list(stream)
        assert stream.id_name == labeled.id_name
        assert [r.text for r, _ in pairs] == [r.text for r in labeled.records]
        assert [i for _, i in pairs] == (labeled.ids or [None] * len(pairs))
    (tmp_path / "empty.smi").write_text("\n# nothing\n")
    with pytest.raises(Exception, match="holds no entries"):
        iter_labeled(tmp_path / "empty.smi")


@pytest.mark.parametrize("executor", ["process"])
def test_score_file_gives_the_same_table_from_every_executor(tmp_path, executor):
    from molgen.workflows.scoring import score_file

    source = tmp_path / "in.smi"
    source.write_text("".join(f"{s} mol{i}\n" for i, s in enumerate(SMILES)))
    serial = score_file(source, "qed", tmp_path / "serial.csv", chunk_size=5)
    parallel = score_file(source, "qed", tmp_path / "parallel.csv", executor=executor, workers=2, chunk_size=3)
    assert _rows(tmp_path / "serial.csv") == _rows(tmp_path / "parallel.csv")
    rows = _rows(tmp_path / "serial.csv")
    assert rows[0][:4] == ["id", "smiles", "valid", "score"]
    assert [r[0] for r in rows[1:]] == [f"mol{i}" for i in range(len(SMILES))]  # input order, identifiers kept
    bad = rows[1 + SMILES.index("not_a_smiles")]
    assert bad[2] == "0" and bad[3] == "" and bad[-1]  # invalid: no score, a reason
    assert (serial.n, serial.n_scored, serial.best) == (parallel.n, parallel.n_scored, parallel.best) == (12, 10, serial.best)
    from molgen.scoring.parallel import _BUILT, ObjectiveSource

    assert ObjectiveSource.of("qed").key() not in _BUILT  # no copy kept in this process once the file is scored
    assert 0.5 < serial.best <= 1


def test_a_chunk_whose_task_fails_is_written_with_the_reason(tmp_path, monkeypatch):
    import molgen.workflows.scoring as scoring

    real = scoring.score_smiles_part

    def flaky(payload):
        if "N#N" in payload[1]:
            raise RuntimeError("worker lost")
        return real(payload)

    monkeypatch.setattr(scoring, "score_smiles_part", flaky)
    source = tmp_path / "in.smi"
    source.write_text("\n".join(SMILES) + "\n")
    summary = scoring.score_file(source, "qed", tmp_path / "out.csv", chunk_size=4)
    rows = _rows(tmp_path / "out.csv")[1:]
    assert len(rows) == len(SMILES) and [r[0] for r in rows] == SMILES  # nothing dropped
    lost = rows[8:12]  # the chunk holding N#N
    assert all(r[2] == "" and "scoring failed in a worker: RuntimeError: worker lost" in r[-1] for r in lost)
    assert summary.n == 12 and summary.n_scored == 6  # the 8 rows before it hold 2 invalid SMILES


def test_executor_objective_matches_the_objective_and_records_a_failed_chunk():
    from molgen.domains import SmilesDomain
    from molgen.scoring import get_objective
    from molgen.scoring.parallel import ExecutorObjective, ObjectiveSource

    domain = SmilesDomain()
    mols = [domain.try_parse(s) for s in SMILES]
    expected = get_objective("pmo/qed")(mols)
    with make_executor("process", 2) as pool:
        table = ExecutorObjective(ObjectiveSource.of("pmo/qed"), pool, chunk_size=5, workers=2)(mols)
    np.testing.assert_array_equal(table.total, expected.total)
    assert table.reasons == expected.reasons

    class Broken(SerialExecutor):
        def map(self, fn, payloads):
            for index, _ in enumerate(payloads):
                yield index, TaskFailure("worker process crashed: killed")

    failed = ExecutorObjective(ObjectiveSource.of("pmo/qed"), Broken(), chunk_size=5)(mols)
    assert np.isnan(failed.total).all() and all("crashed" in r for r in failed.reasons)


def test_objective_source_ships_a_toml_file_as_data(tmp_path):
    from molgen.core.errors import MolgenError
    from molgen.scoring.parallel import ObjectiveSource

    path = tmp_path / "obj.toml"
    path.write_text('name = "mine"\n[[components]]\ntype = "qed"\n')
    source = ObjectiveSource.of(path)
    path.unlink()  # a worker elsewhere has no copy of the file: it does not need one
    assert source.build().name == "mine"
    with pytest.raises(MolgenError, match="qed"):
        ObjectiveSource.of("no_such_objective")


def test_cli_score_with_a_process_pool_and_optimize_with_a_pooled_oracle(tiny_prior_dir, tmp_path, capsys):
    source = tmp_path / "in.smi"
    source.write_text("\n".join(SMILES) + "\n")
    out = tmp_path / "scores.csv"
    assert main(["score", str(source), "--objective", "qed", "-o", str(out), "-q", "--executor", "process",
                 "--workers", "2", "--chunk-size", "4"]) == 0
    assert "scored 10 of 12 molecules" in capsys.readouterr().out
    # The oracle behind a pool gives the run the same molecules and scores as in process.
    runs = {}
    for executor in ("serial", "process"):
        run = tmp_path / executor
        assert main(["optimize", "--prior", str(tiny_prior_dir), "--objective", "pmo/qed", "--budget", "40",
                     "--batch-size", "16", "--out", str(run), "--no-progress", "--executor", executor]) == 0
        capsys.readouterr()
        import sqlite3

        with sqlite3.connect(run / "candidates.sqlite") as db:
            runs[executor] = db.execute("SELECT key, total FROM candidates ORDER BY key").fetchall()
    assert len(runs["serial"]) == 40 and runs["serial"] == runs["process"]


@pytest.mark.slow
def test_score_file_through_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    from molgen.workflows.scoring import score_file

    source = tmp_path / "in.smi"
    source.write_text("\n".join(SMILES) + "\n")
    score_file(source, "qed", tmp_path / "serial.csv", chunk_size=4)
    summary = score_file(source, "qed", tmp_path / "ray.csv", executor="ray", workers=2, chunk_size=4)
    assert _rows(tmp_path / "serial.csv") == _rows(tmp_path / "ray.csv")
    assert summary.n == 12 and not math.isnan(summary.best)


def test_evaluate_runs_its_chunks_through_the_chosen_executor(tmp_path, capsys):
    import json

    from molgen.core.errors import MolgenError
    from molgen.metrics.parallel import metrics_executor, run_chunks

    source = tmp_path / "gen.smi"
    source.write_text("\n".join(SMILES * 3) + "\n")
    reports = {}
    for executor in ("serial", "process"):
        out = tmp_path / f"{executor}.json"
        assert main(["evaluate", str(source), "--no-ref", "--no-train", "--executor", executor, "--jobs", "2",
                     "--k", "10", "-q", "-o", str(out)]) == 0
        reports[executor] = json.loads(out.read_text())["metrics"]
    capsys.readouterr()
    assert reports["serial"] == reports["process"] and reports["serial"]["valid"] == pytest.approx(10 / 12)

    class Broken(SerialExecutor):
        def map(self, fn, payloads):
            for index, _ in enumerate(payloads):
                yield index, TaskFailure("worker process crashed: killed")

    with metrics_executor(Broken()), pytest.raises(MolgenError, match="metrics chunk failed in a worker: worker process crashed"):
        run_chunks(len, [[1], [2]], 1)
    assert list(run_chunks(len, [[1], [2, 3]], 1)) == [1, 2]  # outside the block: the default again
