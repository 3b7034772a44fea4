"""Data-parallel training on CPU (gloo): 2 processes x B/2 rows follow the
same loss trajectory as 1 process x B rows, micro-batches change nothing,
and a 2-process run resumes as a 1-process run."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from molgen.cli.main import main
from molgen.core.serialization import load_tensors

SMILES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN(CC)CC", "OCC(O)CO", "c1ccncc1", "CC(C)O", "C1CCCCC1", "CCOC(=O)C",
          "NC(=O)N", "CC#N", "c1ccc2ccccc2c1", "O=C=O", "CCCCCC", "CS(=O)C", "C1=CC=CN1"]

# No dropout: each process draws its own dropout masks, so equality needs none.
CONFIG = """
domain = "smiles"
backbone = "autoregressive"
[data]
val_fraction = 0.0
[model]
d_model = 32
n_layers = 1
n_heads = 2
dropout = 0.0
[train]
batch_size = 8
lr = 0.003
warmup_steps = 0
log_every = 1
val_every = 1000
checkpoint_every = 1000
"""


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "mols.smi"
    data.write_text("\n".join(SMILES) + "\n")
    config = tmp_path / "run.toml"
    config.write_text(CONFIG)
    return data, config


def train(tmp_path, setup, name, steps, *extra):
    data, config = setup
    out = tmp_path / name
    code = main(["train", "--config", str(config), "--data", str(data), "--max-steps", str(steps), "--seed", "0", "-q",
                 "--out", str(out), *extra])
    assert code == 0
    return out


def losses(out):
    with (out / "train_log.csv").open() as handle:
        return np.array([float(r["train_loss"]) for r in csv.DictReader(handle)])


def weights(out):
    return load_tensors(out / "model" / "model.safetensors", "cpu")


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_allclose(wa[key].numpy(), wb[key].numpy(), atol=2e-5, rtol=1e-4, err_msg=key)


def test_two_processes_match_one_and_resume_as_one(tmp_path, setup, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    single = train(tmp_path, setup, "single", 6)
    double = train(tmp_path, setup, "double", 6, "--nproc", "2")
    np.testing.assert_allclose(losses(double), losses(single), rtol=1e-5, atol=1e-6)
    assert len(losses(single)) == 6 and losses(single)[-1] < losses(single)[0]  # it learns
    assert_same_weights(double, single)
    # Gradient accumulation: 1 process in micro-batches of 3 rows, and 2 processes in micro-batches of 2.
    micro = train(tmp_path, setup, "micro", 6, "--micro-batch-size", "3")
    np.testing.assert_allclose(losses(micro), losses(single), rtol=1e-5, atol=1e-6)
    both = train(tmp_path, setup, "both", 6, "--nproc", "2", "--micro-batch-size", "2")
    np.testing.assert_allclose(losses(both), losses(single), rtol=1e-5, atol=1e-6)
    # A 2-process run of 3 steps resumed by 1 process to 6 = a 1-process run of 3 steps resumed to 6
    # (the schedule follows the budget, so both differ from the straight 6-step run after step 2).
    train(tmp_path, setup, "resumed", 3, "--nproc", "2")
    resumed = train(tmp_path, setup, "resumed", 6, "--resume")
    train(tmp_path, setup, "reference", 3)
    reference = train(tmp_path, setup, "reference", 6, "--resume")
    np.testing.assert_allclose(losses(resumed), losses(reference), rtol=1e-5, atol=1e-6)
    assert_same_weights(resumed, reference)


@pytest.mark.parametrize("domain, backbone", [("molgraph", "graph-diffusion"), ("smiles", "vae"), ("smiles", "masked-diffusion")])
def test_every_other_backbone_trains_in_two_processes(tmp_path, setup, monkeypatch, domain, backbone):
    # Graph diffusion's last layer leaves parameters without gradient: DDP has to be told to look for them.
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data, _ = setup
    out = tmp_path / backbone
    assert main(["train", "--domain", domain, "--backbone", backbone, "--data", str(data), "--max-steps", "2",
                 "--batch-size", "8", "--nproc", "2", "-q", "--out", str(out)]) == 0
    assert (out / "model" / "model.safetensors").is_file() and len(losses(out)) >= 1


def test_shards_and_micro_batches_cover_a_batch_once():
    from molgen.train.distributed import micro_batches, shard

    rows = np.arange(11)
    parts = [shard(rows, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 3] and np.array_equal(np.concatenate(parts), rows)
    pieces = micro_batches(parts[0], 3)
    assert [len(p) for p in pieces] == [2, 2] and np.array_equal(np.concatenate(pieces), parts[0])
    assert len(micro_batches(rows, None)) == 1


def test_bad_nproc_is_a_clear_error(tmp_path, setup, capsys):
    data, config = setup
    assert main(["train", "--config", str(config), "--data", str(data), "--nproc", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err
    assert os.environ.get("WORLD_SIZE") is None


def test_two_process_sampling_writes_one_file_that_repeats(tmp_path, monkeypatch):
    from molgen.workflows.sampling import rank_seed

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    paths = [tmp_path / f"run{k}.smi" for k in range(2)]
    for path in paths:
        assert main(["sample", "zinc250k", "-n", "12", "--seed", "3", "--nproc", "2", "-q", "-o", str(path)]) == 0
    lines = paths[0].read_text().splitlines()
    assert len(lines) == 12 and paths[0].read_text() == paths[1].read_text()
    assert [line.split("\t")[1].split(":")[0] for line in lines] == [f"sample_{i}" for i in range(12)]
    assert len({rank_seed(3, r, 2) for r in range(2)} | {rank_seed(3, 0, 4), rank_seed(4, 0, 2)}) == 4


def test_two_process_sampling_into_a_crystal_folder(tmp_path, monkeypatch):
    # Only rank 0 writes; the other rank must not try to write a folder of its own.
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "cifs"
    assert main(["sample", "perov5", "-n", "4", "--seed", "0", "--nproc", "2", "-q", "-o", str(out)]) == 0
    assert len(list(out.iterdir())) == 4
