"""Wrapped-normal noise on fractional coordinates (periodic in [0, 1)), the
variance-exploding score-matching process of DiffCSP (Jiao et al. 2023).

``x_t = (x_0 + sigma(t) eps) mod 1`` with ``sigma(t)`` geometric between
``sigma_min`` and ``sigma_max``; the model learns the score of the wrapped
normal ``WN(x_0, sigma^2)``, a sum over periodic images."""

from __future__ import annotations

import torch

from molgen.schedulers.base import Noise


def wrap(x: torch.Tensor) -> torch.Tensor:
    """Fractional coordinates into [0, 1)."""
    return x - torch.floor(x)


def min_image(d: torch.Tensor) -> torch.Tensor:
    """Fractional differences into [-0.5, 0.5)."""
    return d - torch.round(d)


def wrapped_normal_score(d: torch.Tensor, sigma: torch.Tensor, images: int = 3) -> torch.Tensor:
    """Score ``d/dx log WN(x; x_0, sigma^2)`` at ``d = x - x_0`` (elementwise).

    Args:
        d: Displacements (any real values; periodic in 1).
        sigma: Noise scale broadcastable to ``d``.
        images: Periodic images summed on each side.
    """
    d = min_image(d).unsqueeze(-1)
    k = torch.arange(-images, images + 1, device=d.device, dtype=d.dtype)
    shifted = d + k
    sigma = sigma.unsqueeze(-1)
    logw = -(shifted**2) / (2 * sigma**2)
    w = torch.softmax(logw, dim=-1)
    return (w * (-shifted / sigma**2)).sum(-1)


class WrappedNormalNoise(Noise):
    """VE noise on the torus; the prediction is ``sigma_t * score``.

    Args:
        sigma_min: Noise scale at ``t = 0`` (DiffCSP: 0.005).
        sigma_max: Noise scale at ``t = 1`` (DiffCSP: 0.5; nearly uniform).
    """

    def __init__(self, sigma_min: float = 0.005, sigma_max: float = 0.5):
        if not 0 < sigma_min < sigma_max:
            raise ValueError("need 0 < sigma_min < sigma_max")
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise scale at ``t`` (geometric interpolation)."""
        return self.sigma_min ** (1 - t) * self.sigma_max**t

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``x_t`` and the score target ``sigma * score`` (unit scale).

        Args:
            x0: Clean coordinates ``[B, N, 3]``.
            t: Times ``[B]``.

        Returns:
            ``(x_t, sigma * d/dx_t log WN(x_t; x_0, sigma^2))``.
        """
        sigma = self.sigma(t).reshape(-1, 1, 1)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        xt = wrap(x0 + sigma * eps)
        return xt, sigma * wrapped_normal_score(xt - x0, sigma.expand_as(xt))

    def sample_prior(self, shape: tuple[int, ...], generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Uniform coordinates (``WN(., 0.5)`` is uniform to within 1.5 %; :meth:`prior_kl` is taken as 0)."""
        return torch.rand(shape, generator=generator, device=device)

    def reverse_step(self, xt: torch.Tensor, scaled_score: torch.Tensor, s: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One ancestral VE step from ``t`` to ``s`` given ``sigma_t * score``."""
        sig_t, sig_s = self.sigma(t).reshape(-1, 1, 1), self.sigma(s).reshape(-1, 1, 1)
        var = (sig_t**2 - sig_s**2).clamp(min=0)
        score = scaled_score / sig_t
        noise = torch.randn(xt.shape, generator=generator, device=xt.device)
        last = (s <= 0).float().reshape(-1, 1, 1)
        return wrap(xt + var * score + (1 - last) * (var * sig_s**2 / sig_t**2).sqrt() * noise)

    def langevin_step(self, x: torch.Tensor, scaled_score: torch.Tensor, t: torch.Tensor, step_size: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """One corrector (Langevin) step at the noise level of ``t``, with the
        step scaled by ``(sigma_t / sigma_min)^2`` as in DiffCSP."""
        sig = self.sigma(t).reshape(-1, 1, 1)
        eps = step_size * (sig / self.sigma_min) ** 2
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return wrap(x + eps * scaled_score / sig + (2 * eps).sqrt() * noise)

    def posterior_kl(self, x0: torch.Tensor, xt: torch.Tensor, scaled_score: torch.Tensor, s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-example KL of one reverse step treating the wrapped normal as
        locally Gaussian (exact as ``sigma -> 0``; the error is
        ``O(exp(-1 / (2 sigma^2)))``). The chain's ``t = 0`` state is the data
        blurred by ``sigma_min``, so the bound is on coordinates at that
        resolution, relative to the uniform prior (log-density 0).

        Args:
            x0: Clean coordinates ``[B, N, 3]`` (padding rows zero-weighted by the caller).
            xt: Noisy coordinates.
            scaled_score: The model's ``sigma_t * score``; ``sigma_t`` times it
                (``sigma_t^2 * score``) estimates ``min_image(x_0 - x_t)``.
            s: Earlier times; t: current times.

        Returns:
            KL summed over the last dimension ``[B, N]``.
        """
        sig_t, sig_s = self.sigma(t).reshape(-1, 1, 1), self.sigma(s).reshape(-1, 1, 1)
        x0_hat_shift = sig_t * scaled_score
        var_step = sig_t**2 - sig_s**2
        true_shift = min_image(x0 - xt)
        # Posterior mean of x_s relative to x_t: (var_step / sig_t^2) * shift.
        var_post = (var_step * sig_s**2 / sig_t**2).clamp(min=self.sigma_min**2 * 1e-2)
        gap = (var_step / sig_t**2) * (true_shift - x0_hat_shift)
        return (gap**2 / (2 * var_post)).sum(-1)
