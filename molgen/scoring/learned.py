"""A trained property predictor as a scoring component, so objectives can
use learned surrogates next to computed properties."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from molgen.core.errors import ConfigError
from molgen.core.serialization import read_json

#: Metadata written next to a predictor by ``molgen fit-predictor``.
REPORT_NAME = "predictor.json"
#: What a predictor component can score: the mean, its uncertainty, bounds, or the applicability domain.
STATISTICS = ("mean", "std", "ucb", "lcb", "ad")
#: Where predictor components built now put their networks (``molgen score --device``).
_DEVICE: contextvars.ContextVar[str] = contextvars.ContextVar("molgen_predictor_device", default="cpu")


@contextlib.contextmanager
def predictor_device(device: str | None) -> Iterator[None]:
    """Predictor components built inside put their networks on ``device``
    (``cpu``, ``auto``, ``cuda[:N]``; None: leave the default, the CPU)."""
    token = _DEVICE.set(device) if device is not None else None
    try:
        yield
    finally:
        if token is not None:
            _DEVICE.reset(token)


class PredictorComponent:
    """A trained predictor as a batch scoring component (``type = "predictor"``
    with ``path``, or the shorthand ``type = "predictor:DIR"``).

    Args:
        path: Directory written by ``molgen fit-predictor`` (or ``Predictor.save``),
            or a shipped predictor name (``perov5-heat``).
        name: Column name.
        target: Which target of a multi-task predictor (default the first).
        statistic: ``mean``, ``std``, ``ucb`` (mean + beta std), ``lcb``, or
            ``ad``: the applicability domain score, the maximum Tanimoto
            similarity to the predictor's training set (0 to 1; calibrated
            predictors from ``molgen fit-predictor`` only).
        beta: Width of ``ucb``/``lcb``.
        per_atom: Divide by the number of sites (crystal models of a
            per-cell quantity, such as Perov-5's heat of formation).
        require_in_domain: Refuse predictions out of the applicability
            domain: their value is NaN with the reason ``out of domain``, so
            loops never rank a molecule on an extrapolated guess.
    """

    def __init__(self, path: str | Path, name: str = "predictor", target: str | None = None, statistic: str = "mean", beta: float = 1.0,
                 per_atom: bool = False, require_in_domain: bool = False):
        from molgen.core.device import select_device
        from molgen.predictors.registry import load_predictor
        from molgen.pretrained.predictors import predictor_dir

        path = predictor_dir(path)
        self.predictor = load_predictor(path, device=select_device(_DEVICE.get()))
        report = read_json(path / REPORT_NAME) if (path / REPORT_NAME).is_file() else {"targets": ["value"]}
        names = report.get("targets", ["value"])
        if target is not None and target not in names:
            raise ConfigError(f"predictor {path} has targets {names}, not {target!r}")
        self.column = names.index(target) if target else 0
        if statistic not in STATISTICS:
            raise ConfigError(f"statistic must be one of {', '.join(STATISTICS)}, got {statistic!r}")
        self.has_domain = hasattr(self.predictor, "predict_intervals")
        if (statistic == "ad" or require_in_domain) and not self.has_domain:
            raise ConfigError(f"predictor {path} has no applicability domain (statistic 'ad', require_in_domain); "
                              "refit it with molgen fit-predictor, which calibrates molecular predictors")
        self.name, self.statistic, self.beta, self.per_atom = name, statistic, beta, per_atom
        self.require_in_domain = require_in_domain

    def __call__(self, objs: Sequence[Any]) -> tuple[np.ndarray, list[str | None]]:
        n = len(objs)
        in_domain = np.ones(n, dtype=bool)
        if self.has_domain:
            out = self.predictor.predict_intervals(list(objs))
            mean, std = out["mean"][:, self.column], out["std"][:, self.column]
            similarity, in_domain = out["similarity"], out["in_domain"]
        else:
            mean, std = self.predictor.predict(list(objs))
            mean, std = mean.reshape(n, -1)[:, self.column], std.reshape(n, -1)[:, self.column]
            similarity = np.full(n, np.nan)
        values = {"mean": mean, "std": std, "ucb": mean + self.beta * std, "lcb": mean - self.beta * std, "ad": similarity}[self.statistic]
        values = np.array(values, dtype=float)
        if self.per_atom and self.statistic != "ad":
            values = values / np.array([len(o) if o is not None else np.nan for o in objs], dtype=float)
        refused = self.require_in_domain & ~in_domain & np.array([o is not None for o in objs], dtype=bool)
        values[refused] = np.nan
        reasons = [None if np.isfinite(v) else ("invalid object" if o is None else f"{self.name}: out of domain" if r
                                                  else f"{self.name}: no prediction")
                   for o, v, r in zip(objs, values, refused)]
        return values, reasons
