"""Seeding helpers. Library calls take explicit generators; only the CLI
seeds the global generators."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (CLI use only).

    Args:
        seed: Non-negative integer seed.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_generator(seed: int | None = None, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``.

    Args:
        seed: Seed; ``None`` draws a fresh non-deterministic seed.
        device: Device the generator lives on (must match sampled tensors).

    Returns:
        The seeded generator.
    """
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def resolve_generator(
    generator: torch.Generator | None, seed: int | None, device: str | torch.device = "cpu"
) -> torch.Generator:
    """Pick the caller's generator, else build one from ``seed``.

    Args:
        generator: An explicit generator, used as is when given.
        seed: Seed for a new generator when ``generator`` is None.
        device: Device for a new generator.

    Returns:
        A generator.
    """
    if generator is not None:
        return generator
    return make_generator(seed, device)
