"""The crystal-only parts of graph diffusion (DiffCSP, Jiao et al. 2023):
wrapped-normal fractional coordinates and Gaussian lattice parameters as
two :class:`GraphField` s, the periodic pair features of the denoiser, the
lattice standardisation and the Langevin corrector on coordinates.

* Coordinates: VE wrapped-normal noise; the denoiser predicts
  ``sigma * score`` per atom from translation-invariant inputs (Fourier
  features of fractional differences and minimum-image distances through the
  noisy metric tensor, so the inputs are E(3)-invariant). The neighbour graph
  of the domain's graph view is not used: noise moves the atoms every step,
  and the cells the model targets are small (<= 32 atoms), so all pairs are
  cheaper than recomputing periodic neighbour lists.
* Lattice: DDPM noise on standardised ``(log a, log b, log c, alpha, beta,
  gamma)``, an O(3)-invariant parametrisation that always decodes to a cell
  (or is rejected when the angles are impossible).
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

import torch
from torch import nn

from molgen.backbones.graph_fields import GraphField
from molgen.nn.lattice import lattice_to_params, params_to_lattice
from molgen.schedulers.base import Noise
from molgen.schedulers.gaussian import GaussianNoise
from molgen.schedulers.wrapped_normal import WrappedNormalNoise, min_image

# Standard deviations below these floors (e.g. the angles of cubic cells) are
# raised so that standardised lattice parameters stay O(1) under noise.
_LOG_LENGTH_STD_FLOOR = 0.02
_ANGLE_STD_FLOOR = 0.05
# A noise-predicted lattice implies x_0 = (z - sqrt(1-a) eps)/sqrt(a), huge at
# early steps; clamping it (in standard units) keeps the reverse chain finite.
_LATTICE_X0_CLIP = 10.0


# -- lattice parametrisation -----------------------------------------------------
def raw_lattice_params(matrix: torch.Tensor) -> torch.Tensor:
    """``(log a, log b, log c, alpha, beta, gamma)`` ``[B, 6]`` of lattice matrices ``[B, 3, 3]``."""
    params = lattice_to_params(matrix)
    return torch.cat([params[:, :3].clamp(min=1e-3).log(), params[:, 3:]], -1)


def lattice_statistics(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and floored standard deviation ``[6]`` of training lattices ``[B, 3, 3]``."""
    params = raw_lattice_params(matrices)
    std = params.std(0) if len(params) > 1 else torch.ones(6)
    floors = torch.tensor([_LOG_LENGTH_STD_FLOOR] * 3 + [_ANGLE_STD_FLOOR] * 3)
    return params.mean(0), torch.maximum(torch.nan_to_num(std, nan=1.0), floors)


