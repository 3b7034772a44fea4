"""Calibrated uncertainty, conformal intervals and the applicability domain
around any trained predictor.

An ensemble's spread measures how much its members disagree, not how wrong
they are: on molecules unlike the training set every member can be wrong in
the same direction. :class:`CalibratedPredictor` wraps a fitted predictor
and, on held-out calibration molecules (a scaffold split: new chemistry, as
in use), fits per task

    sigma^2(x) = (a * s(x))^2 + (b * (1 - sim(x)))^2 + (e * z(x))^2 + c^2

where ``s`` is the base model's std, ``sim`` the maximum Tanimoto
similarity of ``x`` to the training set (:class:`~molgen.predictors.domain.ApplicabilityDomain`)
and ``z`` the distance in the base model's learned embedding
(:class:`~molgen.predictors.domain.LatentDomain`; neural bases with an
``embed`` method, when the calibration rows come with it, else ``e = 0``),
by Gaussian likelihood (four numbers, so ~100 calibration rows suffice).
The distance term lets the uncertainty grow where the ensemble is
confidently wrong. Intervals are **normalised split-conformal**: ``q`` is the
``ceil((n + 1) * coverage) / n`` quantile of ``|y - mean| / sigma`` on the
calibration rows and the interval is ``mean +- q * sigma``, which covers a
new molecule with probability >= ``coverage`` when it is exchangeable with
the calibration molecules (molecules farther out get wider intervals through
``sigma``; there the stated coverage is a target, measured in the benchmark).

Saved as ``config.json`` + ``model.safetensors`` (calibration numbers and
the training fingerprints) with the base predictor in ``base/``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from molgen.core.errors import CheckpointError, ConfigError, DataError
from molgen.core.serialization import load_tensors, save_tensors, write_json
from molgen.predictors.domain import ApplicabilityDomain, LatentDomain
from molgen.predictors.registry import load_predictor, read_saved_config, register

__all__ = ["CalibratedPredictor", "fit_variance_model"]

FORMAT_VERSION = 2  # 2: latent domain and a fourth variance term (version 1 still loads)


def _as_2d(values: Any, n: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(n, -1)


def fit_variance_model(residual: np.ndarray, std: np.ndarray, distance: np.ndarray,
                       latent: np.ndarray | None = None) -> np.ndarray:
    """Fit ``sigma^2 = (a s)^2 + (b d)^2 + (e z)^2 + c^2`` to residuals by Gaussian likelihood.

    Args:
        residual: ``y - mean`` on calibration rows.
        std: The base model's std there.
        distance: ``1 - max Tanimoto`` there.
        latent: Latent distance there (None: no such term, ``e = 0``).

    Returns:
        ``[a, b, c, e]`` (non-negative).
    """
    from scipy.optimize import minimize  # lazy: only calibration needs it

    r2 = residual ** 2
    s2, d2 = std ** 2, distance ** 2
    z2 = None if latent is None else np.asarray(latent, dtype=np.float64) ** 2
    scale = float(np.sqrt(np.mean(r2))) or 1.0

    def nll(log_params: np.ndarray) -> float:
        a, b, c = np.exp(log_params[:3])
        var = a * a * s2 + b * b * d2 + c * c
        if z2 is not None:
            var = var + np.exp(2 * log_params[3]) * z2
        return float(np.mean(np.log(var) + r2 / var))

    # Start from "spread as is, plus a floor and distance terms of the error's size"; the
    # likelihood is smooth in log-parameters, so L-BFGS converges in a few dozen steps.
    start = [1.0, scale, 0.3 * scale] + ([0.3 * scale] if z2 is not None else [])
    result = minimize(nll, np.log(start), method="L-BFGS-B", bounds=[(-12, 6)] * len(start))
    params = np.exp(result.x)
    return params if z2 is not None else np.append(params, 0.0)


@register(trainable=False)
class CalibratedPredictor:
    """A fitted predictor plus applicability domain, calibrated std and
    conformal intervals.

    Args:
        base: A fitted predictor (any kind with ``predict -> (mean, std)``).
        coverage: Nominal coverage of the conformal intervals (0.9: 90 %).
        domain_k: Neighbours averaged in the domain's ``mean_k`` similarity.
        domain_quantile: Share of calibration molecules the fitted threshold
            puts out of domain.

    Example::

        model = CalibratedPredictor(ForestPredictor().fit(train, y_train)).calibrate(train, cal, y_cal)
        out = model.predict_intervals(new)   # mean, std, lower, upper, in_domain, similarity
    """

    name: ClassVar[str] = "calibrated"

    def __init__(self, base: Any, coverage: float = 0.9, domain_k: int = 5, domain_quantile: float = 0.05):
        if not 0 < coverage < 1:
            raise ConfigError(f"coverage must be in (0, 1), got {coverage!r}")
        if domain_k < 1 or not 0 <= domain_quantile < 1:
            raise ConfigError(f"invalid domain settings: domain_k={domain_k}, domain_quantile={domain_quantile}")
        self.base, self.coverage = base, coverage
        self.domain = ApplicabilityDomain(k=domain_k, quantile=domain_quantile)
        self.latent: LatentDomain | None = None  # bases with an embedding only
        self.variance_: np.ndarray | None = None  # [n_tasks, 4]: a, b, c, e
        self.quantile_: np.ndarray | None = None  # [n_tasks]
        self.calibration_report_: dict[str, Any] = {}

    # -- the base predictor's face ------------------------------------------------

    @property
    def task(self) -> str:
        """The base predictor's task."""
        return self.base.task

    @property
    def n_tasks_(self) -> int:
        return self.base.n_tasks_

    @property
    def target_ndim_(self) -> int:
        return self.base.target_ndim_

    @property
    def fit_report_(self) -> dict[str, Any]:
        return {**getattr(self.base, "fit_report_", {}), "calibration": self.calibration_report_}

    def get_params(self) -> dict[str, Any]:
        """The base predictor's parameters plus the calibration settings."""
        return {**self.base.get_params(), "base": self.base.name, "coverage": self.coverage,
                "domain_k": self.domain.k, "domain_quantile": self.domain.quantile}

    # -- calibration -----------------------------------------------------------------

    def calibrate(self, train_objs: Sequence[Any], cal_objs: Sequence[Any], cal_y: Any) -> "CalibratedPredictor":
        """Fit the domain on the training molecules, then the variance model,
        the conformal quantile and the domain threshold on calibration rows.

        Args:
            train_objs: The molecules the base predictor was trained on.
            cal_objs: Held-out molecules (not seen by the base fit; a scaffold split).
            cal_y: Their targets ``[n]`` or ``[n, t]`` (NaN: missing).

        Returns:
            self.

        Raises:
            DataError: fewer than 10 finite calibration rows for a regression task.
        """
        cal_objs = list(cal_objs)
        n = len(cal_objs)
        self.domain.fit(list(train_objs))
        self._fit_latent(list(train_objs))
        mean, std = (_as_2d(a, n) for a in self.base.predict(cal_objs))
        return self.calibrate_from(cal_y, mean, std, self.domain.similarity(cal_objs)["max"],
                                   latent_distance=self.latent_distance(cal_objs))

    def _embed(self, objs: Sequence[Any]) -> np.ndarray | None:
        embed = getattr(self.base, "embed", None)
        return None if embed is None else embed(objs)

    def _fit_latent(self, train_objs: Sequence[Any]) -> None:
        embeddings = self._embed(train_objs)
        self.latent = None if embeddings is None else LatentDomain(k=self.domain.k).fit(embeddings)

    def latent_distance(self, objs: Sequence[Any]) -> np.ndarray | None:
        """Distance in the base model's embedding (None when the base has none).

        Args:
            objs: Molecules (``None`` -> NaN).

        Returns:
            ``[n]`` (1: as close as a typical training molecule) or None.
        """
        if self.latent is None:
            return None
        return self.latent.distance(self._embed(list(objs)))

    def calibrate_from(self, y: Any, mean: Any, std: Any, similarity: Any, train_objs: Sequence[Any] | None = None,
                       latent_distance: Any = None) -> "CalibratedPredictor":
        """Calibrate from held-out predictions made elsewhere (e.g. out-of-fold
        predictions of a scaffold cross-validation, each by a model that did
        not see the row, with its similarity to that model's training rows).

        Args:
            y: Targets ``[n]`` or ``[n, t]``.
            mean: Held-out predicted means, same shape.
            std: Held-out base std, same shape.
            similarity: Max Tanimoto of each row to the training rows of the model that predicted it ``[n]``.
            train_objs: The final model's training molecules (the domains'
                reference); None keeps the domains already fitted.
            latent_distance: Each row's latent distance to the training rows
                of the model that predicted it ``[n]`` (None: the variance
                model gets no latent term; predictions still report it).

        Returns:
            self.

        Raises:
            DataError: fewer than 10 finite calibration rows for a regression task.
        """
        if train_objs is not None:
            self.domain.fit(list(train_objs))
            self._fit_latent(list(train_objs))
        if self.domain.bits_ is None:
            raise DataError("calibration: the applicability domain has no training molecules")
        sim = np.asarray(similarity, dtype=np.float64).reshape(-1)
        n = len(sim)
        y, mean, std = _as_2d(y, n), _as_2d(mean, n), _as_2d(std, n)
        latent = None if latent_distance is None else np.asarray(latent_distance, dtype=np.float64).reshape(-1)
        self.domain.fit_threshold(sim)
        tasks = mean.shape[1]
        self.variance_ = np.tile([1.0, 0.0, 0.0, 0.0], (tasks, 1))
        self.quantile_ = np.full(tasks, np.nan)
        report: dict[str, Any] = {"n_calibration": n, "coverage": self.coverage, "domain_threshold": self.domain.threshold}
        if self.task == "regression":
            report["tasks"] = []
            for t in range(tasks):
                ok = np.isfinite(y[:, t]) & np.isfinite(mean[:, t]) & np.isfinite(std[:, t]) & np.isfinite(sim)
                if latent is not None:
                    ok &= np.isfinite(latent)
                if ok.sum() < 10:
                    raise DataError(f"calibration: task {t} has {int(ok.sum())} usable rows (need at least 10)")
                residual = y[ok, t] - mean[ok, t]
                z = None if latent is None else latent[ok]
                self.variance_[t] = fit_variance_model(residual, std[ok, t], 1.0 - sim[ok], z)
                sigma = self._sigma(std[ok, t], sim[ok], z, t)
                level = min(1.0, math.ceil((ok.sum() + 1) * self.coverage) / ok.sum())
                q = float(np.quantile(np.abs(residual) / sigma, level, method="higher"))
                self.quantile_[t] = q
                report["tasks"].append({"rows": int(ok.sum()), "a_std": float(self.variance_[t, 0]),
                                        "b_distance": float(self.variance_[t, 1]), "c_floor": float(self.variance_[t, 2]),
                                        "e_latent": float(self.variance_[t, 3]),
                                        "conformal_quantile": q})
        self.calibration_report_ = report
        return self

    def _sigma(self, std: np.ndarray, sim: np.ndarray, latent: np.ndarray | None, task: int) -> np.ndarray:
        a, b, c, e = self.variance_[task]
        var = (a * std) ** 2 + (b * (1.0 - sim)) ** 2 + c ** 2
        if e > 0 and latent is not None:
            var = var + (e * latent) ** 2
        return np.sqrt(var)

    def _check_calibrated(self) -> None:
        if self.variance_ is None:
            raise RuntimeError("CalibratedPredictor is not calibrated: call calibrate() or load()")

    # -- prediction ----------------------------------------------------------------------

    def predict_intervals(self, objs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Everything known about each prediction.

        Args:
            objs: RDKit molecules (``None`` -> NaN, out of domain).

        Returns:
            ``{"mean", "std", "lower", "upper"}`` each ``[n, n_tasks]`` (the
            conformal interval at :attr:`coverage`; NaN bounds for
            classification), ``"in_domain"`` ``[n]`` bool, ``"similarity"``
            ``[n]`` (max Tanimoto to training), ``"similarity_k"`` ``[n]`` and
            ``"latent_distance"`` ``[n]`` (NaN when the base has no embedding).
        """
        self._check_calibrated()
        objs = list(objs)
        n = len(objs)
        mean, base_std = (_as_2d(a, n) for a in self.base.predict(objs))
        sims = self.domain.similarity(objs) if n else {"max": np.zeros(0), "mean_k": np.zeros(0)}
        latent = self.latent_distance(objs) if n else None
        std = np.stack([self._sigma(base_std[:, t], sims["max"], latent, t) for t in range(mean.shape[1])], axis=1) if n else base_std
        if self.task == "classification":
            std = base_std
        half = std * self.quantile_[None, :]
        return {"mean": mean, "std": std, "lower": mean - half, "upper": mean + half,
                "in_domain": self.domain.in_domain(sims["max"]), "similarity": sims["max"], "similarity_k": sims["mean_k"],
                "latent_distance": np.full(n, np.nan) if latent is None else latent}

    def predict(self, objs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, calibrated std)``, shaped like the base predictor's output."""
        out = self.predict_intervals(objs)
        mean, std = out["mean"], out["std"]
        if self.target_ndim_ == 1:
            mean, std = mean[:, 0], std[:, 0]
        return mean, std

    # -- persistence --------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json``, ``model.safetensors`` and the base predictor in ``base/``.

        Returns:
            The directory.
        """
        self._check_calibrated()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.base.save(directory / "base")
        tensors = {"domain_bits": torch.from_numpy(self.domain.bits_), "variance": torch.from_numpy(self.variance_),
                   "quantile": torch.from_numpy(self.quantile_)}
        if self.latent is not None:
            tensors.update(latent_reference=torch.from_numpy(self.latent.reference_),
                           latent_center=torch.from_numpy(self.latent.center_), latent_scale=torch.from_numpy(self.latent.scale_))
        save_tensors(directory / "model.safetensors", tensors)
        write_json(directory / "config.json", {
            "predictor": self.name, "format_version": FORMAT_VERSION, "base": self.base.name,
            "params": {"coverage": self.coverage, "domain_k": self.domain.k, "domain_quantile": self.domain.quantile},
            "domain_threshold": self.domain.threshold, "calibration": self.calibration_report_,
            "latent_typical_distance": None if self.latent is None else self.latent.typical_})
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "CalibratedPredictor":
        """Load a predictor written by :meth:`save`.

        Raises:
            CheckpointError: missing or corrupted files.
        """
        directory = Path(directory)
        config = read_saved_config(directory, cls.name, (1, FORMAT_VERSION))
        base = load_predictor(directory / "base", device=device)
        tensors = load_tensors(directory / "model.safetensors", device="cpu")
        try:
            model = cls(base, **config["params"])
            model.domain.bits_ = tensors["domain_bits"].numpy()
            model.domain.threshold = float(config["domain_threshold"])
            variance = tensors["variance"].numpy()
            model.variance_ = np.pad(variance, ((0, 0), (0, 4 - variance.shape[1])))  # version 1: no latent term
            model.quantile_ = tensors["quantile"].numpy()
            if "latent_reference" in tensors:
                model.latent = LatentDomain(k=model.domain.k)
                model.latent.reference_ = tensors["latent_reference"].numpy()
                model.latent.center_ = tensors["latent_center"].numpy()
                model.latent.scale_ = tensors["latent_scale"].numpy()
                model.latent.typical_ = float(config["latent_typical_distance"])
            model.calibration_report_ = config.get("calibration", {})
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"corrupted predictor directory {directory}: {exc}") from None
        return model
