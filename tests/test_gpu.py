"""Checks that need a CUDA device (marked ``gpu``; CI has none, so they skip
there): training and sampling on the GPU in bf16, NCCL data-parallel
training, and predictions that agree with the CPU's."""

from __future__ import annotations

import pytest
import torch

from molgen.cli.main import main

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_shipped_prior_samples_as_well_in_bf16_as_in_float32(tmp_path, capsys):
    from molgen.backbones.base import load_generator
    from molgen.core.device import autocast
    from molgen.domains import SmilesDomain
    from molgen.workflows.sampling import resolve_model_dir

    model = load_generator(resolve_model_dir("zinc250k"), torch.device("cuda"))
    domain = SmilesDomain()
    validity = {}
    for precision in ("fp32", "bf16"):
        with autocast("cuda", precision):
            texts = model.sample_texts(1024, seed=0, batch_size=1024)
        validity[precision] = sum(domain.try_parse(t) is not None for t in texts) / len(texts)
    assert validity["fp32"] > 0.85 and abs(validity["bf16"] - validity["fp32"]) < 0.05


def test_train_and_sample_on_cuda_with_one_nccl_process(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "nci-5k", "--limit", "500", "--max-steps", "30", "--batch-size", "64",
                 "--device", "cuda", "--nproc", "1", "--out", str(run), "--no-progress"]) == 0
    assert main(["sample", str(run), "-n", "256", "--device", "cuda", "--precision", "bf16", "-q",
                 "-o", str(tmp_path / "s.smi")]) == 0
    assert len((tmp_path / "s.smi").read_text().splitlines()) == 256


def test_crystal_predictor_on_cuda_agrees_with_the_cpu():
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from molgen.predictors.registry import load_predictor
    from molgen.pretrained.predictors import predictor_dir

    path = predictor_dir("perov5-heat")
    crystals = [Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                          [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) for a in (3.8, 3.9, 4.0)]
    cpu = np.asarray(load_predictor(path, device="cpu").predict(crystals)[0])
    gpu = np.asarray(load_predictor(path, device="cuda").predict(crystals)[0])
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)
