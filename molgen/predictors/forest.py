"""A random forest on RDKit descriptors and Morgan counts, saved as arrays.

On a thousand molecules a descriptor forest is the baseline a deep model must
beat, and it travels better to new chemistry: logP-like descriptors carry
over to unseen scaffolds where a graph network's embedding does not. It is
fitted with scikit-learn and then **exported**: every tree's node arrays
(children, split feature, threshold, leaf value) go into
``model.safetensors``, and prediction walks those arrays with numpy, so a
saved forest is never pickled and loads without scikit-learn's private
classes.

Uncertainty is the spread of the trees' predictions (each tree sees its own
bootstrap sample and feature subsets, a cheap ensemble), rescaled on the
validation rows like the deep ensembles' std
(:meth:`~molgen.predictors.base.Predictor._fit_std_scale`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import CheckpointError, ConfigError, DataError
from molgen.core.serialization import load_tensors, save_tensors, write_json
from molgen.predictors.base import FORMAT_VERSION, TASK_TYPES
from molgen.predictors.descriptors import rdkit_descriptors
from molgen.predictors.registry import read_saved_config, register

__all__ = ["FEATURE_SETS", "ForestPredictor", "forest_features"]

#: Input features a forest can use.
FEATURE_SETS = ("descriptors", "morgan", "descriptors+morgan")


def forest_features(mols: Sequence[Chem.Mol], features: str, n_bits: int = 1024, radius: int = 2) -> np.ndarray:
    """The forest's input matrix.

    Args:
        mols: RDKit molecules.
        features: One of :data:`FEATURE_SETS`.
        n_bits: Morgan count fingerprint length.
        radius: Morgan radius.

    Returns:
        ``float32`` ``[n, d]`` (raw descriptors: trees need no scaling; Morgan counts).
    """
    parts = []
    if "descriptors" in features:
        parts.append(rdkit_descriptors(mols))
    if "morgan" in features:
        generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
        parts.append(np.stack([generator.GetCountFingerprintAsNumPy(m) for m in mols]).astype(np.float64)
                     if mols else np.zeros((0, n_bits)))
    # float32 as scikit-learn's trees compare in float32: exported trees then agree with them exactly.
    return np.concatenate(parts, axis=1).astype(np.float32)


def _walk(trees: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Leaf values of every tree for every row: ``[n_trees, n]``.

    All trees advance one level per step (vectorised over trees and rows);
    a node whose left child is -1 is a leaf, as in scikit-learn.
    """
    left, right, feature, threshold, value = (trees[k] for k in ("left", "right", "feature", "threshold", "value"))
    node = np.repeat(trees["roots"][:, None], x.shape[0], axis=1)
    rows = np.arange(x.shape[0])[None, :]
    while True:
        children = left[node]
        leaf = children < 0
        if leaf.all():
            return value[node]
        go_left = x[rows, np.maximum(feature[node], 0)] <= threshold[node]
        node = np.where(leaf, node, np.where(go_left, children, right[node]))


def _export(forest) -> dict[str, np.ndarray]:
    """A fitted scikit-learn forest as flat node arrays (trees concatenated)."""
    left, right, feature, threshold, value, roots = [], [], [], [], [], []
    offset = 0
    for estimator in forest.estimators_:
        tree = estimator.tree_
        is_leaf = tree.children_left < 0
        left.append(np.where(is_leaf, -1, tree.children_left + offset))
        right.append(np.where(is_leaf, -1, tree.children_right + offset))
        feature.append(tree.feature)
        threshold.append(tree.threshold)
        value.append(tree.value[:, 0, 0])
        roots.append(offset)
        offset += tree.node_count
    return {
        "left": np.concatenate(left).astype(np.int64), "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feature).astype(np.int64), "threshold": np.concatenate(threshold).astype(np.float64),
        "value": np.concatenate(value).astype(np.float64), "roots": np.asarray(roots, dtype=np.int64),
    }