def lattice_to_standard(matrix: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Standardised lattice parameters ``[B, 6]`` (``stats``: ``lattice_mean``, ``lattice_std``)."""
    return (raw_lattice_params(matrix) - stats["lattice_mean"]) / stats["lattice_std"]


def standard_to_params(z: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """(lengths, angles in radians) ``[B, 6]`` of standardised parameters, always a plausible cell."""
    # Beyond 6 standard deviations of the training cells a lattice is an
    # artefact of an untrained or diverging model, not a prediction.
    raw = z.clamp(-6.0, 6.0) * stats["lattice_std"] + stats["lattice_mean"]
    lengths = raw[:, :3].clamp(math.log(0.5), math.log(400.0)).exp()
    angles = raw[:, 3:].clamp(math.radians(20), math.radians(160))
    return torch.cat([lengths, angles], -1)


def metric_tensor(params: torch.Tensor) -> torch.Tensor:
    """Metric tensor ``G = L L^T`` ``[B, 3, 3]`` from (lengths, angles): defined
    for any angles, so noisy lattices need no valid matrix."""
    lengths, angles = params[:, :3], params[:, 3:]
    cos = torch.cos(angles)  # alpha (b,c), beta (a,c), gamma (a,b)
    a, b, c = lengths.unbind(-1)
    ca, cb, cg = cos.unbind(-1)
    row0 = torch.stack([a * a, a * b * cg, a * c * cb], -1)
    row1 = torch.stack([a * b * cg, b * b, b * c * ca], -1)
    row2 = torch.stack([a * c * cb, b * c * ca, c * c], -1)
    return torch.stack([row0, row1, row2], 1)


# -- the fields --------------------------------------------------------------------
class FracCoords(GraphField):
    """Fractional coordinates ``[B, N, 3]`` under wrapped-normal noise."""

    key, output, loss_name, head, sample_key, scope, dim = "frac_coords", "coord_score", "coord_loss", "coord_out", "frac_coords", "node", 3

    def __init__(self, config):
        self.wrapped_normal = WrappedNormalNoise(config.sigma_min, config.sigma_max)

    def noise(self, stats: Mapping[str, torch.Tensor]) -> WrappedNormalNoise:
        return self.wrapped_normal

    def weight(self, config) -> float:
        return config.coord_weight

    def make_head(self, config) -> nn.Module:
        return nn.Linear(config.d_node, 3)


class LatticeParams(GraphField):
    """Standardised lattice parameters ``[B, 6]`` under Gaussian noise; sampled graphs get the matrix ``[1, 3, 3]``."""

    key, output, loss_name, head, sample_key, scope, dim = "lattice_z", "lattice_eps", "lattice_loss", "lattice_out", "lattice", "graph", 6

    def __init__(self, config):
        self._noise = GaussianNoise(clip_x0=_LATTICE_X0_CLIP)

    def noise(self, stats: Mapping[str, torch.Tensor]) -> Noise:
        return self._noise

    def weight(self, config) -> float:
        return config.lattice_weight

    def make_head(self, config) -> nn.Module:
        return nn.Sequential(nn.Linear(config.d_global + config.d_node, config.d_global), nn.GELU(), nn.Linear(config.d_global, 6))

    def clean(self, batch: Mapping[str, torch.Tensor], stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return lattice_to_standard(batch["lattice"], stats)

    def decode(self, x: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return params_to_lattice(standard_to_params(x, stats))


def crystal_parts(config) -> tuple[list[GraphField], "PeriodicFeatures", "LangevinCorrector"]:
    """What a periodic graph adds to its types: the fields (coordinates, then
    lattice), the denoiser's periodic inputs and the corrector on coordinates."""
    coords = FracCoords(config)
    corrector = LangevinCorrector(coords.wrapped_normal, config.corrector_step_size)
    return [coords, LatticeParams(config)], PeriodicFeatures(config), corrector


# -- the denoiser's periodic inputs ----------------------------------------------------
class PeriodicFeatures(nn.Module):
    """Translation- and rotation-invariant inputs of a noisy crystal: per pair,
    Fourier features of the minimum-image fractional difference and a radial
    basis of its length through the noisy metric; per graph, the noisy lattice.

    Args:
        config: ``fourier_features``, ``distance_features``, ``distance_cutoff``.
    """

    def __init__(self, config):
        super().__init__()
        self.fourier_features = config.fourier_features
        self.distance_features = config.distance_features
        self.distance_cutoff = config.distance_cutoff
        self.register_buffer("rbf_centres", torch.linspace(0.0, config.distance_cutoff, config.distance_features), persistent=False)

    @property
    def pair_dim(self) -> int:
        """Width of :meth:`pair`."""
        return 6 * self.fourier_features + self.distance_features

    global_dim = 6

    def pair(self, state: Mapping[str, torch.Tensor], stats: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Pair features ``[B, N, N, .]`` (Fourier sin, cos, radial basis)."""
        frac = state["frac_coords"]
        diff = min_image(frac.unsqueeze(1) - frac.unsqueeze(2))  # [B, N, N, 3], j - i
        k = torch.arange(1, self.fourier_features + 1, device=frac.device, dtype=frac.dtype)
        angles = 2 * math.pi * diff.unsqueeze(-1) * k
        metric = metric_tensor(standard_to_params(state["lattice_z"], stats))  # [B, 3, 3], invariant to rotations
        dist2 = torch.einsum("bijk,bkl,bijl->bij", diff, metric, diff).clamp(min=0)
        dist = (dist2 + 1e-8).sqrt().unsqueeze(-1)
        width = self.distance_cutoff / self.distance_features
        return [torch.sin(angles).flatten(-2), torch.cos(angles).flatten(-2), torch.exp(-(((dist - self.rbf_centres) / width) ** 2))]

    def graph(self, state: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Global features ``[B, 6]``: the noisy standardised lattice."""
        return state["lattice_z"]


class LangevinCorrector:
    """DiffCSP's corrector: Langevin steps on the coordinates at the current
    noise level before each denoising step.

    Args:
        noise: The coordinates' noise.
        step_size: Base step (scaled by ``(sigma_t / sigma_min)^2``).
    """

    def __init__(self, noise: WrappedNormalNoise, step_size: float):
        self.noise = noise
        self.step_size = step_size

    def __call__(
        self, state: dict[str, torch.Tensor], predict: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]], t: torch.Tensor, steps: int, generator
    ) -> None:
        """Update ``state["frac_coords"]`` in place of the dict, ``steps`` times.

        Args:
            state: The noisy state.
            predict: State -> denoiser predictions (with guidance).
            t: Current times ``[B]``.
            steps: Corrector steps.
            generator: Source of randomness.
        """
        for _ in range(steps):
            score = predict(state)["coord_score"]
            state["frac_coords"] = self.noise.langevin_step(state["frac_coords"], score, t, self.step_size, generator)
