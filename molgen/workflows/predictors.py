"""Fit a learned property predictor on a data set and predict with it
(``molgen fit-predictor`` / ``molgen predict``)."""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molgen.core.errors import ConfigError, DataError, MolgenError
from molgen.core.registry import DOMAINS
from molgen.core.serialization import read_json, write_json
from molgen.scoring.learned import REPORT_NAME


def split_rows(objs: Sequence[Any], domain_name: str, split: str, seed: int,
               fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Seeded train/validation/test positions: ``scaffold`` (balanced Murcko
    scaffold split, molecules only) or ``random``.

    Raises:
        ConfigError: unknown split, or a scaffold split of non-molecules.
    """
    from molgen.datasets.splits import scaffold_split_indices, split_indices

    if split == "random":
        return split_indices(len(objs), fractions, seed)
    if split == "scaffold":
        if not DOMAINS.get(domain_name).has_scaffold:
            raise ConfigError("the scaffold split is for molecules; use --split random")
        from molgen.loops.diversity import scaffold_key

        return scaffold_split_indices([scaffold_key(m) for m in objs], fractions, seed)
    raise ConfigError(f"unknown split {split!r}; use scaffold or random")


def test_metrics(task: str, y_true: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """Held-out figures: RMSE, MAE, R^2 and calibration for regression;
    ROC-AUC (macro over tasks) for classification."""
    from molgen.predictors.metrics import calibration_report, mae, rmse, roc_auc

    if task == "classification":
        return {"roc_auc": roc_auc(y_true, mean)}
    keep = np.isfinite(y_true) & np.isfinite(mean)
    residual = float(np.sum((y_true[keep] - mean[keep]) ** 2))
    total = float(np.sum((y_true[keep] - y_true[keep].mean()) ** 2)) or float("nan")
    out = {"rmse": rmse(y_true, mean), "mae": mae(y_true, mean), "r2": 1 - residual / total}
    out.update({f"calibration_{k}": v for k, v in calibration_report(y_true, mean, std).items()})
    return out


@dataclass
class FitSummary:
    """What :func:`fit_predictor` did."""

    out_dir: Path
    report: dict[str, Any]


def fit_predictor(
    data: str,
    targets: Sequence[str],
    out_dir: str | Path,
    *,
    domain: str = "smiles",
    model: str | None = None,
    task: str | None = None,
    split: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    hparams: dict[str, Any] | None = None,
    progress: bool = False,
) -> FitSummary:
    """Train a predictor with a seeded train/validation/test split and save it.

    Unparsable entries are skipped and counted, rows whose targets are all
    NaN are dropped and counted; the test split's metrics go into the report.

    Args:
        data: Registered data set, CSV or SD file (SD properties as targets).
        targets: Target columns (several: multi-task).
        out_dir: Where the predictor (``config.json``, ``model.safetensors``)
            and ``predictor.json`` (domain, targets, split, counts, test
            metrics) are written.
        domain: ``smiles`` or ``crystal``.
        model: Predictor name (default ``mpnn`` for molecules, ``cgcnn`` for crystals).
        task: ``regression`` or ``classification`` (default: classification
            when every target value is 0 or 1).
        split: ``scaffold`` (molecules' default) or ``random``.
        seed: Seed of the split and of the ensemble.
        limit: Seeded random subset of the data.
        hparams: Predictor settings (``n_models``, ``epochs``, ``hidden``...).
        progress: Show a bar over the ensemble members (on a terminal).

    Returns:
        The summary with the report.

    Raises:
        MolgenError: unknown names, missing columns, or no usable rows.
    """
    from molgen.datasets import load_texts
    from molgen.predictors.registry import PREDICTORS

    dom = DOMAINS.get(domain)()
    model = model or ("cgcnn" if domain == "crystal" else "mpnn")
    if model not in PREDICTORS:
        raise ConfigError(f"unknown predictor {model!r}; valid: {', '.join(sorted(PREDICTORS))}")
    if not targets:
        raise ConfigError("give at least one --target column")
    t0 = time.perf_counter()
    loaded = load_texts(data, dom, limit=limit, seed=seed, on_invalid="skip", targets=tuple(targets))
    y = np.column_stack([np.asarray(loaded.targets[t], dtype=float) for t in targets])
    keep = ~np.isnan(y).all(axis=1)
    objs = [dom.parse(t) for t, k in zip(loaded.texts, keep) if k]
    texts = [t for t, k in zip(loaded.texts, keep) if k]
    y = y[keep]
    if len(objs) < 10:
        raise DataError(f"{data}: only {len(objs)} usable rows (need at least 10)")
    finite = y[np.isfinite(y)]
    task = task or ("classification" if np.isin(finite, (0.0, 1.0)).all() else "regression")
    split = split or ("scaffold" if DOMAINS.get(domain).has_scaffold else "random")
    parts = split_rows(objs, domain, split, seed)
    target = y if len(targets) > 1 else y[:, 0]
    pick = lambda idx: ([objs[i] for i in idx], target[idx])  # noqa: E731
    predictor = PREDICTORS[model](task=task, seed=seed, **(hparams or {}))
    predictor.show_progress = progress
    t1 = time.perf_counter()
    predictor.fit(*pick(parts["train"]), val=pick(parts["val"]) if len(parts["val"]) else None)
    fit_seconds = time.perf_counter() - t1
    test_objs, test_y = pick(parts["test"])
    mean, std = predictor.predict(test_objs)
    mean, std = (mean, std) if len(targets) > 1 else (mean.reshape(-1), std.reshape(-1))
    out_dir = Path(out_dir)
    predictor.save(out_dir)
    report = {
        "data": data, "domain": domain, "predictor": model, "task": task, "targets": list(targets), "split": split, "seed": seed,
        "n_loaded": len(loaded.texts), "n_invalid_skipped": len(loaded.skipped), "n_missing_targets_dropped": int((~keep).sum()),
        "n_train": int(len(parts["train"])), "n_val": int(len(parts["val"])), "n_test": int(len(parts["test"])),
        "test": test_metrics(task, np.asarray(test_y, dtype=float), mean, std),
        "fit_seconds": fit_seconds, "total_seconds": time.perf_counter() - t0,
        "hparams": predictor.get_params(), "example": texts[0],
    }
    write_json(out_dir / REPORT_NAME, report)
    return FitSummary(out_dir, report)


def load_fitted(directory: str | Path):
    """``(predictor, report)`` of a directory written by :func:`fit_predictor`.

    Raises:
        CheckpointError: not a predictor directory.
    """
    from molgen.predictors.registry import load_predictor

    directory = Path(directory)
    report = read_json(directory / REPORT_NAME)
    return load_predictor(directory), report


#: Entries predicted together (bounded memory; a bar can follow a long file).
PREDICT_CHUNK = 1024


def predict_file(directory: str | Path, path: str | Path, output: str | Path, id_column: str | None = None,
                 progress: bool = False) -> dict[str, Any]:
    """Predict every entry of a file and write a CSV: the identifier when the
    input has one (named after its source column, else ``id``), the input
    text, then ``<target>_mean`` and ``<target>_std`` per target, then
    ``reason`` (why a row has no prediction). Invalid inputs (and SD records
    RDKit cannot read) stay in the table as NaN.

    Args:
        directory: Directory written by :func:`fit_predictor`.
        path: ``.smi``, ``.csv`` or ``.sdf`` of molecules, or a CSV with a
            ``cif`` column for crystals.
        output: CSV to write.
        id_column: Identifier column (default: see
            :func:`molgen.datasets.readers.read_labeled`).
        progress: Show a progress bar (on a terminal).

    Returns:
        Counts: ``{"n", "n_predicted", "path"}``.

    Raises:
        MolgenError: unreadable input or predictor, an output that is not
            ``.csv``, or a missing ``id_column``.
    """
    from molgen.datasets.readers import read_labeled, require_output_suffix

    require_output_suffix(output, (".csv",))
    predictor, report = load_fitted(directory)
    domain = DOMAINS.get(report["domain"])()
    labeled = read_labeled(Path(path), id_column)
    records = labeled.records
    objs, reasons = [], []
    for record in records:
        try:
            if record.error:
                raise MolgenError(record.error)
            objs.append(domain.parse(record.text))
            reasons.append("")
        except MolgenError as exc:
            objs.append(None)
            reasons.append(f"invalid input: {exc}")
    from molgen.core.progress import progress_bar

    means, stds = [], []
    with progress_bar(len(objs), desc="predicting", unit="entry", enabled=progress) as bar:
        for start in range(0, max(len(objs), 1), PREDICT_CHUNK):
            part = objs[start : start + PREDICT_CHUNK]
            m, s = predictor.predict(part)
            means.append(np.asarray(m).reshape(len(part), -1))
            stds.append(np.asarray(s).reshape(len(part), -1))
            bar.update(len(part))
    mean, std = np.concatenate(means), np.concatenate(stds)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)

    def cell(value: float) -> str:
        return "" if math.isnan(value) else f"{value:.6g}"

    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = ["input"]
        for name in report["targets"]:
            header += [f"{name}_mean", f"{name}_std"]
        header.append("reason")
        if labeled.ids is not None:
            header.insert(0, labeled.id_name if labeled.id_name not in header else "id")
        writer.writerow(header)
        for i, record in enumerate(records):
            row = ([labeled.ids[i]] if labeled.ids is not None else []) + [record.text]
            for t in range(mean.shape[1]):
                row += [cell(mean[i, t]), cell(std[i, t])]
            writer.writerow(row + [reasons[i]])
    return {"n": len(records), "n_predicted": int(np.isfinite(mean[:, 0]).sum()), "path": output}
