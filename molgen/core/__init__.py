"""Core services shared by every layer: errors, registries, config, seeding,
devices, paths and safetensors+JSON persistence."""

from molgen.core.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    MolgenError,
    ParseError,
    RegistryError,
    UnknownTokenError,
)
from molgen.core.registry import Registry

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "MolgenError",
    "ParseError",
    "Registry",
    "RegistryError",
    "UnknownTokenError",
]
