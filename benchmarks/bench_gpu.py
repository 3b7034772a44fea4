"""GPU throughput (issue 33, item 5): training tokens/s and sampling
molecules/s of an autoregressive SMILES transformer at batch 256-4096, in
float32 and bf16, and their fraction of the device's measured matmul peak.

FLOPs are counted as 6 x parameters per trained token (forward and backward)
and 2 x parameters per sampled token (EOS included); attention's own FLOPs
are left out, so the fractions are a lower bound. The peak is the rate of a
8192 x 8192 matmul in the same precision, measured in the same run.

    .venv/bin/python benchmarks/bench_gpu.py --device cuda --batches 256,1024,4096
    .venv/bin/python benchmarks/bench_gpu.py --device cpu --batches 64 --steps 2   # checks the script

Model: the shipped zinc250k prior (6 layers, d 128, 1.2 M parameters) by
default, or ``--d-model/--layers`` for a fresh one of another size (a GPU is
underused by a 1 M-parameter model: the larger one shows what it can do).
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = 8192, repeats: int = 20) -> float:
    """FLOP/s of a square matmul of ``size`` (smaller on a CPU)."""
    size = size if device.type == "cuda" else 1024
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(args, device: torch.device):
    from molgen.backbones.base import load_generator
    from molgen.pretrained import resolve_model_path

    prior = load_generator(resolve_model_path("zinc250k"), device)
    if args.d_model is None:
        return prior
    from molgen.backbones.autoregressive import AutoregressiveTransformer

    return AutoregressiveTransformer.from_domain(prior.domain, d_model=args.d_model, n_layers=args.layers,
                                                 n_heads=max(4, args.d_model // 64), d_ff=4 * args.d_model,
                                                 max_length=128).to(device)


def main() -> None:
    from molgen.core.device import autocast, select_device

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", default="256,1024,4096")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per setting")
    parser.add_argument("--length", type=int, default=64, help="tokens per training row")
    parser.add_argument("--d-model", type=int, help="a fresh model of this width instead of the shipped prior")
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args()
    device = select_device(args.device)
    torch.manual_seed(0)
    model = build_model(args, device)
    params = sum(p.numel() for p in model.parameters())
    vocab = len(model.domain.tokenizer.vocab)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    peaks = {p: matmul_peak(device, torch.bfloat16 if p == "bf16" else torch.float32) for p in args.precisions.split(",")}
    rows = []
    for precision in args.precisions.split(","):
        for batch in [int(b) for b in args.batches.split(",")]:
            tokens = torch.randint(4, vocab, (batch, args.length), device=device)
            data = {"tokens": tokens, "mask": torch.ones_like(tokens, dtype=torch.bool)}
            model.train()
            for step in range(args.steps + 1):  # the first step warms up
                if step == 1:
                    _sync(device)
                    start = time.perf_counter()
                with autocast(device, precision):
                    loss = model.loss(data)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            _sync(device)
            train_tps = args.steps * batch * (args.length - 1) / (time.perf_counter() - start)
            model.eval()
            with autocast(device, precision):
                model.sample(min(batch, 64), seed=0, batch_size=batch)  # warm-up
                _sync(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                start = time.perf_counter()
                ids = model.sample_ids(batch, seed=1, batch_size=batch)
                _sync(device)
            seconds = time.perf_counter() - start
            sampled_tokens = sum(len(s) + 1 for s in ids)
            row = {
                "precision": precision, "batch": batch, "train_tokens_per_s": train_tps,
                "train_fraction_of_peak": 6 * params * train_tps / peaks[precision],
                "sample_molecules_per_s": batch / seconds, "sample_tokens_per_s": sampled_tokens / seconds,
                "sample_fraction_of_peak": 2 * params * sampled_tokens / seconds / peaks[precision],
                "peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    report = {"date": datetime.date.today().isoformat(), "device": name, "params": params,
              "matmul_peak_tflops": {k: v / 1e12 for k, v in peaks.items()}, "train_length": args.length, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
