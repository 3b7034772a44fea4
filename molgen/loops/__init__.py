"""Discovery loops and optimisation strategies over generators and oracles."""

from molgen.loops.latent import LatentOptimizationResult, LatentSearch, LatentSearchConfig, optimize_latent

__all__ = ["LatentOptimizationResult", "LatentSearch", "LatentSearchConfig", "optimize_latent"]
