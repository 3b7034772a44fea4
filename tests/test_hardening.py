"""Hostile and careless values, one test per family: external tools that
answer badly or hang, rewards that would wreck a policy, objectives edited
inside a run directory, outputs that would destroy data, two writers on one
run, and SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from rdkit import Chem

from molgen.cli.main import main
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.outputs import RunLock, check_output_file, prepare_run_dir
from molgen.scoring import Objective
from molgen.scoring.external import ExternalCommand


def _tool(tmp_path, body: str, name: str = "tool.py") -> list[str]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


# -- external tools -------------------------------------------------------
def test_external_answers_are_checked_one_by_one(tmp_path):
    command = _tool(tmp_path, """
        import json, sys
        rows = [json.loads(line) for line in sys.stdin]
        answers = [{"id": 0, "score": True}, {"id": 1.0, "score": 0.5}, {"id": 2, "score": "0.7"},
                   {"id": 3, "score": 0.25}, {"id": 3, "score": 0.75}, {"id": 4, "score": 1e999},
                   {"id": 5, "score": 0.125}]
        for a in answers:
            print(json.dumps(a))
    """)
    values, reasons = ExternalCommand(command)([Chem.MolFromSmiles("C")] * 6)
    assert np.isnan(values[:5]).all() and values[5] == 0.125
    assert "no numeric score" in reasons[0]
    assert "no result" in reasons[1]  # a float id is not an id
    assert "no numeric score" in reasons[2]
    assert "more than once" in reasons[3]
    assert "non-finite" in reasons[4]


def test_external_timeout_kills_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    command = _tool(tmp_path, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    start = time.monotonic()
    values, reasons = ExternalCommand(command, timeout=3)([Chem.MolFromSmiles("C")])
    assert time.monotonic() - start < 20
    assert np.isnan(values[0]) and "timed out" in reasons[0]
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not _alive(child)  # the grandchild is gone too


def _alive(pid: int) -> bool:
    """Running (a killed orphan may linger as a zombie until init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_external_output_is_capped(tmp_path):
    command = _tool(tmp_path, """
        import sys
        sys.stdin.read()
        sys.stdout.write('{"id": 0, "score": 0.5}\\n' + "x" * 5_000_000)
    """)
    values, reasons = ExternalCommand(command, max_output_bytes=1000)([Chem.MolFromSmiles("C")])
    assert values[0] == 0.5


@pytest.mark.parametrize("component, message", [
    ('type = "external"\ncommand = []', "command"),
    ('type = "external"\ncommand = ""', "command"),
    ('type = "qed"\nweight = inf', "weight"),
    ('type = "qed"\nweight = nan', "weight"),
    ('type = "external"\ncommand = ["x"]\ntimeout = inf', "timeout"),
])
def test_hostile_objective_values_are_config_errors(tmp_path, component, message):
    path = tmp_path / "objective.toml"
    path.write_text(f"[[components]]\n{component}\n")
    with pytest.raises(ConfigError, match=message):
        Objective.from_toml(path)


# -- rewards and policy updates ---------------------------------------------
def test_huge_rewards_are_clipped_and_the_agent_stays_finite(tiny_prior_dir, tmp_path):
    from molgen.workflows.optimization import optimize

    command = _tool(tmp_path, """
        import json, sys
        for line in sys.stdin:
            print(json.dumps({"id": json.loads(line)["id"], "score": 1e300}))
    """)
    objective = tmp_path / "hostile.toml"
    objective.write_text(f'[[components]]\ntype = "external"\ncommand = {json.dumps(command)}\n')
    run = tmp_path / "run"
    result = optimize({"prior": str(tiny_prior_dir), "objective": str(objective), "device": "cpu",
                       "campaign": {"budget": 40, "batch_size": 16}}, run)
    assert result.summary["rewards_clipped"]["count"] >= 20  # (the diversity filter zeroes some first)
    from molgen.core.serialization import load_tensors

    pointer = json.loads((run / "checkpoint.json").read_text())
    tensors = load_tensors(run / pointer["dir"] / "state.safetensors", "cpu")
    assert all(torch.isfinite(t).all() for k, t in tensors.items() if k.startswith("agent."))
    # and the run resumes
    assert optimize({"campaign": {"budget": 60}}, run, resume=True).calls == 60


def test_sigma_out_of_range_is_a_config_error():
    from molgen.core.config import validate
    from molgen.loops.reinforce import ReinforceConfig

    for bad in (float("inf"), float("nan"), 1e300, 0.0):
        with pytest.raises(ConfigError):
            validate(ReinforceConfig, {"sigma": bad})


def test_a_non_finite_loss_skips_the_update(tiny_prior_dir):
    from molgen.backbones.base import Generator
    from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

    rl = PriorRegularizedRL(Generator.from_pretrained(tiny_prior_dir), ReinforceConfig(), seed=0)
    before = {k: v.clone() for k, v in rl.agent.state_dict().items()}
    texts = rl.propose(4)
    rl.update(texts, [f"k{i}" for i in range(len(texts))], [float("inf")] * len(texts))
    assert rl.skipped_updates >= 1
    assert all(torch.equal(before[k], v) for k, v in rl.agent.state_dict().items())


# -- objectives pinned on resume ---------------------------------------------
def test_an_edited_objective_in_a_run_is_not_run_on_resume(tiny_prior_dir, tmp_path, capsys):
    objective = tmp_path / "obj.toml"
    objective.write_text('[[components]]\ntype = "qed"\n')
    run = tmp_path / "run"
    base = ["optimize", "--prior", str(tiny_prior_dir), "--objective", str(objective), "--budget", "20",
            "--batch-size", "16", "--out", str(run), "-q"]
    assert main(base) == 0
    marker = tmp_path / "pwned"
    (run / "objective.toml").write_text(
        f'[[components]]\ntype = "external"\ncommand = ["{sys.executable}", "-c", "open({str(marker)!r}, \'w\')"]\n')
    assert main(["optimize", "--resume", "--budget", "30", "--out", str(run), "-q"]) == 2
    assert "changed since the run started" in capsys.readouterr().err
    assert not marker.exists()
    other = tmp_path / "other.toml"
    other.write_text('[[components]]\ntype = "logp"\n')
    assert main(["optimize", "--resume", "--objective", str(other), "--budget", "30", "--out", str(run), "-q"]) == 2
    assert "differs from the objective" in capsys.readouterr().err
    # The original objective, given again, continues the run.
    assert main(["optimize", "--resume", "--objective", str(objective), "--budget", "30", "--out", str(run), "-q"]) == 0
    assert not marker.exists()


# -- outputs and run directories -----------------------------------------------
def test_output_checks(tmp_path):
    data = tmp_path / "in.smi"
    data.write_text("CCO\n")
    with pytest.raises(MolgenError, match="input"):
        check_output_file(data, inputs=[data])
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    with pytest.raises(MolgenError, match="model directory"):
        check_output_file(model / "preds.csv")
    with pytest.raises(MolgenError, match="directory"):
        check_output_file(tmp_path)
    with pytest.raises(MolgenError, match="cannot"):
        check_output_file("/proc/x.csv")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    with pytest.raises(MolgenError, match="replace a file"):
        check_output_file(run / "run.json")
    assert check_output_file(run / "samples.smi") == run / "samples.smi"  # new files beside a run are fine
    assert check_output_file(run / "run.json", own_dir=run) == run / "run.json"


def test_run_directories_need_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    prepare_run_dir(run)
    (run / "run.json").write_text("{}")
    with pytest.raises(MolgenError, match="--overwrite"):
        prepare_run_dir(run)
    assert prepare_run_dir(run, resume=True) == run
    prepare_run_dir(run, overwrite=True)
    assert not (run / "run.json").exists()
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "cat.jpg").write_bytes(b"x")
    with pytest.raises(MolgenError, match="not a molgen run"):
        prepare_run_dir(mine, overwrite=True)
    assert (mine / "cat.jpg").exists()


