"""cli/: train and sample end to end, and one clear line for bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from conftest import SMALL_SMILES

from molgen import __version__
from molgen.cli.main import main

TINY = ["--max-steps", "4", "--batch-size", "4", "--no-progress"]


@pytest.fixture
def smi_file(tmp_path):
    path = tmp_path / "train.smi"
    path.write_text("\n".join(SMALL_SMILES * 2) + "\n")
    return path


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text("[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n[train]\nwarmup_steps = 1\n")
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_version_via_console_script():
    result = subprocess.run([sys.executable, "-m", "molgen.cli.main", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == f"molgen {__version__}"


def test_help_texts(capsys):
    for command in ("train", "sample", "evaluate"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "--seed" in capsys.readouterr().out



def test_train_sample_resume(tmp_path, smi_file, tiny_config, capsys):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--out", run, *TINY)
    assert code == 0, err
    assert "model:" in out and (run / "model" / "model.safetensors").is_file()

    code, out, err = _run(capsys, "train", "--resume", "--max-steps", 6, "--out", run, "--no-progress")
    assert code == 0, err
    assert "for 6 steps" in out

    for suffix in (".smi", ".csv", ".txt"):
        target = tmp_path / f"samples{suffix}"
        code, out, err = _run(capsys, "sample", run, "-n", 20, "--seed", 1, "-o", target)
        assert code == 0, err
        assert "validity" in out
        lines = target.read_text().splitlines()
        assert len(lines) == 20 + (suffix == ".csv")  # invalid samples kept
    rows = list(csv.DictReader(open(tmp_path / "samples.csv")))
    assert {r["valid"] for r in rows} <= {"0", "1"}
    invalid = sum(r["valid"] == "0" for r in rows)
    code, _, _ = _run(capsys, "sample", run, "-n", 20, "--seed", 1, "-o", tmp_path / "v.csv", "--valid-only")
    assert len(list(csv.DictReader(open(tmp_path / "v.csv")))) == 20 - invalid
    # Same seed, same samples; another seed, other samples.
    _run(capsys, "sample", run, "-n", 20, "--seed", 1, "-o", tmp_path / "again.csv")
    _run(capsys, "sample", run, "-n", 20, "--seed", 2, "-o", tmp_path / "other.csv")
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "samples.csv").read_text()
    assert (tmp_path / "other.csv").read_text() != (tmp_path / "samples.csv").read_text()
    # SMILES is not a regular language: constrained decoding is refused by name.
    code, _, err = _run(capsys, "sample", run, "-n", 2, "--constrained")
    assert code != 0 and "no token grammar" in err


def _assert_one_line_error(code, err, pattern):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("molgen: error:"), err
    assert pytest.importorskip("re").search(pattern, lines[0]), lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path, smi_file, tiny_config, capsys):
    bad = tmp_path / "bad.smi"
    bad.write_text("CCO\nC1CC(\nc1ccccc1\n")
    empty = tmp_path / "empty.smi"
    empty.write_text("")
    unknown_key = tmp_path / "unknown.toml"
    unknown_key.write_text("[train]\nlearning_rate = 0.1\n")
    cases = [
        (["train", "--data", bad, "--out", tmp_path / "r1", *TINY], r"bad.smi:2: unparsable SMILES"),
        (["train", "--data", empty, "--out", tmp_path / "r2", *TINY], r"holds no entries"),
        (["train", "--data", tmp_path / "missing.smi", "--out", tmp_path / "r3", *TINY], r"file not found"),
        (["train", "--data", "zinc-9000", "--out", tmp_path / "r4", *TINY], r"unknown data set 'zinc-9000'; valid names: .*nci-5k"),
        (["train", "--data", smi_file, "--config", unknown_key, "--out", tmp_path / "r5", *TINY], r"unknown key 'train.learning_rate'"),
        (["train", "--data", smi_file, "--backbone", "lstm", "--out", tmp_path / "r6", *TINY], r"unknown backbone 'lstm'; valid names: autoregressive"),
        (["train", "--resume", "--out", tmp_path / "never-trained", *TINY], r"missing run.json"),
        (["sample", tmp_path / "nowhere", "-n", 5], r"no model directory and no shipped model named"),
        (["sample", tmp_path / "nowhere", "-n", 5, "--temperature", -1], r"--temperature must be >= 0"),
    ]
    for argv, pattern in cases:
        code, _, err = _run(capsys, *argv)
        _assert_one_line_error(code, err, pattern)


def test_corrupted_checkpoint_and_unknown_tokens(tmp_path, smi_file, tiny_config, capsys):
    run = tmp_path / "run"
    assert _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--out", run, *TINY)[0] == 0

    odd = tmp_path / "odd.smi"
    odd.write_text("CCO\nC[Se]C\n")
    code, _, err = _run(capsys, "train", "--data", odd, "--init-from", run / "model", "--out", tmp_path / "ft", *TINY)
    _assert_one_line_error(code, err, r"line 2: unknown token '\[Se\]'")
    code, _, err = _run(
        capsys, "train", "--data", odd, "--init-from", run / "model", "--on-unknown-token", "unk", "--out", tmp_path / "ft", *TINY
    )
    assert code == 0, err
    # The fine-tuned model says what it started from.
    assert json.loads((tmp_path / "ft" / "model" / "config.json").read_text())["extra"]["training"]["init_from"] == str(run / "model")

    (run / "model" / "model.safetensors").write_bytes(b"truncated")
    code, _, err = _run(capsys, "sample", run, "-n", 5)
    _assert_one_line_error(code, err, r"corrupted weights file")
    (run / "model" / "config.json").write_text('{"backbone": "autoregressive"}')
    code, _, err = _run(capsys, "sample", run, "-n", 5)
    _assert_one_line_error(code, err, r"does not describe a molgen model|corrupted")
    code, _, err = _run(capsys, "sample", run / "checkpoint", "-n", 5, "-o", tmp_path / "x.parquet")
    _assert_one_line_error(code, err, r"unsupported output format '.parquet'; use one of .*\.sdf")


def test_resume_keeps_saved_budget_and_rejects_corrupted_checkpoint(tmp_path, smi_file, tiny_config, capsys):
    run = tmp_path / "run"
    assert _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--out", run, *TINY)[0] == 0
    # No budget on the command line: the run's own (4 steps, already reached) is kept.
    code, out, err = _run(capsys, "train", "--resume", "--out", run, "--no-progress")
    assert code == 0 and "for 4 steps" in out, err
    (run / "checkpoint" / "optimizer.safetensors").write_bytes(b"")
    code, _, err = _run(capsys, "train", "--resume", "--max-steps", 8, "--out", run, "--no-progress")
    _assert_one_line_error(code, err, r"corrupted weights file .*optimizer.safetensors")


def test_evaluate_messy_file_reports_nulls_with_reasons(tmp_path, smi_file, capsys):
    import json

    generated = tmp_path / "gen.smi"
    # A header, blank lines, garbage and a molgen-sample style invalid marker.
    generated.write_text("SMILES\nCCO\n\nnot-a-smiles\tsample_1:invalid\nc1ccccc1O\n\nCC(=O)O\n")
    report_path = tmp_path / "report.json"
    code, out, _ = _run(
        capsys, "evaluate", generated, "--ref", smi_file, "--train", smi_file, "--k", "2,1000", "-o", report_path
    )
    assert code == 0 and "unique@1000" in out
    report = json.loads(report_path.read_text())
    assert report["metadata"]["n"] == 4 and report["metrics"]["valid"] == pytest.approx(0.75)
    assert report["metrics"]["unique@2"] == 1.0
    assert report["metrics"]["unique@1000"] is None
    assert "fewer than k=1000" in report["unavailable"]["unique@1000"]
    assert report["metadata"]["versions"]["rdkit"]

    only_garbage = tmp_path / "garbage.smi"
    only_garbage.write_text("xx\n((\n")
    code, out, _ = _run(capsys, "evaluate", only_garbage, "--ref", smi_file, "--no-train", "--metrics", "valid,SNN/Test,Novelty")
    assert code == 0 and "no valid molecules" in out and "no training set given" in out


def test_evaluate_bad_inputs_give_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty.smi"
    empty.write_text("")
    _assert_one_line_error(*_run(capsys, "evaluate", empty, "--no-ref", "--no-train")[::2], "empty")
    _assert_one_line_error(*_run(capsys, "evaluate", tmp_path / "missing.smi")[::2], "not found")
    good = tmp_path / "g.smi"
    good.write_text("CCO\n")
    _assert_one_line_error(*_run(capsys, "evaluate", good, "--metrics", "FCD")[::2], "unknown metric")
    _assert_one_line_error(*_run(capsys, "evaluate", good, "--ref", "no-such-set")[::2], "no-such-set")


def test_selfies_train_on_smiles_data_and_write_smiles(tmp_path, smi_file, tiny_config, capsys):
    from rdkit import Chem

    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--domain", "selfies", "--data", smi_file, "--config", tiny_config, "--out", run, *TINY)
    assert code == 0, err
    code, out, err = _run(capsys, "sample", run, "-n", 10, "--seed", 0, "-o", tmp_path / "s.smi")
    assert code == 0, err
    lines = [line.split("\t") for line in (tmp_path / "s.smi").read_text().splitlines()]
    assert len(lines) == 10
    valid = [text for text, name in lines if not name.endswith(":invalid")]
    assert valid and all(Chem.MolFromSmiles(t) is not None for t in valid)  # SMILES, not SELFIES, in a .smi file
    code, out, err = _run(capsys, "sample", run, "-n", 10, "--seed", 0, "-o", tmp_path / "s.csv")
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert rows[0]["selfies"].startswith("[") and {r["canonical"] for r in rows if r["valid"] == "1"} == set(valid)


def test_config_flags_take_type_and_choices_from_the_config_fields(capsys):
    import argparse

    from molgen.cli.overrides import add_config_option, collect_overrides
    from molgen.workflows.training import RunConfig

    parser = argparse.ArgumentParser()
    add_config_option(parser, "--lr", RunConfig, "train.lr")
    add_config_option(parser, "--on-unknown-token", RunConfig, "data.on_unknown_token")
    add_config_option(parser, "--limit", RunConfig, "data.limit")
    args = parser.parse_args(["--lr", "0.01", "--on-unknown-token", "unk"])
    assert collect_overrides(args) == {"train.lr": 0.01, "data.on_unknown_token": "unk"}
    with pytest.raises(SystemExit):  # the Literal's choices
        parser.parse_args(["--on-unknown-token", "drop"])
    with pytest.raises(SystemExit):  # int | None -> int
        parser.parse_args(["--limit", "1.5"])
    assert "peak learning rate" in parser.format_help()  # the field's description


def test_evaluators_are_chosen_by_file_kind(tmp_path):
    from molgen.workflows.evaluators import evaluator_for

    (tmp_path / "a.fasta").write_text(">p1\nKLAKLAKKLAKLAK\n")
    (tmp_path / "a.smi").write_text("CCO\n")
    assert evaluator_for(tmp_path / "a.fasta").domain == "protein"
    assert evaluator_for(tmp_path / "a.smi").domain == "smiles"


def test_masked_diffusion_sampling_options_are_checked_before_any_work(tmp_path, capsys):
    assert main(["sample", "zinc250k", "-n", "5", "--order", "confidence", "-o", str(tmp_path / "a.smi")]) == 2
    assert "--order not supported by the autoregressive backbone" in capsys.readouterr().err
    assert main(["sample", "zinc250k", "-n", "5", "--confidence-noise", "-1", "-o", str(tmp_path / "b.smi")]) == 2
    assert "--confidence-noise" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
