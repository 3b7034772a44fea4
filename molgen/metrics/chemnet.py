"""Fréchet ChemNet Distance (Preuer et al. 2018) with the ChemNet weights that
ship inside the ``fcd`` package."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

#: ChemNet reads SMILES one-hot encoded and zero-padded to 350 characters; the
#: padding length changes the activations, so it is fixed as in ``fcd``.
PAD_LENGTH = 350
ACTIVATION_SIZE = 512


@lru_cache(maxsize=1)
def load_chemnet() -> torch.nn.Module:
    """The pretrained ChemNet of the ``fcd`` package, in eval mode."""
    try:
        import fcd
    except ImportError as exc:  # pragma: no cover - fcd is a core dependency
        raise ImportError("FCD needs the 'fcd' package: pip install fcd") from exc
    return fcd.load_ref_model()


def _one_hot(smiles: Sequence[str], pad_length: int) -> torch.Tensor:
    from fcd.utils import get_one_hot

    encoded = np.stack([get_one_hot(text, pad_len=pad_length) for text in smiles])
    # fcd scales the one-hot rows by the vocabulary size before the network.
    return torch.from_numpy(encoded / encoded.shape[2]).float().transpose(1, 2)


def chemnet_activations(
    smiles: Sequence[str], *, batch_size: int = 256, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Penultimate-layer ChemNet activations of canonical SMILES.

    Args:
        smiles: Canonical SMILES (RDKit), as ChemNet was trained on.
        batch_size: Molecules per forward pass.
        device: Where ChemNet runs.

    Returns:
        ``float32`` array of shape ``(len(smiles), 512)``.
    """
    model = load_chemnet().to(device)
    out = np.zeros((len(smiles), ACTIVATION_SIZE), dtype=np.float32)
    # A SMILES longer than the standard padding gets its own, longer padding
    # rather than changing the padding (and so the activations) of the rest.
    long_ones = [i for i, text in enumerate(smiles) if len(text) + 1 > PAD_LENGTH]
    normal = [i for i, text in enumerate(smiles) if len(text) + 1 <= PAD_LENGTH]
    with torch.inference_mode():
        for start in range(0, len(normal), batch_size):
            index = normal[start : start + batch_size]
            batch = _one_hot([smiles[i] for i in index], PAD_LENGTH).to(device)
            out[index] = model(batch).float().cpu().numpy()
        for i in long_ones:
            batch = _one_hot([smiles[i]], len(smiles[i]) + 1).to(device)
            out[i] = model(batch).float().cpu().numpy()[0]
    return out


def activation_statistics(activations: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of activations, rows counted ``weights`` times.

    Equal to ``np.cov(activations.T, fweights=weights)``, accumulated over
    row chunks in float64 so that 176k x 512 activations never need a full
    float64 copy.

    Args:
        activations: ``(n, 512)`` activations of distinct molecules.
        weights: Integer multiplicity of each row (None: once each).

    Returns:
        ``(mu, sigma)``.
    """
    w = np.ones(len(activations)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = w.sum()
    mu = _weighted_sum(activations, w) / total
    scatter = np.zeros((activations.shape[1], activations.shape[1]))
    for start in range(0, len(activations), _STATS_CHUNK):
        centred = activations[start : start + _STATS_CHUNK].astype(np.float64) - mu
        scatter += centred.T @ (centred * w[start : start + _STATS_CHUNK, None])
    return mu, scatter / (total - 1)


_STATS_CHUNK = 16384


def _weighted_sum(activations: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.zeros(activations.shape[1])
    for start in range(0, len(activations), _STATS_CHUNK):
        out += w[start : start + _STATS_CHUNK] @ activations[start : start + _STATS_CHUNK].astype(np.float64)
    return out


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between two Gaussians (``fcd``'s numerically stable version)."""
    import warnings

    from fcd import calculate_frechet_distance

    with warnings.catch_warnings():  # fcd passes an argument newer scipy deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        return float(calculate_frechet_distance(mu1=mu1, sigma1=sigma1, mu2=mu2, sigma2=sigma2))
