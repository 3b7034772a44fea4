"""Train the shipped ``zinc250k`` prior and copy it into the package.

The autoregressive transformer of ``benchmarks/configs/zinc250k_prior.toml``
is trained on ZINC250k (read through ``MOLGEN_DATA_MIRROR``) for a wall-clock
budget, sampled for a quick quality check, and its ``config.json`` +
``model.safetensors`` are copied to ``molgen/pretrained/data/zinc250k/``,
where ``--prior zinc250k`` finds them.

Usage:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/train_zinc250k_prior.py --minutes 40 --out runs/zinc250k
    # continue the same run to a 62-minute budget (the shipped prior), then check and install:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/train_zinc250k_prior.py --resume --minutes 62 --out runs/zinc250k
    # train the shipped prior further (new optimiser state, weight averaging), without installing:
    MOLGEN_DATA_MIRROR=../shared/data python benchmarks/train_zinc250k_prior.py --init-from molgen/pretrained/data/zinc250k \
        --max-steps 8000 --lr 1e-3 --ema-decay 0.999 --no-install --out runs/zinc250k_more
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from molgen.backbones.base import load_generator
from molgen.core.config import read_toml, validate
from molgen.workflows.training import RunConfig, apply_overrides, run_training

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent / "molgen" / "pretrained" / "data" / "zinc250k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=40.0, help="training wall-clock budget")
    parser.add_argument("--out", default="runs/zinc250k", help="run directory")
    parser.add_argument("--samples", type=int, default=2000, help="samples for the quality check")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out to the new --minutes budget")
    parser.add_argument("--check-only", action="store_true", help="only sample, check and install the model in --out")
    parser.add_argument("--no-install", action="store_true", help="do not copy the model into the package")
    parser.add_argument("--init-from", default=None, help="saved model to continue from (e.g. the shipped prior)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="step budget instead of --minutes (load-independent when jobs share the cores)")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the config's)")
    parser.add_argument("--ema-decay", type=float, default=None, help="average the weights with this decay")
    args = parser.parse_args()

    settings = read_toml(HERE / "configs" / "zinc250k_prior.toml")
    if args.max_steps is not None:
        settings["train"]["max_steps"] = args.max_steps
    else:
        settings["train"]["max_minutes"] = args.minutes
    apply_overrides(settings, {"init_from": args.init_from, "train.lr": args.lr, "train.ema_decay": args.ema_decay})
    config = validate(RunConfig, settings, where="zinc250k prior config")
    if args.check_only:
        from molgen.core.serialization import read_json

        model_dir = Path(args.out) / "model"
        extra = read_json(model_dir / "config.json")["extra"]
        training, data = extra["training"], extra["data"]
        summary = None
    else:
        summary = run_training(config, args.out, resume=args.resume)
        model_dir = summary.model_dir
        training = {"steps": summary.result.steps, "val_loss": summary.result.val_loss,
                    "train_seconds": summary.result.elapsed_s}
        data = {"n_train": summary.n_train}
    model = load_generator(model_dir)
    t0 = time.perf_counter()
    objs = model.sample(args.samples, seed=0)
    seconds = time.perf_counter() - t0
    keys = [model.domain.key(o) for o in objs if o is not None]
    report = {
        "parameters": model.num_parameters(),
        "n_train": data["n_train"],
        "steps": training["steps"],
        "minutes": args.minutes if args.max_steps is None else None,
        "init_from": args.init_from,
        "val_loss": training["val_loss"],
        "train_seconds": training.get("train_seconds"),
        "samples": args.samples,
        "validity": len(keys) / args.samples,
        "uniqueness": len(set(keys)) / max(1, len(keys)),
        "samples_per_second": args.samples / seconds,
    }
    print(json.dumps(report, indent=2))
    (Path(args.out) / "prior_check.json").write_text(json.dumps(report, indent=2))
    if not args.no_install:
        PACKAGE_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(model_dir / name, PACKAGE_DIR / name)
        print(f"installed into {PACKAGE_DIR}")


if __name__ == "__main__":
    main()
