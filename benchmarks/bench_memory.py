"""Memory per batch size (issue 33, item 4): how much a batch of sampling and
a training step of the shipped zinc250k prior (autoregressive, 6 layers, d
128, max length 128) add on top of the loaded model, in float32 and under bf16
autocast, with the KV cache's own size.

Each measurement runs in a fresh process and reports the rise of its peak
resident memory (``ru_maxrss``) over the loaded model, and the time taken.
On a CPU this is host memory; the same tensors (KV cache, activations,
gradients) are what a GPU holds, so the figures size a GPU batch as well.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_memory.py --sample 256,1024,4096 --train 64,256,1024
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, resource, sys, time
import torch
from molgen.backbones.base import load_generator
from molgen.core.device import autocast
from molgen.pretrained import resolve_model_path

mode, batch, precision, length = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
torch.manual_seed(0)
model = load_generator(resolve_model_path("zinc250k"), torch.device("cpu"))
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
vocab = len(model.domain.tokenizer.vocab)
tokens = torch.randint(4, vocab, (batch, length))
batch_dict = {"tokens": tokens, "mask": torch.ones_like(tokens, dtype=torch.bool)}
if mode == "train":  # warm up allocator and kernels on a small batch first
    model.train()
    with autocast("cpu", precision):
        loss = model.loss({k: v[:2] for k, v in batch_dict.items()})["loss"]
    loss.backward()
    model.zero_grad(set_to_none=True)
else:
    with autocast("cpu", precision):
        model.sample(2, seed=0)
before = peak()
start = time.perf_counter()
if mode == "train":
    with autocast("cpu", precision):
        loss = model.loss(batch_dict)["loss"]
    loss.backward()
    work = batch * (length - 1)
else:
    with autocast("cpu", precision):
        out = model.sample(batch, seed=0, batch_size=batch)
    work = batch
seconds = time.perf_counter() - start
params = sum(p.numel() for p in model.parameters())
print(json.dumps({"rise_mb": (peak() - before) / 2**20, "loaded_mb": before / 2**20, "seconds": seconds,
                  "per_s": work / seconds, "params": params}))
"""


def kv_cache_mb(batch: int, n_layers: int = 6, max_length: int = 128, d_model: int = 128, bytes_per: int = 4) -> float:
    """Keys and values of every layer for ``batch`` rows of ``max_length``."""
    return 2 * n_layers * batch * max_length * d_model * bytes_per / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", default="256,1024,4096", help="sampling batch sizes")
    parser.add_argument("--train", default="64,256,1024", help="training batch sizes")
    parser.add_argument("--length", type=int, default=64, help="tokens per training row (ZINC SMILES: ~45 on average)")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--out", default=str(HERE / "results" / "memory.json"))
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    rows = []
    plan = [("sample", int(b)) for b in args.sample.split(",") if b] + [("train", int(b)) for b in args.train.split(",") if b]
    for mode, batch in plan:
        for precision in args.precisions.split(","):
            done = subprocess.run([sys.executable, "-c", CHILD, mode, str(batch), precision, str(args.length)], env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            row = {"mode": mode, "batch": batch, "precision": precision, **json.loads(done.stdout.strip().splitlines()[-1])}
            if mode == "sample":
                row["kv_cache_mb"] = kv_cache_mb(batch, bytes_per=2 if precision == "bf16" else 4)
            print(json.dumps(row), flush=True)
            rows.append(row)
    report = {"date": datetime.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}", "model": "zinc250k",
              "train_length": args.length, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