@register(trainable=True)
class ForestPredictor:
    """Random forest regression (or probability forest for 0/1 labels) on
    RDKit 2D descriptors and/or Morgan counts, with the predictor contract
    ``fit(objs, y, val=...)``, ``predict(objs) -> (mean, std)``, ``save`` / ``load``.

    One forest per task, each fitted on the rows whose label is present.

    Args:
        task: ``"regression"`` or ``"classification"`` (labels 0/1; the
            prediction is the trees' mean, a probability).
        features: One of :data:`FEATURE_SETS`.
        n_trees: Trees per task.
        max_features: Share of features tried at each split.
        min_samples_leaf: Fewest rows in a leaf.
        n_bits: Morgan count fingerprint length (when used).
        seed: Seed of the bootstrap samples and feature draws (task ``t`` uses ``seed + t``).
        n_jobs: Threads scikit-learn fits with.
        device: Accepted for the common constructor; forests run on the CPU.

    Attributes:
        fit_report_: Rows given and dropped, train/validation sizes, std scale.
    """

    name: ClassVar[str] = "descriptor-forest"
    min_calibration_rows: ClassVar[int] = 30
    input_description: ClassVar[str] = "RDKit molecules"

    def __init__(self, task: str = "regression", features: str = "descriptors+morgan", n_trees: int = 300,
                 max_features: float = 0.3, min_samples_leaf: int = 1, n_bits: int = 1024, seed: int = 0, n_jobs: int = 1,
                 device: str | torch.device = "cpu"):
        self.task, self.features, self.n_trees = task, features, n_trees
        self.max_features, self.min_samples_leaf, self.n_bits = max_features, min_samples_leaf, n_bits
        self.seed, self.n_jobs, self.device = seed, n_jobs, device
        if task not in TASK_TYPES:
            raise ConfigError(f"unknown task type {task!r}; expected one of {', '.join(TASK_TYPES)}")
        if features not in FEATURE_SETS:
            raise ConfigError(f"unknown forest features {features!r}; expected one of {', '.join(FEATURE_SETS)}")
        if n_trees < 1 or not 0 < max_features <= 1 or min_samples_leaf < 1 or n_bits < 1 or n_jobs < 1:
            raise ConfigError(f"invalid ForestPredictor settings: n_trees={n_trees}, max_features={max_features}, "
                              f"min_samples_leaf={min_samples_leaf}, n_bits={n_bits}, n_jobs={n_jobs}")
        self.trees_: list[dict[str, np.ndarray]] = []
        self.n_tasks_: int | None = None
        self.target_ndim_ = 1
        self.std_scale_: np.ndarray | None = None
        self.fit_report_: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (sklearn style), without ``device``."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "device")]
        return {name: getattr(self, name) for name in names}

    def _check(self, objs: Sequence[Any], what: str, allow_none: bool = False) -> list:
        objs = list(objs)
        bad = [i for i, m in enumerate(objs) if not (isinstance(m, Chem.Mol) or (allow_none and m is None))]
        if bad:
            raise DataError(f"{what}: {len(bad)} entries are not RDKit molecules (first at row {bad[0]}); drop them first")
        return objs

    def _targets(self, y: Any, n: int, what: str) -> np.ndarray:
        try:
            array = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what}: targets are not numeric ({exc})") from None
        if array.ndim not in (1, 2) or array.shape[0] != n:
            raise DataError(f"{what}: targets must have shape [{n}] or [{n}, t], got {list(array.shape)}")
        array = array.reshape(n, -1)
        if np.isinf(array).any():
            raise DataError(f"{what}: targets contain infinite values")
        if self.task == "classification" and not np.isin(array[np.isfinite(array)], (0.0, 1.0)).all():
            raise DataError(f"{what}: classification labels must be 0, 1 or NaN")
        return array

    def fit(self, objs: Sequence[Chem.Mol], y: Any, *, val: tuple[Sequence[Chem.Mol], Any] | None = None) -> "ForestPredictor":
        """Fit one forest per task.

        Args:
            objs: RDKit molecules.
            y: Targets ``[n]`` or ``[n, t]``; NaN marks a missing label.
            val: Optional ``(molecules, targets)``: the tree spread is rescaled
                to match the errors there (regression, at least 30 rows).

        Returns:
            self.

        Raises:
            DataError: non-molecules, bad targets, or a task without labels.
        """
        from sklearn.ensemble import RandomForestRegressor  # ~1 s import; only fitting needs it

        mols = self._check(objs, "fit")
        targets = self._targets(y, len(mols), "fit")
        self.n_tasks_ = targets.shape[1]
        self.target_ndim_ = 1 if np.asarray(y).ndim == 1 else 2
        x = forest_features(mols, self.features, self.n_bits)
        self.trees_ = []
        for t in range(self.n_tasks_):
            rows = np.isfinite(targets[:, t])
            if rows.sum() < 2:
                raise DataError(f"fit: task {t} has {int(rows.sum())} labelled rows (need at least 2)")
            forest = RandomForestRegressor(n_estimators=self.n_trees, max_features=self.max_features,
                                           min_samples_leaf=self.min_samples_leaf, random_state=self.seed + t, n_jobs=self.n_jobs)
            forest.fit(x[rows], targets[rows, t])
            self.trees_.append(_export(forest))
        self.std_scale_ = np.ones(self.n_tasks_)
        report: dict[str, Any] = {"n_input": len(mols), "n_train": len(mols), "n_val": 0, "n_features": int(x.shape[1])}
        if val is not None and self.task == "regression":
            val_mols = self._check(val[0], "fit(val=...)")
            val_targets = self._targets(val[1], len(val_mols), "fit(val=...)")
            passes = self.predict_members(val_mols)
            mean, std = passes.mean(axis=0), passes.std(axis=0)
            for t in range(self.n_tasks_):
                ok = np.isfinite(val_targets[:, t]) & (std[:, t] > 1e-12)
                if ok.sum() >= self.min_calibration_rows:
                    self.std_scale_[t] = float(np.sqrt(np.mean(((val_targets[ok, t] - mean[ok, t]) / std[ok, t]) ** 2)))
            report.update(n_val=len(val_mols), std_scale=self.std_scale_.tolist())
        self.fit_report_ = report
        return self

    def _check_fitted(self) -> None:
        if not self.trees_:
            raise RuntimeError("ForestPredictor is not trained: call fit() or load()")

    def predict_members(self, objs: Sequence[Chem.Mol | None], *, batch_size: int = 1024) -> np.ndarray:
        """Every tree's prediction: ``[n_trees, n, n_tasks]`` (NaN rows for ``None``)."""
        self._check_fitted()
        objs = self._check(objs, "predict", allow_none=True)
        out = np.full((self.n_trees, len(objs), self.n_tasks_), np.nan)
        valid = [i for i, m in enumerate(objs) if m is not None]
        for start in range(0, len(valid), batch_size):
            rows = valid[start:start + batch_size]
            x = forest_features([objs[i] for i in rows], self.features, self.n_bits)
            for t, trees in enumerate(self.trees_):
                out[:, rows, t] = _walk(trees, x)
        return out

    def predict(self, objs: Sequence[Chem.Mol | None], *, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Mean and (rescaled) spread of the trees.

        Args:
            objs: RDKit molecules; ``None`` gives NaN.
            batch_size: Molecules featurised at a time.

        Returns:
            ``(mean, std)``: ``[n]`` for 1-D training targets, else ``[n, n_tasks]``.
        """
        passes = self.predict_members(objs, batch_size=batch_size)
        with np.errstate(invalid="ignore"):
            mean, std = passes.mean(axis=0), passes.std(axis=0) * self.std_scale_
        if self.target_ndim_ == 1:
            mean, std = mean[:, 0], std[:, 0]
        return mean, std

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (the trees' arrays).

        Returns:
            The directory.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {f"task{t}.{k}": torch.from_numpy(np.ascontiguousarray(v)) for t, trees in enumerate(self.trees_) for k, v in trees.items()}
        tensors["std_scale"] = torch.tensor(self.std_scale_, dtype=torch.float64)
        save_tensors(directory / "model.safetensors", tensors)
        write_json(directory / "config.json", {"predictor": self.name, "format_version": FORMAT_VERSION, "params": self.get_params(),
                                               "n_tasks": self.n_tasks_, "target_ndim": self.target_ndim_, "fit_report": self.fit_report_})
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "ForestPredictor":
        """Load a forest written by :meth:`save`.

        Raises:
            CheckpointError: missing or corrupted files.
        """
        directory = Path(directory)
        config = read_saved_config(directory, cls.name, (FORMAT_VERSION,))
        tensors = load_tensors(directory / "model.safetensors", device="cpu")
        try:
            model = cls(**config["params"], device=device)
            model.n_tasks_, model.target_ndim_ = int(config["n_tasks"]), int(config["target_ndim"])
            model.fit_report_ = config.get("fit_report", {})
            model.std_scale_ = tensors["std_scale"].numpy()
            keys = ("left", "right", "feature", "threshold", "value", "roots")
            model.trees_ = [{k: tensors[f"task{t}.{k}"].numpy() for k in keys} for t in range(model.n_tasks_)]
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"corrupted predictor directory {directory}: {exc}") from None
        return model
