"""Discovery loops and optimisation strategies over generators and oracles."""

from molgen.loops.latent import LatentOptimizationResult, optimize_latent

__all__ = ["LatentOptimizationResult", "optimize_latent"]
