"""Noise processes for diffusion backbones (masking, categorical, Gaussian,
wrapped normal). Imports torch, numpy and molgen.core only."""

from molgen.schedulers.masking import MaskingSchedule

__all__ = ["MaskingSchedule"]
