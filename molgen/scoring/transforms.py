"""Score transforms: map a component's raw value to a desirability in [0, 1].

The REINVENT family (sigmoid, reverse sigmoid, double sigmoid, step, window,
linear clamp) and the GuacaMol score modifiers (Gaussian, min/max Gaussian,
clipped linear, thresholded linear) are all here, so named objectives can be
written from their published definitions. NaN stays NaN (a failed component
never turns into a good score).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, model_validator

from molgen.core.config import StrictModel

LN10 = np.log(10.0)


def _logistic(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow warnings."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


class _Transform(StrictModel):
    def __call__(self, values) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            out = self.apply(x)
        return np.where(np.isnan(x), np.nan, out)

    def apply(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class _LowHigh(_Transform):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"{self.type}: low ({self.low}) must be below high ({self.high})")
        return self


class Identity(_Transform):
    """The raw value."""

    type: Literal["identity"] = "identity"

    def apply(self, x):
        return x


class Sigmoid(_LowHigh):
    """Rises from 0 (below ``low``) to 1 (above ``high``); ``k`` sets the
    steepness (REINVENT: ``1 / (1 + 10^(10 k (x - mid) / (low - high)))``)."""

    type: Literal["sigmoid"] = "sigmoid"
    k: float = Field(0.5, gt=0)

    def apply(self, x):
        mid = 0.5 * (self.low + self.high)
        return _logistic(LN10 * 10 * self.k * (x - mid) / (self.high - self.low))


class ReverseSigmoid(Sigmoid):
    """Falls from 1 (below ``low``) to 0 (above ``high``)."""

    type: Literal["reverse_sigmoid"] = "reverse_sigmoid"

    def apply(self, x):
        return 1.0 - super().apply(x)


class DoubleSigmoid(_LowHigh):
    """A smooth window: about 1 between ``low`` and ``high``, falling on both
    sides (REINVENT's double sigmoid; ``coef_div`` scales x, ``coef_si`` and
    ``coef_se`` set the steepness of the upper and lower edge)."""

    type: Literal["double_sigmoid"] = "double_sigmoid"
    coef_div: float = Field(100.0, gt=0)
    coef_si: float = Field(150.0, gt=0)
    coef_se: float = Field(150.0, gt=0)

    def apply(self, x):
        rise = _logistic(LN10 * self.coef_se * (x - self.low) / self.coef_div)
        fall = _logistic(LN10 * self.coef_si * (x - self.high) / self.coef_div)
        return rise - fall


class Step(_LowHigh):
    """1 inside ``[low, high]``, 0 outside."""

    type: Literal["step"] = "step"

    def apply(self, x):
        return ((x >= self.low) & (x <= self.high)).astype(float)


class Window(_LowHigh):
    """Trapezoid: 1 inside ``[low, high]``, falling linearly to 0 over
    ``ramp`` on each side (``ramp = 0`` is :class:`Step`)."""

    type: Literal["window"] = "window"
    ramp: float = Field(1.0, ge=0)

    def apply(self, x):
        if self.ramp == 0:
            return ((x >= self.low) & (x <= self.high)).astype(float)
        below = np.clip(1 - (self.low - x) / self.ramp, 0, 1)
        above = np.clip(1 - (x - self.high) / self.ramp, 0, 1)
        return np.minimum(below, above)


class LinearClamp(_Transform):
    """Linear from ``(x_at_0, 0)`` to ``(x_at_1, 1)``, clipped to [0, 1];
    ``x_at_0 > x_at_1`` rewards small values."""

    type: Literal["linear_clamp"] = "linear_clamp"
    x_at_0: float
    x_at_1: float

    @model_validator(mode="after")
    def _distinct(self):
        if self.x_at_0 == self.x_at_1:
            raise ValueError("linear_clamp: x_at_0 and x_at_1 must differ")
        return self

    def apply(self, x):
        return np.clip((x - self.x_at_0) / (self.x_at_1 - self.x_at_0), 0.0, 1.0)


class Gaussian(_Transform):
    """``exp(-((x - mu) / sigma)^2 / 2)`` (GuacaMol's GaussianModifier)."""

    type: Literal["gaussian"] = "gaussian"
    mu: float
    sigma: float = Field(gt=0)

    def apply(self, x):
        return np.exp(-0.5 * ((x - self.mu) / self.sigma) ** 2)


class MinGaussian(Gaussian):
    """1 at or below ``mu``, Gaussian decay above (rewards small values)."""

    type: Literal["min_gaussian"] = "min_gaussian"

    def apply(self, x):
        return np.where(x <= self.mu, 1.0, super().apply(x))


class MaxGaussian(Gaussian):
    """1 at or above ``mu``, Gaussian decay below (rewards large values)."""

    type: Literal["max_gaussian"] = "max_gaussian"

    def apply(self, x):
        return np.where(x >= self.mu, 1.0, super().apply(x))


class Clipped(_Transform):
    """Linear from ``(lower_x, low)`` to ``(upper_x, high)``, constant outside
    (GuacaMol's ClippedScoreModifier; ``upper_x < lower_x`` rewards small values)."""

    type: Literal["clipped"] = "clipped"
    upper_x: float
    lower_x: float = 0.0
    high: float = 1.0
    low: float = 0.0

    def apply(self, x):
        t = np.clip((x - self.lower_x) / (self.upper_x - self.lower_x), 0.0, 1.0)
        return self.low + t * (self.high - self.low)


class Thresholded(_Transform):
    """``min(x, threshold) / threshold`` (GuacaMol's ThresholdedLinearModifier)."""

    type: Literal["thresholded"] = "thresholded"
    threshold: float = Field(gt=0)

    def apply(self, x):
        return np.minimum(x, self.threshold) / self.threshold


TransformSpec = Annotated[
    Union[
        Identity, Sigmoid, ReverseSigmoid, DoubleSigmoid, Step, Window, LinearClamp,
        Gaussian, MinGaussian, MaxGaussian, Clipped, Thresholded,
    ],
    Field(discriminator="type"),
]
