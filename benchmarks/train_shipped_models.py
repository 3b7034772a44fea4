"""Train the shipped ``amp`` and ``qm9`` models and install them in the package.

Each recipe below is a complete :class:`~molgen.workflows.training.RunConfig`
with a *step* budget (not minutes), so the weights do not depend on how busy
the machine is. After training, the script copies ``config.json`` +
``model.safetensors`` from ``<out>/<name>/model`` into
``molgen/pretrained/data/<name>/``, with the data set's absolute path removed
from ``config.json`` (the registered data set name stays). Run the models one
after the other on one torch thread (the shipped ones were made so):

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_shipped_models.py \\
        --models amp --out /tmp/shipped
    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/train_shipped_models.py \\
        --models qm9 --out /tmp/shipped

The recipes go through :func:`~molgen.workflows.training.run_training`, the
code behind ``molgen train`` (``--print-config NAME`` prints one as JSON: the
sections of a ``molgen train --config`` TOML file). ``--set KEY=VALUE``
(dotted keys, JSON values, e.g. ``--set model.dropout=0.1``) changes a
recipe, for trying alternatives with ``--no-install``.

``amp`` also reports the mean negative log-likelihood per residue of the
registered ``amp-positive-val`` split (never seen in training; the data set's
test split is kept for :mod:`benchmarks.measure_shipped_models`), which is what
the recipe was chosen on. The quality figures of every shipped model come from
``benchmarks/measure_shipped_models.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
PACKAGE_DATA = HERE.parent / "molgen" / "pretrained" / "data"

#: Shipped name -> RunConfig settings (all other settings are RunConfig's defaults).
RECIPES: dict[str, dict] = {
    # The autoregressive transformer of bench_peptides.py (d128 x 4 layers, 797k
    # parameters, dropout 0.1) on the AMPs of amp-positive-train, ending with the
    # weights of the lowest validation loss: the 10-minute bench run over-fitted
    # this small set (1,482 training sequences). Chosen over dropout 0.2 and over
    # dropout 0.3 with weight averaging on the amp-positive-val likelihood and
    # property distances (benchmarks/RESULTS.md, "Shipped models").
    "amp": {
        "seed": 0, "domain": "protein", "backbone": "autoregressive", "device": "cpu",
        "data": {"source": "amp-positive-train", "val_fraction": 0.05},
        "model": {"d_model": 128, "n_layers": 4, "n_heads": 4, "dropout": 0.1},
        "train": {"batch_size": 64, "lr": 1e-3, "warmup_steps": 100, "max_steps": 2000, "keep_best": True,
                  "val_every": 100, "checkpoint_every": 500, "progress": False},
    },
    # The default graph-diffusion backbone of bench_graph_diffusion.py (graph
    # transformer, 4 layers, 1.32M parameters, marginal transitions) on
    # qm9-train, heavy atoms only, with weight averaging (as DiGress samples).
    "qm9": {
        "seed": 0, "domain": "molgraph", "backbone": "graph-diffusion", "device": "cpu",
        "data": {"source": "qm9-train", "val_fraction": 0.02},
        "model": {},
        "train": {"batch_size": 128, "lr": 1e-3, "warmup_steps": 200, "max_steps": 4000, "ema_decay": 0.999,
                  "val_every": 500, "checkpoint_every": 1000, "progress": False},
    },
}

#: Shipped name -> registered split scored by the held-out likelihood check (autoregressive models).
CHECK_SPLITS = {"amp": "amp-positive-val"}


def recipe(name: str, settings: list[str]) -> dict:
    """The settings of recipe ``name`` with ``KEY=VALUE`` changes applied.

    Raises:
        MolgenError: unknown recipe or a malformed ``KEY=VALUE``.
    """
    from molgen.core.errors import MolgenError
    from molgen.workflows.training import apply_overrides

    if name not in RECIPES:
        raise MolgenError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}")
    data = copy.deepcopy(RECIPES[name])
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise MolgenError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value  # a bare string
        apply_overrides(data, {key: parsed})
    return data


def heldout_nll(model_dir: Path, source: str) -> dict:
    """Mean negative log-likelihood per token (EOS included) of a registered
    split under an autoregressive model."""
    from molgen.backbones.base import Generator
    from molgen.datasets import load_texts

    model = Generator.from_pretrained(model_dir)
    tokenizer = model.domain.tokenizer
    loaded = load_texts(source, model.domain, on_invalid="skip").texts
    # BOS + tokens + EOS must fit the model's positions
    texts = [t for t in loaded if len(tokenizer.tokenize(t)) + 2 <= model.config.max_length]
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(texts), 256):
            batch = model.make_batch(texts[start:start + 256], on_unknown="unk")
            total -= float(model.log_likelihood(batch).sum())
            tokens += int(batch["mask"][:, 1:].sum())
    return {"split": source, "n": len(texts), "n_too_long": len(loaded) - len(texts), "nll_per_token": round(total / tokens, 4)}


def install(model_dir: Path, name: str) -> Path:
    """Copy a trained model into the package, without local paths.

    Returns:
        The package directory of the model.
    """
    from molgen.core.serialization import read_json, write_json

    target = PACKAGE_DATA / name
    target.mkdir(parents=True, exist_ok=True)
    config = read_json(model_dir / "config.json")
    config.get("extra", {}).get("data", {}).pop("path", None)  # absolute path of this machine's mirror
    config.setdefault("extra", {})["recipe"] = f"benchmarks/train_shipped_models.py --models {name}"
    write_json(target / "config.json", config)
    shutil.copy2(model_dir / "model.safetensors", target / "model.safetensors")
    for file in ("config.json", "model.safetensors"):  # readable by all, as package data (the run writes 0600 files)
        (target / file).chmod(0o644)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="amp,qm9", help="comma-separated recipes (trained one after the other)")
    parser.add_argument("--out", default="runs/shipped", help="run directories go to OUT/<name>")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="change a recipe setting (dotted key, JSON value); repeatable")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--no-install", action="store_true", help="train and check only; leave the package alone")
    parser.add_argument("--print-config", metavar="NAME", help="print recipe NAME (with --set changes) and exit")
    args = parser.parse_args()
    if args.print_config:
        print(json.dumps(recipe(args.print_config, args.settings), indent=2))
        return
    from molgen.core.config import validate
    from molgen.workflows.training import RunConfig, run_training

    torch.set_num_threads(args.threads)
    for name in args.models.split(","):
        config = validate(RunConfig, recipe(name, args.settings), where=f"recipe {name}")
        began = time.perf_counter()
        summary = run_training(config, Path(args.out) / name)
        r = summary.result
        report = {
            "name": name, "parameters": summary.n_parameters, "n_train": summary.n_train, "n_val": summary.n_val,
            "steps": r.steps, "best_step": r.best_step, "train_loss": round(r.train_loss, 4),
            "val_loss": None if r.val_loss is None else round(r.val_loss, 4),
            "train_seconds": round(r.elapsed_s, 1), "wall_seconds": round(time.perf_counter() - began, 1),
            "threads": args.threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "weights_bytes": (summary.model_dir / "model.safetensors").stat().st_size, "settings": args.settings,
        }
        if name in CHECK_SPLITS:
            report["heldout"] = heldout_nll(summary.model_dir, CHECK_SPLITS[name])
        if not args.no_install:
            report["installed"] = str(install(summary.model_dir, name).relative_to(HERE.parent))
        (Path(args.out) / name / "shipped_check.json").write_text(json.dumps(report, indent=2))
        print(json.dumps(report, indent=2), flush=True)


if __name__ == "__main__":
    main()
