"""Data-parallel training and sampling (issue 33): does 2 x B/2 follow 1 x B,
and what do N processes cost or gain?

Trains the same autoregressive SMILES model (no dropout) on a seeded subset of
a registered data set three ways: 1 process x batch B, ``--nproc 2`` (each
rank B/2), and 1 process in micro-batches (gradient accumulation); reports
the largest per-step loss difference from the 1-process run, the largest
weight difference of the final models, and wall time. Then samples with
``molgen sample --nproc N`` and checks the merged file repeats.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_distributed.py \\
        --data zinc250k --limit 2000 --steps 40 --batch-size 64
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = """
domain = "smiles"
backbone = "autoregressive"
[data]
val_fraction = 0.0
[model]
d_model = {d_model}
n_layers = {n_layers}
n_heads = 4
dropout = 0.0
[train]
batch_size = {batch}
lr = 0.001
warmup_steps = 5
log_every = 1
val_every = 100000
checkpoint_every = 100000
"""


def molgen(*args: str) -> float:
    """Run the CLI; returns wall seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "molgen", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def losses(out: Path) -> np.ndarray:
    with (out / "train_log.csv").open() as handle:
        return np.array([float(r["train_loss"]) for r in csv.DictReader(handle)])


def weights(out: Path) -> dict:
    from molgen.core.serialization import load_tensors

    return load_tensors(out / "model" / "model.safetensors", "cpu")


def max_weight_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="zinc250k")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--results", default=str(HERE / "results" / "distributed.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="molgen-ddp-"))
    config = work / "run.toml"
    config.write_text(CONFIG.format(d_model=args.d_model, n_layers=args.n_layers, batch=args.batch_size))
    common = ["train", "--config", str(config), "--data", args.data, "--limit", str(args.limit), "--max-steps", str(args.steps),
              "--seed", "0", "-q"]
    runs = {
        "1 process": [],
        f"{args.nproc} processes": ["--nproc", str(args.nproc)],
        "1 process, micro-batches of B/4": ["--micro-batch-size", str(max(1, args.batch_size // 4))],
    }
    out: dict = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                 "settings": vars(args), "training": {}}
    reference = None
    for name, extra in runs.items():
        run_dir = work / name.replace(" ", "_").replace(",", "").replace("/", "-")
        seconds = molgen(*common, "--out", str(run_dir), *extra)
        row = {"seconds": round(seconds, 1), "final_loss": float(losses(run_dir)[-1])}
        if reference is None:
            reference = run_dir
        else:
            row["max_loss_difference"] = float(np.abs(losses(run_dir) - losses(reference)).max())
            row["max_weight_difference"] = max_weight_difference(run_dir, reference)
        out["training"][name] = row
        print(name, row)
    files = []
    for k in range(2):
        path = work / f"samples{k}.smi"
        seconds = molgen("sample", str(reference / "model"), "-n", str(args.samples), "--seed", "1", "--nproc", str(args.nproc),
                         "-q", "-o", str(path))
        files.append(path.read_text())
    single = work / "single.smi"
    single_seconds = molgen("sample", str(reference / "model"), "-n", str(args.samples), "--seed", "1", "-q", "-o", str(single))
    out["sampling"] = {"samples": args.samples, f"seconds_{args.nproc}_processes": round(seconds, 1),
                       "seconds_1_process": round(single_seconds, 1), "merged_file_repeats": files[0] == files[1],
                       "lines": len(files[0].splitlines())}
    print(out["sampling"])
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {args.results}")


if __name__ == "__main__":
    main()
