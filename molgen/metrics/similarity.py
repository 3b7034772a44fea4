"""Morgan fingerprints as packed bit matrices and vectorised Tanimoto
similarity between whole sets (blocked matrix products, never a Python loop
over pairs)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

#: Query rows and reference columns per block: small enough (16 MiB of int32)
#: that the element-wise passes after each matrix product run from cache.
QUERY_BLOCK = 1024
REFERENCE_BLOCK = 4096


@lru_cache(maxsize=8)
def _morgan_generator(radius: int, n_bits: int):
    return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)


def morgan_bits(mol: Chem.Mol, radius: int = 2, n_bits: int = 1024) -> np.ndarray:
    """Morgan (ECFP-like) bit fingerprint, packed 8 bits per byte.

    Args:
        mol: A molecule.
        radius: Morgan radius (2 is ECFP4).
        n_bits: Fingerprint length; a multiple of 8.

    Returns:
        ``uint8`` array of ``n_bits // 8`` bytes.
    """
    dense = _morgan_generator(radius, n_bits).GetFingerprintAsNumPy(mol)
    return np.packbits(dense.astype(bool))


def _int8_bits(packed: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.unpackbits(packed, axis=1).view(np.int8))


def _common_bits(query: torch.Tensor, reference_t: torch.Tensor) -> torch.Tensor:
    """Exact counts of shared on-bits, ``query @ reference_t`` as int32.

    int8 products with int32 accumulation (VNNI on x86 CPUs) are exact and
    about 3.5x faster than float32 here; shapes the int8 kernel does not take
    fall back to float32, which is exact for counts below 2**24.
    """
    if query.shape[0] > 16 and query.shape[1] % 8 == 0 and reference_t.shape[1] % 8 == 0:
        try:
            return torch._int_mm(query, reference_t)
        except RuntimeError:
            pass
    return (query.float() @ reference_t.float()).round().int()


def _tanimoto_blocks(query: np.ndarray, reference: np.ndarray):
    """Yield ``(row_slice, col_slice, similarity block)`` over both sets."""
    q_counts = torch.from_numpy(np.unpackbits(query, axis=1).sum(1).astype(np.int32))
    r_counts = torch.from_numpy(np.unpackbits(reference, axis=1).sum(1).astype(np.int32))
    q_blocks = [(slice(q0, q0 + QUERY_BLOCK), _int8_bits(query[q0 : q0 + QUERY_BLOCK])) for q0 in range(0, len(query), QUERY_BLOCK)]
    for r0 in range(0, len(reference), REFERENCE_BLOCK):
        r_slice = slice(r0, r0 + REFERENCE_BLOCK)
        ref_t = _int8_bits(reference[r_slice]).T.contiguous()
        for q_slice, q_bits in q_blocks:
            common = _common_bits(q_bits, ref_t)
            union = q_counts[q_slice, None] + r_counts[None, r_slice]
            union -= common
            similarity = common / union  # int / int -> float32
            if bool((q_counts[q_slice] == 0).any()) and bool((r_counts[r_slice] == 0).any()):
                similarity.nan_to_num_(nan=1.0)  # two empty fingerprints are identical, as in MOSES
            yield q_slice, r_slice, similarity


def max_similarity(query: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Highest Tanimoto similarity of each query fingerprint to the reference set.

    Args:
        query: Packed fingerprints, shape ``(n, n_bits // 8)``.
        reference: Packed fingerprints of the same length.

    Returns:
        ``float64`` array of ``n`` values in [0, 1].
    """
    best = np.zeros(len(query), dtype=np.float64)
    if len(reference) == 0:
        return best
    for q_slice, _, block in _tanimoto_blocks(query, reference):
        np.maximum(best[q_slice], block.max(dim=1).values.double().numpy(), out=best[q_slice])
    return best


def mean_power_similarity(fingerprints: np.ndarray, weights: np.ndarray, powers: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Weighted mean of ``T**p`` of each fingerprint to all (itself included).

    This is the inner term of MOSES's internal diversity: for fingerprint i,
    ``sum_j w_j T_ij**p / sum_j w_j``. Weights are multiplicities, so a set
    with duplicates can be passed once per distinct molecule.

    Args:
        fingerprints: Packed fingerprints of the distinct molecules.
        weights: Multiplicity of each.
        powers: The exponents p wanted.

    Returns:
        ``{p: per-fingerprint weighted mean of T**p}``.
    """
    weight_tensor = torch.from_numpy(np.asarray(weights, dtype=np.float64))
    sums = {p: np.zeros(len(fingerprints), dtype=np.float64) for p in powers}
    for q_slice, r_slice, block in _tanimoto_blocks(fingerprints, fingerprints):
        w = weight_tensor[r_slice].float()
        for p in powers:
            sums[p][q_slice] += ((block**p) @ w).double().numpy()
    total = float(weight_tensor.sum())
    return {p: values / total for p, values in sums.items()}


def nearest_neighbour_similarity(fingerprints: np.ndarray) -> np.ndarray:
    """Highest Tanimoto similarity of each fingerprint to any *other* in the set
    (GuacaMol's internal similarity: the diagonal is set to 0).

    Args:
        fingerprints: Packed fingerprints.

    Returns:
        ``float64`` array, one value per fingerprint.
    """
    best = np.zeros(len(fingerprints), dtype=np.float64)
    for q_slice, r_slice, block in _tanimoto_blocks(fingerprints, fingerprints):
        rows = torch.arange(q_slice.start, q_slice.start + block.shape[0])
        cols = rows - r_slice.start
        inside = (cols >= 0) & (cols < block.shape[1])
        block[torch.nonzero(inside).squeeze(1), cols[inside]] = 0.0
        np.maximum(best[q_slice], block.max(dim=1).values.double().numpy(), out=best[q_slice])
    return best
