"""Seeded, documented train/validation/test splits of a data file."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "val", "test")


def split_indices(n: int, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 42) -> dict[str, np.ndarray]:
    """Positions of the rows in each split.

    The rows are permuted with ``numpy.random.default_rng(seed)``; the first
    ``round(n * fractions[0])`` go to train, the next ``round(n * fractions[1])``
    to validation and the rest to test. Each part is returned sorted.

    Args:
        n: Number of rows.
        fractions: Train, validation, test fractions (sum 1).
        seed: Seed of the permutation.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``.
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(n * fractions[0]))
    n_val = int(round(n * fractions[1]))
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    return {name: np.sort(part) for name, part in zip(SPLITS, parts)}


def stratified_split_indices(
    labels, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2), seed: int = 42
) -> dict[str, np.ndarray]:
    """:func:`split_indices` applied within each label value, so every split
    keeps the label proportions.

    Args:
        labels: One label per row (any hashable values).
        fractions: Train, validation, test fractions.
        seed: Seed; label group ``k`` (in sorted order) uses ``seed + k``.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` (sorted row positions).
    """
    labels = np.asarray(labels)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for k, value in enumerate(sorted(set(labels.tolist()))):
        rows = np.flatnonzero(labels == value)
        for name, idx in split_indices(len(rows), fractions, seed + k).items():
            parts[name].append(rows[idx])
    return {name: np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=int) for name, chunks in parts.items()}


def scaffold_split_indices(
    scaffolds, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """Balanced scaffold split (as chemprop's ``scaffold_balanced``): rows
    sharing a Bemis-Murcko scaffold stay in one part, so test molecules have
    scaffolds never seen in training.

    Scaffold groups larger than half the test size go to train first (in a
    seeded order), the rest are shuffled with the seed; then groups fill
    train, validation and test in that order.

    Args:
        scaffolds: One scaffold key per row (e.g. canonical scaffold SMILES).
        fractions: Train, validation, test fractions (sum 1).
        seed: Seed of the group order.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}`` (sorted row positions).
    """
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    groups: dict[object, list[int]] = {}
    for row, scaffold in enumerate(scaffolds):
        groups.setdefault(scaffold, []).append(row)
    n = sum(len(g) for g in groups.values())
    train_size, val_size = fractions[0] * n, fractions[1] * n
    test_size = n - train_size - val_size
    rng = np.random.default_rng(seed)
    sets = list(groups.values())
    big = [g for g in sets if len(g) > test_size / 2]
    small = [g for g in sets if len(g) <= test_size / 2]
    rng.shuffle(big)
    rng.shuffle(small)
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for group in big + small:
        if len(parts["train"]) + len(group) <= train_size:
            parts["train"].extend(group)
        elif len(parts["val"]) + len(group) <= val_size:
            parts["val"].extend(group)
        else:
            parts["test"].extend(group)
    return {name: np.sort(np.asarray(rows, dtype=int)) for name, rows in parts.items()}
