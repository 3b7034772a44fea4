"""--precision: bf16 autocast of inference commands (issue 33, item 4)."""

from __future__ import annotations

import pytest
import torch

from molgen.cli.main import main
from molgen.core.device import autocast
from molgen.core.errors import ConfigError


def test_autocast_is_bf16_on_request_or_on_cuda_and_float32_otherwise():
    layer = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4)
    with autocast("cpu", "bf16"):
        assert layer(x).dtype == torch.bfloat16
    for precision in ("auto", "fp32"):  # auto is float32 on the CPU
        with autocast("cpu", precision):
            assert layer(x).dtype == torch.float32
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        autocast("cpu", "fp8")


def test_sample_with_each_precision(tiny_prior_dir, tmp_path, capsys):
    outputs = {}
    for precision in ("auto", "fp32", "bf16"):
        out = tmp_path / f"{precision}.smi"
        assert main(["sample", str(tiny_prior_dir), "-n", "32", "--seed", "3", "--device", "cpu", "--precision", precision,
                     "-q", "-o", str(out)]) == 0
        outputs[precision] = out.read_text().splitlines()
    capsys.readouterr()
    assert outputs["auto"] == outputs["fp32"]  # auto means float32 on the CPU
    assert len(outputs["bf16"]) == 32


def test_train_and_optimize_take_a_precision(tiny_prior_dir, tmp_path, capsys):
    import json

    from molgen.backbones.base import load_generator

    weights = {}
    for precision in ("fp32", "bf16"):
        run = tmp_path / precision
        assert main(["train", "--data", "nci-5k", "--limit", "200", "--max-steps", "6", "--batch-size", "16",
                     "--device", "cpu", "--precision", precision, "--seed", "1", "--out", str(run), "--no-progress"]) == 0
        model = load_generator(run / "model", torch.device("cpu"))
        weights[precision] = torch.cat([p.detach().flatten() for p in model.parameters()])
    # Same seed and data: only the forward's precision differs, so the weights differ a little, not a lot.
    difference = (weights["bf16"] - weights["fp32"]).abs().max().item()
    assert 0 < difference < 0.05 and torch.isfinite(weights["bf16"]).all()
    opt = tmp_path / "opt"
    assert main(["optimize", "--prior", str(tiny_prior_dir), "--objective", "pmo/qed", "--budget", "30",
                 "--batch-size", "16", "--precision", "bf16", "--out", str(opt), "--no-progress"]) == 0
    assert "30 of 30 oracle calls" in capsys.readouterr().out
    assert json.loads((opt / "optimize.json").read_text())["precision"] == "bf16"

