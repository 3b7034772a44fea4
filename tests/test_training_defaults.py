"""workflows/auto_size + training: the size rule, seeded initialisation,
and train options checked at the boundary."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import SMALL_SMILES

from molgen.cli.main import main
from molgen.workflows.auto_size import (
    LADDER,
    Candidate,
    SizeRule,
    auto_batch_settings,
    auto_hparams,
    auto_train_settings,
    canvas_length,
    choose_size,
    has_explicit_size,
)

TINY_MODEL = "[model]\nd_model = 32\nn_layers = 1\nn_heads = 2\n[train]\nwarmup_steps = 1\n"


@pytest.fixture
def smi_file(tmp_path):
    path = tmp_path / "train.smi"
    path.write_text("\n".join(SMALL_SMILES * 2) + "\n")
    return path


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_MODEL)
    return path


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- the size rule (pure) ------------------------------------------------------

def _ladder(speed_at_100k: float | None = 40_000.0) -> list[Candidate]:
    """Ladder sizes with parameters ~ 12 d^2 L and throughput falling in
    proportion to the parameter count (None: not timed)."""
    out = []
    for size in LADDER:
        n_params = 12 * size.d_model**2 * size.n_layers + 100 * size.d_model
        speed = None if speed_at_100k is None else speed_at_100k * 100_000 / n_params
        out.append(Candidate(size, n_params, speed))
    return out


RULE = SizeRule(tokens_per_param=10.0, params_per_data_token=20.0, min_steps=300)


def _choose(candidates, **kw):
    args = dict(n_train=5000, tokens_per_example=30.0, batch_size=64, rule=RULE)
    return choose_size(candidates, **{**args, **kw})


def test_short_budget_or_small_data_gives_the_smallest_model():
    assert _choose(_ladder(), max_minutes=0.2).size == LADDER[0]  # too few steps for anything
    assert _choose(_ladder(None), max_steps=50).size == LADDER[0]
    # A long step budget on 40 molecules: the data cap keeps the model small.
    tiny = _choose(_ladder(None), max_steps=100_000, n_train=40)
    assert tiny.size == LADDER[0] and "data" in tiny.candidates[1]["fails"]


def test_bigger_budget_or_more_data_gives_a_bigger_model():
    sizes = [LADDER.index(_choose(_ladder(), max_minutes=m).size) for m in (1, 4, 30, 240)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    small = _choose(_ladder(None), max_steps=20_000, n_train=300)
    large = _choose(_ladder(None), max_steps=20_000, n_train=50_000)
    assert LADDER.index(large.size) > LADDER.index(small.size)
    # A faster machine buys a bigger model in the same minutes.
    assert LADDER.index(_choose(_ladder(400_000), max_minutes=4).size) > LADDER.index(_choose(_ladder(), max_minutes=4).size)


def test_choice_is_the_largest_passing_size_and_says_why():
    choice = _choose(_ladder(), max_minutes=4)
    i = LADDER.index(choice.size)
    assert all(c["passes"] for c in choice.candidates[: i + 1]) or not choice.candidates[0]["passes"]
    assert not choice.candidates[i + 1]["passes"]
    assert choice.size.name in choice.reason and "tokens/parameter" in choice.reason
    assert choice.candidates[i + 1]["size"] in choice.reason  # names the next size and what it fails
    record = choice.record()
    assert record["size"] == choice.size.name and json.dumps(record)


def test_explicit_settings_win_over_the_rule():
    assert has_explicit_size({"d_model": 32}) and has_explicit_size({"n_layers": 1})
    assert not has_explicit_size({"max_length": 64, "dropout": 0.1})
    choice = _choose(_ladder(), max_minutes=4)
    assert auto_hparams("autoregressive", choice, {"n_heads": 2}).get("n_heads") is None
    assert "kl_warmup_steps" not in auto_hparams("vae", choice, {"kl_warmup_steps": 10})
    assert auto_hparams("vae", choice, {})["kl_warmup_steps"] == choice.steps // 3
    assert auto_train_settings(choice, {"lr", "ema_decay", "min_lr_ratio"}).keys() == {"warmup_steps"}
    assert auto_batch_settings({"batch_size"}) == {} and auto_batch_settings(set()) == {"batch_size": 64}


def test_masked_diffusion_canvas_leaves_out_the_longest_five_percent():
    assert canvas_length([10] * 95 + [200] * 5) == 10
    assert canvas_length([10] * 94 + [200] * 6) == 200
    assert canvas_length([12, 30], coverage=1.0) == 30


# -- through run_training / the CLI --------------------------------------------

def test_auto_size_is_recorded_and_printed(tmp_path, smi_file, capsys):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--data", smi_file, "--max-steps", 3, "--batch-size", 4, "--no-progress", "--out", run)
    assert code == 0, err
    assert "model size (auto): d64x2" in out
    saved = json.loads((run / "run.json").read_text())
    assert saved["auto_size"]["size"] == "d64x2" and saved["model"]["d_model"] == 64
    assert saved["train"]["lr"] == 5e-3 and saved["train"]["ema_decay"] == 0.99
    assert saved["train"]["batch_size"] == 4  # given, so kept
    model_cfg = json.loads((run / "model" / "config.json").read_text())
    assert model_cfg["hparams"]["d_model"] == 64 and model_cfg["extra"]["auto_size"]["size"] == "d64x2"
    # run.json's record does not break resuming
    code, _, err = _run(capsys, "train", "--resume", "--max-steps", 4, "--out", run, "--no-progress")
    assert code == 0, err


def test_time_budget_times_the_ladder(tmp_path, smi_file, capsys):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--data", smi_file, "--max-minutes", 0.01, "--batch-size", 4, "--no-progress", "--out", run)
    assert code == 0, err
    record = json.loads((run / "run.json").read_text())["auto_size"]
    assert record["candidates"][0]["tokens_per_s"] > 0 and "0.01 min" in record["reason"]


def test_explicit_size_wins(tmp_path, smi_file, tiny_config, capsys):
    run = tmp_path / "run"
    code, out, err = _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--max-steps", 2,
                          "--batch-size", 4, "--lr", 5e-4, "--no-progress", "--out", run)
    assert code == 0, err
    saved = json.loads((run / "run.json").read_text())
    assert "auto_size" not in saved and "model size" not in out
    assert saved["model"]["d_model"] == 32 and saved["train"]["lr"] == 5e-4


# -- seeded initialisation -------------------------------------------------------

def _weights(capsys, tmp_path, smi_file, tiny_config, name: str, seed: int) -> bytes:
    run = tmp_path / name
    code, _, err = _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--max-steps", 5,
                        "--batch-size", 4, "--seed", seed, "--no-progress", "--out", run)
    assert code == 0, err
    return (run / "model" / "model.safetensors").read_bytes()


@pytest.mark.parametrize("backbone", ["autoregressive", "masked-diffusion"])
def test_same_seed_same_weights(tmp_path, smi_file, capsys, backbone):
    config = tmp_path / "tiny.toml"
    config.write_text(f'backbone = "{backbone}"\n' + TINY_MODEL)
    torch.manual_seed(123)  # whatever ran before must not matter
    a = _weights(capsys, tmp_path, smi_file, config, "a", 0)
    torch.rand(7)
    b = _weights(capsys, tmp_path, smi_file, config, "b", 0)
    c = _weights(capsys, tmp_path, smi_file, config, "c", 1)
    assert a == b
    assert a != c


def test_run_training_leaves_the_global_generator_alone(tmp_path, smi_file, tiny_config, capsys):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    _weights(capsys, tmp_path, smi_file, tiny_config, "a", 0)
    assert torch.equal(torch.rand(3), expected)


# -- option checks at the boundary -----------------------------------------------

@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], r"'seed': Input should be greater than or equal to 0"),
        (["--batch-size", "0"], r"'train.batch_size': Input should be greater than 0"),
        (["--max-steps", "0"], r"'train.max_steps': Input should be greater than 0"),
        (["--max-steps", "-5"], r"'train.max_steps': Input should be greater than 0"),
        (["--max-minutes", "0"], r"'train.max_minutes': Input should be greater than 0"),
        (["--max-minutes", "-1"], r"'train.max_minutes': Input should be greater than 0"),
        (["--max-minutes", "nan"], r"max_minutes must be a finite number of minutes > 0, got nan"),
        (["--max-minutes", "inf"], r"max_minutes must be a finite number of minutes > 0, got inf"),
    ],
)
def test_bad_train_options_are_one_line_errors(tmp_path, smi_file, capsys, flags, message):
    import re

    code, out, err = _run(capsys, "train", "--data", smi_file, *flags, "--out", tmp_path / "run", "--no-progress")
    assert code == 2
    assert err.startswith("molgen: error:") and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_heads_that_do_not_divide_the_width(tmp_path, smi_file, tiny_config, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nd_model = 30\nn_layers = 1\nn_heads = 4\n")
    code, _, err = _run(capsys, "train", "--data", smi_file, "--config", bad, "--max-steps", 2, "--out", tmp_path / "r1")
    assert code == 2 and "d_model=30 is not divisible by n_heads=4" in err and err.startswith("molgen: error: [model]")
    odd = tmp_path / "odd.toml"
    odd.write_text("[model]\nd_model = 36\nn_layers = 1\nn_heads = 4\n")
    code, _, err = _run(capsys, "train", "--data", smi_file, "--config", odd, "--max-steps", 2, "--out", tmp_path / "r2")
    assert code == 2 and "must be even" in err

    # A fine-tuning source whose config.json was edited to an impossible shape.
    run = tmp_path / "run"
    assert _run(capsys, "train", "--data", smi_file, "--config", tiny_config, "--max-steps", 1, "--batch-size", 4,
                "--no-progress", "--out", run)[0] == 0
    config_path = run / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["hparams"]["n_heads"] = 3
    config_path.write_text(json.dumps(config))
    code, _, err = _run(capsys, "train", "--data", smi_file, "--init-from", run / "model", "--max-steps", 1,
                        "--out", tmp_path / "ft", "--no-progress")
    assert code == 2 and "d_model=32 is not divisible by n_heads=3" in err and "config.json" in err
