"""Generative backbones. Importing registers each of them. Backbones import
core, nn and schedulers, never a domain."""

from molgen.backbones.autoregressive import (
    AutoregressiveConfig,
    AutoregressiveTransformer,
)
from molgen.backbones.base import Generator, load_generator
from molgen.backbones.graph_diffusion import GraphDiffusion, GraphDiffusionConfig
from molgen.backbones.masked_diffusion import MaskedDiffusion, MaskedDiffusionConfig
from molgen.backbones.vae import SequenceVAE, VAEConfig

__all__ = [
    "AutoregressiveConfig",
    "AutoregressiveTransformer",
    "Generator",
    "GraphDiffusion",
    "GraphDiffusionConfig",
    "MaskedDiffusion",
    "MaskedDiffusionConfig",
    "SequenceVAE",
    "VAEConfig",
    "load_generator",
]
