"""Benchmark: autoregressive SMILES model on a MOSES subset, on this CPU.

Trains on a seeded random subset of moses-train for a wall-clock budget,
samples 10,000 molecules, and measures sampling throughput with and without
the key/value cache against this machine's measured matmul FLOP/s.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_smiles_ar.py \
        --limit 50000 --minutes 20 --samples 10000 --out benchmarks/out/moses_ar

Writes ``results.json`` and ``results.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import torch

from molgen.backbones import load_generator
from molgen.datasets import load_texts
from molgen.domains import SmilesDomain
from molgen.workflows import RunConfig, run_training


def matmul_gflops(n: int = 1024, repeats: int = 50) -> float:
    """Measured float32 GFLOP/s of an n x n matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(5):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def sampling_speed(model, n: int, batch_size: int, use_cache: bool, seed: int = 0) -> dict:
    """Molecules/s and achieved GFLOP/s (2 x parameters per generated token)."""
    start = time.perf_counter()
    ids = model.sample_ids(n, batch_size=batch_size, seed=seed, use_cache=use_cache)
    seconds = time.perf_counter() - start
    tokens = sum(len(x) + 1 for x in ids)  # + the EOS step
    flops = 2 * model.num_parameters() * tokens
    return {
        "n": n,
        "batch_size": batch_size,
        "cache": use_cache,
        "seconds": round(seconds, 2),
        "molecules_per_s": round(n / seconds, 1),
        "tokens_per_s": round(tokens / seconds, 1),
        "gflops": round(flops / seconds / 1e9, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--speed-samples", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--d-ff", type=int, default=None, help="MLP width (default 4 x d-model)")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr of the cosine decay, x peak lr")
    parser.add_argument("--augment", action="store_true", help="randomized-SMILES augmentation")
    parser.add_argument("--out", default="benchmarks/out/moses_ar")
    parser.add_argument(
        "--reuse", action="store_true", help="skip training: evaluate the model already trained in --out/run"
    )
    args = parser.parse_args()
    out = Path(args.out)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))  # OMP_NUM_THREADS when set

    config = RunConfig.model_validate(
        dict(
            seed=args.seed,
            device="cpu",
            data=dict(source="moses-train", limit=args.limit, val_fraction=0.02, augment=args.augment),
            model=dict(
                d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, d_ff=args.d_ff, dropout=args.dropout
            ),
            train=dict(
                batch_size=args.batch_size, lr=args.lr, min_lr_ratio=args.min_lr_ratio, warmup_steps=100,
                max_minutes=args.minutes,
                val_every=250, checkpoint_every=250, progress=False,
            ),
        )
    )
    if args.reuse:
        model = load_generator(out / "run" / "model")
        saved = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
        training, data_info = saved.get("training"), saved.get("data")
    else:
        summary = run_training(config, out / "run")
        model = load_generator(summary.model_dir)
        r = summary.result
        training = {
            "minutes": args.minutes,
            "steps": r.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "min_lr_ratio": args.min_lr_ratio,
            "train_loss": round(r.train_loss, 4),
            "val_loss": round(r.val_loss, 4) if r.val_loss is not None else None,
            "tokens_per_s": round(r.tokens_per_s, 1),
            "tokens_seen": r.tokens_seen,
        }
        data_info = {
            "source": "moses-train", "subset": args.limit, "n_train": summary.n_train, "n_val": summary.n_val,
            "augment": args.augment,
        }

    domain = SmilesDomain()
    train_keys = set(load_texts("moses-train", domain, limit=args.limit, seed=args.seed, canonicalize=True).texts)

    start = time.perf_counter()
    texts = model.sample_texts(args.samples, seed=args.seed, batch_size=512)
    sample_seconds = time.perf_counter() - start
    keys = [domain.key(m) if (m := domain.try_parse(t)) is not None else None for t in texts]
    valid = [k for k in keys if k is not None]
    unique = set(valid)
    quality = {
        "n_samples": args.samples,
        "validity": round(len(valid) / len(texts), 4),
        "unique_at_n": round(len(unique) / max(len(valid), 1), 4),
        "novelty": round(len(unique - train_keys) / max(len(unique), 1), 4),
        "sampling_molecules_per_s": round(args.samples / sample_seconds, 1),  # sampling + detokenizing, batch 512
    }

    peak = matmul_gflops()
    speed = []
    for batch_size in (256, 512, 1024):
        speed.append(sampling_speed(model, args.speed_samples, batch_size, True, args.seed))
    speed.append(sampling_speed(model, 512, 256, False, args.seed))
    for row in speed:
        row["fraction_of_matmul_peak"] = round(row["gflops"] / peak, 3)

    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "seed": args.seed,
        "data": data_info,
        "model": {"parameters": model.num_parameters(), **model.config.model_dump()},
        "training": training,
        "quality": quality,
        "matmul_1024_fp32_gflops": round(peak, 1),
        "sampling_speed": speed,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
