"""Generative backbones. Importing registers each of them. Backbones import
core, nn and schedulers, never a domain."""

from molgen.backbones.autoregressive import (
    AutoregressiveConfig,
    AutoregressiveTransformer,
)
from molgen.backbones.base import Generator, load_generator

__all__ = ["AutoregressiveConfig", "AutoregressiveTransformer", "Generator", "load_generator"]
