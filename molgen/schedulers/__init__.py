"""Noise processes for diffusion backbones (masking, categorical, Gaussian,
wrapped normal), all behind one :class:`Noise` interface. Imports torch,
numpy and molgen.core only."""

from molgen.schedulers.base import IdentityNoise, Noise
from molgen.schedulers.categorical import CategoricalNoise, cosine_alpha_bar
from molgen.schedulers.gaussian import GaussianNoise
from molgen.schedulers.masking import MaskingSchedule
from molgen.schedulers.wrapped_normal import WrappedNormalNoise, wrapped_normal_score

__all__ = [
    "CategoricalNoise",
    "GaussianNoise",
    "IdentityNoise",
    "MaskingSchedule",
    "Noise",
    "WrappedNormalNoise",
    "cosine_alpha_bar",
    "wrapped_normal_score",
]
