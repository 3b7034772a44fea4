"""Lattice parameters <-> lattice matrices in torch (batched, differentiable),
with pymatgen's convention: ``a`` along x, ``b`` in the xy plane."""

from __future__ import annotations

import torch


def lattice_to_params(matrix: torch.Tensor) -> torch.Tensor:
    """Rows-as-vectors lattices ``[B, 3, 3]`` -> ``[B, 6]`` (a, b, c in A;
    alpha, beta, gamma in radians)."""
    lengths = matrix.norm(dim=-1)
    a, b, c = matrix[:, 0], matrix[:, 1], matrix[:, 2]

    def angle(u, v, nu, nv):
        return torch.arccos(((u * v).sum(-1) / (nu * nv)).clamp(-1.0, 1.0))

    alpha = angle(b, c, lengths[:, 1], lengths[:, 2])
    beta = angle(a, c, lengths[:, 0], lengths[:, 2])
    gamma = angle(a, b, lengths[:, 0], lengths[:, 1])
    return torch.cat([lengths, torch.stack([alpha, beta, gamma], -1)], -1)


def params_to_lattice(params: torch.Tensor) -> torch.Tensor:
    """``[B, 6]`` (lengths, angles in radians) -> ``[B, 3, 3]``; impossible
    angle combinations give NaN rows (the caller rejects them)."""
    a, b, c, alpha, beta, gamma = params.unbind(-1)
    cos_a, cos_b, cos_g = torch.cos(alpha), torch.cos(beta), torch.cos(gamma)
    sin_g = torch.sin(gamma)
    zeros = torch.zeros_like(a)
    cx = c * cos_b
    cy = c * (cos_a - cos_b * cos_g) / sin_g
    cz2 = c**2 - cx**2 - cy**2
    cz = torch.where(cz2 > 0, cz2.clamp(min=0).sqrt(), torch.full_like(cz2, float("nan")))
    va = torch.stack([a, zeros, zeros], -1)
    vb = torch.stack([b * cos_g, b * sin_g, zeros], -1)
    vc = torch.stack([cx, cy, cz], -1)
    return torch.stack([va, vb, vc], 1)
