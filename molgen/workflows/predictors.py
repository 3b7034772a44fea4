"""Fit a learned property predictor on a data set and predict with it
(``molgen fit-predictor`` / ``molgen predict``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molgen.core.device import select_device
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


def test_metrics(task: str, y_true: np.ndarray, mean: np.ndarray, std: np.ndarray,
                 intervals: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """Held-out figures: RMSE, MAE, R^2 and calibration for regression;
    ROC-AUC (macro over tasks) for classification. With ``intervals`` (from
    :meth:`CalibratedPredictor.predict_intervals`) also the interval coverage,
    the share of test molecules in domain and the RMSE in and out of domain."""
    from molgen.predictors.metrics import calibration_report, mae, rmse, roc_auc

    if task == "classification":
        return {"roc_auc": roc_auc(y_true, mean)}
    keep = np.isfinite(y_true) & np.isfinite(mean)
    residual = float(np.sum((y_true[keep] - mean[keep]) ** 2))
    total = float(np.sum((y_true[keep] - y_true[keep].mean()) ** 2)) or float("nan")
    out = {"rmse": rmse(y_true, mean), "mae": mae(y_true, mean), "r2": 1 - residual / total}
    out.update({f"calibration_{k}": v for k, v in calibration_report(y_true, mean, std).items()})
    if intervals is not None:
        y2 = y_true.reshape(len(y_true), -1)
        ok = np.isfinite(y2)
        inside = (y2 >= intervals["lower"]) & (y2 <= intervals["upper"])
        domain = intervals["in_domain"]
        out["interval_coverage"] = float(inside[ok].mean()) if ok.any() else float("nan")
        out["in_domain_fraction"] = float(domain.mean()) if len(domain) else float("nan")
        out["rmse_in_domain"] = rmse(y2[domain], intervals["mean"][domain])
        out["rmse_out_of_domain"] = rmse(y2[~domain], intervals["mean"][~domain])
    return out


#: Candidates of ``--model auto``: settings given to the factory on top of the user's.
AUTO_CANDIDATES: dict[str, dict[str, Any]] = {"descriptor-forest": {}, "mpnn": {"descriptors": True}}
#: ``--model auto`` also weighs the average of its candidates (validated from their
#: out-of-fold predictions; on ESOL -> external molecules it was the best, RESULTS, issue 35).
AUTO_CONSENSUS = "consensus"


def _accepted(cls: type, hparams: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The settings ``cls`` takes; with ``strict`` an unknown one is an error."""
    import inspect

    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(hparams)  # a composite (consensus) hands each member what it takes
    names = set(parameters) - {"self", "task", "seed"}
    unknown = sorted(set(hparams) - names)
    if unknown and strict:
        raise ConfigError(f"{cls.name} has no setting {', '.join(unknown)}; valid: {', '.join(sorted(names - {'device'}))}")
    return {k: v for k, v in hparams.items() if k in names}


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
    calibrate: bool = True,
    coverage: float = 0.9,
    cv_folds: int = 0,
    device: str = "cpu",
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
        model: Predictor name (default ``mpnn`` for molecules, ``cgcnn`` for
            crystals), or ``auto``: the lowest scaffold-CV RMSE of
            :data:`AUTO_CANDIDATES` and their consensus (regression on
            molecules; ``cv_folds`` defaults to 5 then).
        task: ``regression`` or ``classification`` (default: classification
            when every target value is 0 or 1).
        split: ``scaffold`` (molecules' default) or ``random``.
        seed: Seed of the split and of the ensemble.
        limit: Seeded random subset of the data.
        hparams: Predictor settings (``n_models``, ``epochs``, ``hidden``...).
        progress: Show a bar over the ensemble members (on a terminal).
        calibrate: Molecules: wrap the model in a
            :class:`~molgen.predictors.calibrated.CalibratedPredictor`
            (applicability domain, calibrated std, conformal intervals),
            calibrated on the validation split (new scaffolds), or on
            scaffold cross-validation with ``cv_folds``.
        coverage: Nominal coverage of the intervals.
        cv_folds: 0: calibrate on the validation split (the base model is
            trained on the train split, validation also early-stops it);
            >= 2: scaffold k-fold cross-validation over train + validation,
            whose out-of-fold errors calibrate the model, which is then
            refitted on train + validation.
        device: Where neural members train (``auto``, ``cpu``, ``cuda[:N]``;
            forests ignore it).

    Returns:
        The summary with the report.

    Raises:
        MolgenError: unknown names, missing columns, or no usable rows.
    """
    from molgen.datasets import load_texts
    from molgen.predictors.registry import PREDICTORS

    dom = DOMAINS.get(domain)()
    model = model or ("cgcnn" if domain == "crystal" else "mpnn")
    if model != "auto" and model not in PREDICTORS:
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
    molecules = DOMAINS.get(domain).has_scaffold
    if model == "auto" and (not molecules or task != "regression"):
        raise ConfigError("--model auto selects among molecular regression models; name a model instead")
    if cv_folds == 1 or cv_folds < 0:
        raise ConfigError(f"cv_folds must be 0 (calibrate on the validation split) or >= 2, got {cv_folds}")
    if model == "auto":
        cv_folds = cv_folds or 5
    hparams = dict(hparams or {})
    device = str(select_device(device))

    def factory(name: str, extra: dict[str, Any] | None = None, strict: bool = True):
        cls = PREDICTORS[name]
        settings = {**(extra or {}), **_accepted(cls, hparams, strict), "device": device}

        def make(s: int):
            built = cls(task=task, seed=s, **settings)
            built.show_progress = progress
            return built
        return make

    t1 = time.perf_counter()
    selection = None
    if calibrate and molecules and cv_folds >= 2:
        from molgen.predictors.selection import fit_calibrated, select_model

        train_val = np.concatenate([parts["train"], parts["val"]])
        if model == "auto":
            candidates = {name: factory(name, extra, strict=False) for name, extra in AUTO_CANDIDATES.items()}
            members = [{"kind": name, **extra} for name, extra in AUTO_CANDIDATES.items()]
            consensus_factory = factory(AUTO_CONSENSUS, {"members": members}, strict=False)
            consensus_factory(seed)  # a setting no candidate takes fails here, not after the cross-validation
            consensus = {AUTO_CONSENSUS: (list(AUTO_CANDIDATES), consensus_factory)}
            model, predictor, selection = select_model(candidates, *pick(train_val), folds=cv_folds, seed=seed, coverage=coverage,
                                                       consensus=consensus)
        else:
            predictor = fit_calibrated(factory(model), *pick(train_val), folds=cv_folds, seed=seed, coverage=coverage)
    else:
        predictor = factory(model)(seed)
        predictor.fit(*pick(parts["train"]), val=pick(parts["val"]) if len(parts["val"]) else None)
        if calibrate and molecules and len(parts["val"]) >= 10:
            from molgen.predictors.calibrated import CalibratedPredictor

            predictor = CalibratedPredictor(predictor, coverage=coverage).calibrate(pick(parts["train"])[0], *pick(parts["val"]))
    fit_seconds = time.perf_counter() - t1
    test_objs, test_y = pick(parts["test"])
    intervals = predictor.predict_intervals(test_objs) if hasattr(predictor, "predict_intervals") else None
    mean, std = predictor.predict(test_objs)
    mean, std = (mean, std) if len(targets) > 1 else (mean.reshape(-1), std.reshape(-1))
    out_dir = Path(out_dir)
    predictor.save(out_dir)
    report = {
        "data": data, "domain": domain, "predictor": model, "task": task, "targets": list(targets), "split": split, "seed": seed,
        "n_loaded": len(loaded.texts), "n_invalid_skipped": len(loaded.skipped), "n_missing_targets_dropped": int((~keep).sum()),
        "n_train": int(len(parts["train"])), "n_val": int(len(parts["val"])), "n_test": int(len(parts["test"])),
        "test": test_metrics(task, np.asarray(test_y, dtype=float), mean, std, intervals if task == "regression" else None),
        "calibrated": hasattr(predictor, "predict_intervals"), "cv_folds": cv_folds, "model_selection": selection,
        "fit_seconds": fit_seconds, "total_seconds": time.perf_counter() - t0,
        "hparams": predictor.get_params(), "example": texts[0],
    }
    write_json(out_dir / REPORT_NAME, report)
    return FitSummary(out_dir, report)


def load_fitted(directory: str | Path, device: str = "cpu"):
    """``(predictor, report)`` of a directory written by :func:`fit_predictor`.

    Args:
        directory: The predictor directory.
        device: Where its networks run (``auto``, ``cpu``, ``cuda[:N]``).

    Raises:
        CheckpointError: not a predictor directory.
    """
    from molgen.predictors.registry import load_predictor

    directory = Path(directory)
    report = read_json(directory / REPORT_NAME)
    return load_predictor(directory, device=select_device(device)), report


#: Entries predicted together: one executor task (bounded memory; a bar can follow a long file).
PREDICT_CHUNK = 1024

#: Predictors loaded in this process, by (directory, device): a pool worker or
#: Ray worker loads each once and keeps it for every later chunk.
_LOADED: dict[tuple[str, str], tuple[Any, dict]] = {}


def _cached_fitted(directory: str, device: str):
    key = (str(Path(directory).resolve()), device)
    if key not in _LOADED:
        _LOADED[key] = load_fitted(directory, device)
    return _LOADED[key]


def _prediction_columns(predictor, report: dict) -> tuple[list[str], tuple[str, ...], bool]:
    """``(columns after the input, per-target keys, has latent distance)``."""
    calibrated = hasattr(predictor, "predict_intervals")
    # lower/upper are the conformal interval; in_domain, similarity (max Tanimoto to the
    # training set) and latent_distance (neural bases) are per molecule. Uncalibrated
    # predictors write mean and std only.
    per_target = ("mean", "std", "lower", "upper") if calibrated else ("mean", "std")
    latent = calibrated and getattr(predictor, "latent", None) is not None
    columns = [f"{name}_{key}" for name in report["targets"] for key in per_target]
    if calibrated:
        columns += ["in_domain", "similarity"] + (["latent_distance"] if latent else [])
    return columns + ["reason"], per_target, latent


def predict_part(payload: tuple) -> tuple[list[list[str]], int]:
    """Executor task: parse and predict one chunk of entries.

    Args:
        payload: ``(predictor directory, device, texts, read_errors)``.

    Returns:
        One row of cells per text (the input, then the prediction
        columns), and how many rows got a prediction.
    """
    directory, device, texts, errors = payload
    predictor, report = _cached_fitted(directory, device)
    domain = DOMAINS.get(report["domain"])()
    objs, reasons = [], []
    for text, error in zip(texts, errors):
        try:
            if error:
                raise MolgenError(error)
            objs.append(domain.parse(text))
            reasons.append("")
        except MolgenError as exc:
            objs.append(None)
            reasons.append(f"invalid input: {exc}")
    _, per_target, latent = _prediction_columns(predictor, report)
    calibrated = hasattr(predictor, "predict_intervals")
    if calibrated:
        out = predictor.predict_intervals(objs)
    else:
        m, s = predictor.predict(objs)
        out = {"mean": np.asarray(m), "std": np.asarray(s)}
    table = {key: np.asarray(value).reshape(len(objs), -1) for key, value in out.items() if value is not None}

    from molgen.workflows.streaming import format_cell as cell

    rows = []
    for i, text in enumerate(texts):
        row = [text]
        for t in range(table["mean"].shape[1]):
            row += [cell(table[key][i, t]) for key in per_target]
        if calibrated:
            valid = objs[i] is not None
            row += [str(bool(table["in_domain"][i, 0])).lower() if valid else "", cell(table["similarity"][i, 0])]
            row += [cell(table["latent_distance"][i, 0])] if latent else []
        rows.append(row + [reasons[i]])
    return rows, int(np.isfinite(table["mean"][:, 0]).sum())


def predict_file(directory: str | Path, path: str | Path, output: str | Path, id_column: str | None = None,
                 progress: bool = False, device: str = "cpu", executor: str = "serial", workers: int = 1,
                 chunk_size: int = PREDICT_CHUNK) -> dict[str, Any]:
    """Predict every entry of a file and write a CSV: the identifier when the
    input has one (named after its source column, else ``id``), the input
    text, then ``<target>_mean``, ``<target>_std`` and (calibrated
    predictors) ``<target>_lower``, ``<target>_upper`` per target, then
    ``in_domain`` and ``similarity`` (calibrated predictors), then
    ``reason`` (why a row has no prediction). Invalid inputs (and SD records
    RDKit cannot read) stay in the table as NaN.

    The file is streamed: read, predicted and written a chunk at a time
    (memory stays flat with its length), the chunks through ``executor``;
    rows keep the input order, and a chunk whose worker died is written with
    the error as each row's reason.

    Args:
        directory: Directory written by :func:`fit_predictor`.
        path: ``.smi``, ``.csv`` or ``.sdf`` of molecules, or a CSV with a
            ``cif`` column for crystals.
        output: CSV to write.
        id_column: Identifier column (default: see
            :func:`molgen.datasets.readers.iter_labeled`).
        progress: Show a progress bar (on a terminal).
        device: Where the predictor's networks run (``auto``, ``cpu``, ``cuda[:N]``).
        executor: ``serial``, ``process`` or ``ray`` (see :mod:`molgen.core.executors`).
        workers: Pool processes or local Ray CPUs.
        chunk_size: Entries per task.

    Returns:
        Counts: ``{"n", "n_predicted", "path"}``.

    Raises:
        MolgenError: unreadable input or predictor, an output that is not
            ``.csv``, or a missing ``id_column``.
    """
    from molgen.datasets.readers import iter_labeled, require_output_suffix
    from molgen.workflows.streaming import stream_to_csv

    require_output_suffix(output, (".csv",))
    directory = str(Path(directory).resolve())
    predictor, report = _cached_fitted(directory, device)  # a bad predictor fails here, before any worker starts
    stream = iter_labeled(Path(path), id_column)
    output = Path(output)
    try:
        n, predicted = stream_to_csv(stream, ["input", *_prediction_columns(predictor, report)[0]], predict_part,
                                     lambda texts, errors: (directory, device, texts, errors), output, executor=executor,
                                     workers=workers, chunk_size=chunk_size, progress=progress, desc="predicting",
                                     failure="prediction failed")
    finally:  # the weights may change on disk (a refit into the same folder): keep no stale copy here
        _LOADED.pop((directory, device), None)
    n_predicted = sum(p or 0 for p in predicted)
    return {"n": n, "n_predicted": n_predicted, "path": output}
