"""Masked diffusion on SMILES: how validity grows with training steps.

Trains the masked-diffusion backbone of ``bench_backbones.py`` (same data,
width, depth, batch and learning rate) for ``--max-steps`` steps under one
warm-up + cosine schedule, and at every ``--every`` steps samples
``--samples`` SMILES (seeded, ``--sampling-steps`` denoising steps) and
records validity, uniqueness among the valid ones and the held-out loss.
The model ends in ``<out>/masked-diffusion/model``, so
``bench_backbones.py --backbones masked-diffusion --reuse --out <out>`` scores
it with the full MOSES metrics afterwards.

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/md_training_curve.py \\
        --max-steps 8000 --every 1000 --out benchmarks/out/backbones_md_long
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

from molgen.domains import SmilesDomain
from molgen.workflows import RunConfig, run_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=8000)
    parser.add_argument("--every", type=int, default=1000, help="steps between validity checks (a multiple of 250)")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--sampling-steps", type=int, default=64)
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--length-model", choices=["padding", "sampled"], default="padding")
    parser.add_argument("--out", default="benchmarks/out/backbones_md_long")
    args = parser.parse_args()
    if args.every % 250:
        parser.error("--every must be a multiple of the validation interval (250)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain = SmilesDomain()
    config = RunConfig.model_validate(dict(
        backbone="masked-diffusion", seed=args.seed, device="cpu",
        data=dict(source="moses-train", limit=args.limit, val_fraction=0.02),
        model=dict(d_model=128, n_layers=6, n_heads=8, d_ff=512, max_length=56, sampling_steps=args.sampling_steps,
                   length_model=args.length_model),
        train=dict(batch_size=args.batch_size, lr=args.lr, warmup_steps=100, max_steps=args.max_steps,
                   val_every=250, checkpoint_every=500, progress=False),
    ))
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "seed": args.seed, "data": f"moses-train seeded subset of {args.limit} (2 % held out)",
        "settings": vars(args), "curve": [],
    }

    def check(trainer, val_loss):
        if trainer.step % args.every and trainer.step != args.max_steps:
            return
        start = time.perf_counter()
        texts = trainer.model.sample_texts(args.samples, seed=args.seed, batch_size=250, steps=args.sampling_steps)
        seconds = time.perf_counter() - start
        valid = [m for t in texts if (m := domain.try_parse(t)) is not None]
        row = {
            "step": trainer.step, "epochs": round(trainer.step / trainer.train_data.batches_per_epoch, 2),
            "train_minutes": round(trainer.elapsed / 60, 1), "val_loss": round(val_loss, 4),
            "validity": round(len(valid) / len(texts), 4),
            "unique_of_valid": round(len({domain.key(m) for m in valid}) / max(len(valid), 1), 4),
            "mean_length": round(sum(map(len, texts)) / len(texts), 1), "sampling_s": round(seconds, 1),
        }
        results["curve"].append(row)
        (out / "curve.json").write_text(json.dumps(results, indent=2))
        print(json.dumps(row), flush=True)

    run_training(config, out / "masked-diffusion", on_validation=check)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
