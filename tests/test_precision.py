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
