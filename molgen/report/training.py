"""Report of a training run directory (``molgen train`` / :func:`~molgen.workflows.run_training`):
loss curves from ``train_log.csv``, the settings of ``run.json`` and the
saved model's size."""

from __future__ import annotations

import csv
import json
import math
import struct
from pathlib import Path
from typing import Any

from molgen.report.files import read_json_file
from molgen.report.html import Image, Page, flatten

LOG_NAME = "train_log.csv"
RUN_NAME = "run.json"
MODEL_DIRS = ("model", "checkpoint")


def is_training_run(path: Path) -> bool:
    """A directory holding a training log, or run settings with a saved model."""
    return (path / LOG_NAME).is_file() or ((path / RUN_NAME).is_file() and any((path / d / "config.json").is_file() for d in MODEL_DIRS))


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def read_log(path: Path) -> list[dict[str, float]]:
    """Rows of a training log as numbers (NaN where a cell is empty)."""
    with path.open(newline="") as handle:
        return [{k: _number(v) for k, v in row.items() if k} for row in csv.DictReader(handle)]


def build_training(page: Page, run_dir: Path) -> None:
    """Loss curves, run settings and model size of a training run."""
    _loss_section(page, run_dir)
    settings = page.section("Run settings")
    if (run_dir / RUN_NAME).is_file():
        config = read_json_file(run_dir / RUN_NAME)
        page.header.append(f"domain: {config.get('domain', '?')} \u00b7 backbone: {config.get('backbone', '?')}")
        settings.key_values(flatten(config))
    else:
        settings.note(f"No {RUN_NAME} in the run directory.")
    _model_section(page, run_dir)


def _loss_section(page: Page, run_dir: Path) -> None:
    from molgen.report.figures import line_plot

    section = page.section("Loss curves")
    path = run_dir / LOG_NAME
    if not path.is_file():
        section.note(f"No {LOG_NAME}: the run has not logged a step yet.")
        return
    rows = [r for r in read_log(path) if not math.isnan(r.get("step", math.nan))]
    if not rows:
        section.note(f"{LOG_NAME} holds no rows yet.")
        return
    steps = [r["step"] for r in rows]
    train = [(r["step"], r.get("train_loss", math.nan)) for r in rows if not math.isnan(r.get("train_loss", math.nan))]
    val = [(r["step"], r["val_loss"]) for r in rows if not math.isnan(r.get("val_loss", math.nan))]
    series = [("train loss", [s for s, _ in train], [v for _, v in train])]
    if val:
        series.append(("validation loss", [s for s, _ in val], [v for _, v in val]))
    section.image(Image.png(line_plot(series, "step", "loss (nats per token)"), alt="loss curves"),
                  caption=f"{len(rows)} logged rows, steps {int(min(steps))} to {int(max(steps))}")
    if not val:
        section.note("No validation loss was logged (no validation split, or no validation step reached yet).")
    last = rows[-1]
    figures = [("last logged step", int(last["step"])), ("last train loss (window mean)", last.get("train_loss", math.nan))]
    if val:
        best = min(val, key=lambda p: p[1])
        figures += [("last validation loss", val[-1][1]), ("best validation loss", best[1]), ("best validation step", int(best[0]))]
    for name, label in (("tokens_per_s", "tokens per second (last window)"), ("elapsed_s", "optimisation seconds"),
                        ("epoch", "epochs"), ("lr", "last learning rate")):
        if not math.isnan(last.get(name, math.nan)):
            figures.append((label, last[name]))
    section.table(["figure", "value"], figures)


def _model_section(page: Page, run_dir: Path) -> None:
    section = page.section("Model")
    folder = next((run_dir / d for d in MODEL_DIRS if (run_dir / d / "config.json").is_file()), None)
    if folder is None:
        section.note("No saved model (model/ or checkpoint/) yet.")
        return
    if folder.name != "model":
        section.note("No final model/ yet (run in progress or interrupted): showing the last checkpoint.")
    config = read_json_file(folder / "config.json")
    weights = folder / "model.safetensors"
    parameters, how = _parameter_count(folder)
    rows: list[tuple[str, Any]] = [("directory", str(folder)), ("backbone", config.get("backbone")),
                                   ("domain", (config.get("domain") or {}).get("name"))]
    rows.append(("parameters", parameters if parameters is not None else "unknown"))
    if how:
        rows.append(("parameters counted", how))
    rows.append(("weights file (MB)", weights.stat().st_size / 1e6 if weights.is_file() else None))
    rows += flatten(config.get("hparams") or {}, "hparams")
    vocab = ((config.get("domain") or {}).get("tokenizer") or {}).get("vocab")
    if isinstance(vocab, (list, dict)):
        rows.append(("vocabulary size", len(vocab)))
    section.key_values(rows)
    extra = config.get("extra") or {}
    if extra.get("training"):
        section.key_values(flatten(extra["training"]), caption="training result")
    if extra.get("data"):
        section.key_values(flatten(extra["data"]), caption="training data")


def _parameter_count(folder: Path) -> tuple[int | None, str]:
    """Trainable parameters of the saved model (loading it on the CPU), else
    the element count of its weights file (tied weights then count twice)."""
    try:
        from molgen.backbones.base import Generator

        return Generator.from_pretrained(folder).num_parameters(), ""
    except Exception:  # noqa: BLE001  (an old or foreign model must still get a report)
        pass
    try:
        return _safetensors_elements(folder / "model.safetensors"), "elements of model.safetensors (tied weights count twice)"
    except (OSError, ValueError, KeyError):
        return None, ""


def _safetensors_elements(path: Path) -> int:
    """Element count of a safetensors file from its JSON header (no tensor is read)."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            count = 1
            for dim in info["shape"]:
                count *= int(dim)
            total += count
    return total
