"""The one interface every noise process implements (diffusers' schedulers,
MatterGen's per-field corruptions): a forward corruption ``q(x_t | x_0)``
for ``t`` in [0, 1] (``t = 0`` clean, ``t = 1`` the prior), a draw from the
prior, an ancestral reverse step and the per-step ELBO term.

A model's *prediction* for a field is whatever its noise is parametrised by:
clean-category probabilities (categorical, masking), the noise ``eps``
(Gaussian), ``sigma * score`` (wrapped normal). It is what ``add_noise``
returns as the regression target, or, for discrete noise, the clean ``x_0``
itself (the loss is then a cross-entropy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class Noise(ABC):
    """A corruption process on one field (types, coordinates, lattice, tokens).

    Reductions: discrete noise gives one value per id (``x0.shape``),
    continuous noise on vectors one per vector (``x0.shape[:-1]``, summed over
    the last dimension).
    """

    @abstractmethod
    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``x_t`` from ``q(x_t | x_0)``.

        Args:
            x0: Clean values ``[B, ...]``.
            t: Times ``[B]``.
            generator: Source of randomness.

        Returns:
            ``(x_t, aux)``: what the loss needs besides ``x_0``: the target
            of a continuous prediction, the masked positions of masking
            noise, None for categorical transitions.
        """

    @abstractmethod
    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Draw ``x_1`` of ``shape`` (ids: ``shape``; vectors: ``shape`` includes the last dimension)."""

    @abstractmethod
    def reverse_step(
        self, xt: torch.Tensor, prediction: torch.Tensor, s: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw ``x_s`` from ``p(x_s | x_t)`` given the model's prediction (``s < t``).

        Args:
            xt: Current values.
            prediction: The model's prediction at ``t`` (see the module docstring).
            s: Earlier times ``[B]``; t: current times ``[B]``.
            generator: Source of randomness.
        """

    @abstractmethod
    def posterior_kl(self, x0: torch.Tensor, xt: torch.Tensor, prediction: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``KL(q(x_s | x_t, x_0) || p(x_s | x_t))`` (nats), one value per id or vector.

        At ``s = 0`` it is the reconstruction term of the ELBO.
        """

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """``KL(q(x_1 | x_0) || prior)`` per id or vector; zero unless a
        process overrides it (its ``x_1`` forgets ``x_0`` to float precision)."""
        return torch.zeros(x0.shape if x0.dtype == torch.long else x0.shape[:-1], device=x0.device)


class IdentityNoise(Noise):
    """No corruption: a field that is given, not generated (e.g. the node
    types of a one-element graph view). Draws no random numbers.

    Args:
        fill: The prior's constant id.
    """

    def __init__(self, fill: int = 0):
        self.fill = fill

    def add_noise(self, x0, t, generator=None):
        """``x_t = x_0``."""
        return x0, None

    def sample_prior(self, shape, generator=None, device=None):
        """``fill`` everywhere (ids)."""
        return torch.full(shape, self.fill, dtype=torch.long, device=device)

    def reverse_step(self, xt, prediction, s, t, generator=None):
        """``x_s = x_t``."""
        return xt

    def posterior_kl(self, x0, xt, prediction, s, t):
        """Zero per id."""
        return torch.zeros(xt.shape, device=xt.device)
