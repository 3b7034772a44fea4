"""A trained property predictor as a scoring component, so objectives can
use learned surrogates next to computed properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from molgen.core.errors import ConfigError
from molgen.core.serialization import read_json

#: Metadata written next to a predictor by ``molgen fit-predictor``.
REPORT_NAME = "predictor.json"


class PredictorComponent:
    """A trained predictor as a batch scoring component (``type = "predictor"``
    with ``path``, or the shorthand ``type = "predictor:DIR"``).

    Args:
        path: Directory written by ``molgen fit-predictor`` (or ``Predictor.save``),
            or a shipped predictor name (``perov5-heat``).
        name: Column name.
        target: Which target of a multi-task predictor (default the first).
        statistic: ``mean``, ``std``, ``ucb`` (mean + beta std) or ``lcb``.
        beta: Width of ``ucb``/``lcb``.
        per_atom: Divide by the number of sites (crystal models of a
            per-cell quantity, such as Perov-5's heat of formation).
    """

    def __init__(self, path: str | Path, name: str = "predictor", target: str | None = None, statistic: str = "mean", beta: float = 1.0,
                 per_atom: bool = False):
        from molgen.predictors.registry import load_predictor
        from molgen.pretrained.predictors import predictor_dir

        path = predictor_dir(path)
        self.predictor = load_predictor(path)
        report = read_json(path / REPORT_NAME) if (path / REPORT_NAME).is_file() else {"targets": ["value"]}
        names = report.get("targets", ["value"])
        if target is not None and target not in names:
            raise ConfigError(f"predictor {path} has targets {names}, not {target!r}")
        self.column = names.index(target) if target else 0
        if statistic not in ("mean", "std", "ucb", "lcb"):
            raise ConfigError(f"statistic must be mean, std, ucb or lcb, got {statistic!r}")
        self.name, self.statistic, self.beta, self.per_atom = name, statistic, beta, per_atom

    def __call__(self, objs: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        mean, std = self.predictor.predict(list(objs))
        mean, std = mean.reshape(len(objs), -1)[:, self.column], std.reshape(len(objs), -1)[:, self.column]
        values = {"mean": mean, "std": std, "ucb": mean + self.beta * std, "lcb": mean - self.beta * std}[self.statistic]
        if self.per_atom:
            values = values / np.array([len(o) if o is not None else np.nan for o in objs], dtype=float)
        reasons = [None if np.isfinite(v) else ("invalid object" if o is None else f"{self.name}: no prediction") for o, v in zip(objs, values)]
        return np.asarray(values, dtype=float), reasons
