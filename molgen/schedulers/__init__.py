"""Noise processes for diffusion backbones (masking, categorical, Gaussian,
wrapped normal). Imports torch, numpy and molgen.core only."""

from molgen.schedulers.categorical import CategoricalNoise, cosine_alpha_bar
from molgen.schedulers.gaussian import GaussianNoise
from molgen.schedulers.masking import MaskingSchedule
from molgen.schedulers.wrapped_normal import WrappedNormalNoise, wrapped_normal_score

__all__ = ["CategoricalNoise", "GaussianNoise", "MaskingSchedule", "WrappedNormalNoise", "cosine_alpha_bar", "wrapped_normal_score"]
