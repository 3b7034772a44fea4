"""Exponential moving average of model weights.

Diffusion models in particular sample better from an average of the last
few thousand optimiser steps than from the last step's weights (the
averaging removes the step-to-step noise of small-batch training); the
denoisers of DDPM, EDM, DiGress and MatterGen are all evaluated this way.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


class WeightAverage:
    """Shadow copy of a model's floating-point state, updated after each step
    as ``shadow = d * shadow + (1 - d) * weights`` with the warm-up
    ``d = min(decay, (1 + step) / (10 + step))``, so that early steps are not
    dominated by the random initialisation.

    Args:
        model: The model being trained.
        decay: Final decay (0.999 averages over roughly the last 1,000 steps).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.shadow: dict[str, torch.Tensor] = {}
        self.reset(model)

    def reset(self, model: torch.nn.Module) -> None:
        """Start the average from the model's current weights."""
        self.shadow = {name: t.detach().clone() for name, t in model.state_dict().items() if t.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        """Fold the current weights in (``step``: 0-based index of the optimiser step just taken)."""
        d = min(self.decay, (1 + step) / (10 + step))
        state = model.state_dict()
        for name, avg in self.shadow.items():
            avg.lerp_(state[name].detach(), 1.0 - d)

    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite the model's floating-point state with the average."""
        _assign(model, self.shadow)

    @contextmanager
    def applied(self, model: torch.nn.Module):
        """Run a block with the averaged weights in the model, then restore."""
        backup = {name: t.detach().clone() for name, t in model.state_dict().items() if name in self.shadow}
        self.copy_to(model)
        try:
            yield model
        finally:
            _assign(model, backup)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The average, for a checkpoint."""
        return {f"ema.{name}": t for name, t in self.shadow.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`tensors` gave.

        Raises:
            KeyError: a tensor of the average is missing.
        """
        for name, avg in self.shadow.items():
            avg.copy_(tensors[f"ema.{name}"])


@torch.no_grad()
def _assign(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into the model's state in place (named as in ``state_dict``)."""
    state = model.state_dict()
    for name, value in tensors.items():
        state[name].copy_(value)