def test_a_run_directory_has_one_writer(tmp_path):
    run = tmp_path / "run"
    script = f"from molgen.core.outputs import RunLock\nwith RunLock({str(run)!r}, 'test'):\n    pass\n"
    with RunLock(run, "train"):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert proc.returncode != 0 and "in use by train (pid" in proc.stderr
    assert subprocess.run([sys.executable, "-c", script]).returncode == 0  # released


# -- signals --------------------------------------------------------------------
def test_sigterm_checkpoints_a_training_run(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--data", "nci-5k", "--limit", "300", "--max-steps", "100000", "--batch-size", "16",
            "--config", str(_tiny_config(tmp_path)), "--out", str(run), "-q"]
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from molgen.cli.main import main; sys.exit(main(sys.argv[1:]))", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "train_log.csv").exists():
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint was saved" in err and "Traceback" not in err
    assert (run / "checkpoint").is_dir()


def _tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text("[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n[train]\nval_every = 1000000\ncheckpoint_every = 1000000\n")
    return path


def test_a_second_command_on_a_busy_run_is_refused_before_any_work(tiny_prior_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["optimize", "--prior", str(tiny_prior_dir), "--objective", "qed", "--budget", "16", "--batch-size", "16",
                 "--out", str(run), "-q"]) == 0
    rows = (run / "candidates.sqlite").read_bytes()
    with RunLock(run, "molgen optimize"):  # as if another optimize --resume were running
        assert main(["optimize", "--resume", "--budget", "32", "--out", str(run), "-q"]) == 2
    assert "in use by molgen optimize (pid" in capsys.readouterr().err
    assert (run / "candidates.sqlite").read_bytes() == rows
