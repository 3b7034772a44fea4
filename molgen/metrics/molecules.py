"""MOSES and GuacaMol distribution-learning metrics for generated molecules.

Every metric is a function of :class:`~molgen.metrics.molset.MoleculeSet`
objects (which compute each shared statistic once), with a SMILES-list
convenience wrapper in :mod:`molgen.metrics`. :func:`evaluate_molecules` runs
the whole report.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from molgen.metrics.chemnet import frechet_distance
from molgen.metrics.distributions import (
    continuous_kl,
    count_cosine_similarity,
    discrete_kl,
    weighted_wasserstein,
)
from molgen.metrics.molset import MoleculeSet, as_molecule_set

Molecules = MoleculeSet | Sequence[str]
from molgen.metrics.similarity import max_similarity, mean_power_similarity
from molgen.properties.molecular import (
    GUACAMOL_CONTINUOUS,
    GUACAMOL_DESCRIPTORS,
    MOSES_PROPERTIES,
)


class MetricUnavailable(Exception):
    """A metric cannot be computed for these inputs; the message says why."""


def _require_valid(molset: MoleculeSet, what: str = "generated") -> None:
    if molset.weights.sum() == 0:
        raise MetricUnavailable(f"no valid molecules in the {what} set")


# -- metrics on the generated set alone --------------------------------------
def validity(gen: Molecules) -> float:
    """Fraction of entries that parse and sanitize."""
    gen = as_molecule_set(gen)
    if len(gen) == 0:
        raise MetricUnavailable("the generated set is empty")
    return len(gen.valid_canonical) / len(gen)


def unique_at(gen: Molecules, k: int) -> float:
    """Fraction of distinct canonical SMILES among the first ``k`` valid entries.

    Raises:
        MetricUnavailable: fewer than ``k`` valid entries.
    """
    gen = as_molecule_set(gen)
    valid = gen.valid_canonical
    if len(valid) < k:
        raise MetricUnavailable(f"only {len(valid)} valid molecules, fewer than k={k}")
    return len(set(valid[:k])) / k


def internal_diversity(gen: Molecules, p: int = 1) -> float:
    """MOSES IntDiv_p: ``1 - mean_i (mean_j T_ij**p)**(1/p)`` over the valid
    entries (duplicates and i = j included), Morgan fingerprints."""
    gen = as_molecule_set(gen)
    return internal_diversities(gen, (p,))[p]


def internal_diversities(gen: Molecules, powers: Sequence[int]) -> dict[int, float]:
    """IntDiv for several p from one pass over the similarity matrix."""
    gen = as_molecule_set(gen)
    _require_valid(gen)
    weights = gen.weights
    means = mean_power_similarity(gen.fingerprints(), weights, tuple(powers))
    return {p: float(1.0 - np.average(means[p] ** (1.0 / p), weights=weights)) for p in powers}


def filters_fraction(gen: Molecules) -> float:
    """Fraction of valid entries that pass the MOSES filters."""
    gen = as_molecule_set(gen)
    _require_valid(gen)
    return float(np.average(gen.filters(), weights=gen.weights))


def novelty(gen: Molecules, train: Molecules) -> float:
    """Fraction of distinct valid molecules absent from the training set
    (both compared as RDKit canonical SMILES).

    Args:
        gen: Generated set.
        train: Training set.
    """
    gen = as_molecule_set(gen)
    train_hashes = training_hashes(as_molecule_set(train))
    _require_valid(gen)
    hashes = canonical_hashes(gen.unique)
    position = np.searchsorted(train_hashes, hashes).clip(max=max(len(train_hashes) - 1, 0))
    seen = train_hashes[position] == hashes if len(train_hashes) else np.zeros(len(hashes), dtype=bool)
    return float(1.0 - seen.mean())


def training_hashes(train: MoleculeSet) -> np.ndarray:
    """Sorted hashes of a training set's canonical SMILES (cached with the set)."""
    return train.cached_arrays("canonical-hashes", lambda: {"hashes": canonical_hashes(train.valid_canonical)})["hashes"]


def canonical_hashes(canonical: Sequence[str]) -> np.ndarray:
    """Sorted 64-bit hashes of canonical SMILES (a compact, cacheable set)."""
    values = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little", signed=True) for t in canonical]
    return np.unique(np.asarray(values, dtype=np.int64))


# -- metrics against a reference set -------------------------------------------
def snn(gen: Molecules, ref: Molecules) -> float:
    """Mean over valid generated entries of the highest Tanimoto similarity to the reference."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    _require_valid(ref, "reference")
    best = max_similarity(gen.fingerprints(), ref.fingerprints())
    return float(np.average(best, weights=gen.weights))


def fragment_similarity(gen: Molecules, ref: Molecules) -> float:
    """Cosine similarity of BRICS fragment counts (MOSES Frag)."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    value = count_cosine_similarity(ref.fragment_counts(), gen.fragment_counts())
    if math.isnan(value):
        raise MetricUnavailable("no BRICS fragments in one of the sets")
    return value


def scaffold_similarity(gen: Molecules, ref: Molecules) -> float:
    """Cosine similarity of Bemis-Murcko scaffold counts (MOSES Scaf);
    scaffolds with fewer than ``options.scaffold_min_rings`` rings are left out."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    value = count_cosine_similarity(ref.scaffold_counts(), gen.scaffold_counts())
    if math.isnan(value):
        raise MetricUnavailable(
            f"no scaffold with >= {gen.options.scaffold_min_rings} rings in one of the sets"
        )
    return value


def property_distance(gen: Molecules, ref: Molecules, name: str) -> float:
    """Wasserstein-1 distance of a MOSES property (logP, SA, QED, weight)."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    column = list(MOSES_PROPERTIES).index(name)
    gen_values, gen_w = _finite(gen.properties()[:, column], gen.weights)
    ref_values, ref_w = _finite(ref.properties()[:, column], ref.weights)
    if len(gen_values) == 0 or len(ref_values) == 0:
        raise MetricUnavailable(f"{name} could not be computed for any molecule of a set")
    return weighted_wasserstein(ref_values, gen_values, ref_w, gen_w)


def _finite(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    return values[keep], weights[keep]


def _finite_only(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def fcd(gen: Molecules, ref: Molecules) -> float:
    """Fréchet ChemNet Distance between the valid entries of both sets."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    gen_stats, ref_stats = gen.chemnet(), ref.chemnet()
    if "mu" not in gen_stats or "mu" not in ref_stats:
        raise MetricUnavailable("FCD needs at least 2 valid molecules in each set")
    return frechet_distance(gen_stats["mu"], gen_stats["sigma"], ref_stats["mu"], ref_stats["sigma"])


@dataclass(frozen=True)
class GuacamolProtocol:
    """GuacaMol's sampling of both sets for its distribution scores.

    Attributes:
        samples: Molecules per side (GuacaMol: 10,000): the first distinct
            valid generated ones, a seeded random subset of the reference.
        seed: Seed of the reference subset (GuacaMol: 42).
    """

    samples: int = 10_000
    seed: int = 42

    def generated_subset(self, gen: MoleculeSet) -> np.ndarray:
        return np.arange(min(self.samples, len(gen.unique)))

    def reference_subset(self, ref: MoleculeSet) -> np.ndarray:
        n = len(ref.weights)
        if n <= self.samples:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, size=self.samples, replace=False))

    def name(self) -> str:
        return f"-guacamol{self.samples}-seed{self.seed}"


def kl_score(gen: Molecules, ref: Molecules, protocol: GuacamolProtocol = GuacamolProtocol()) -> float:
    """GuacaMol KL-divergence score: mean of ``exp(-KL)`` over the 9 descriptors
    and the nearest-neighbour internal similarity."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    gen_subset = protocol.generated_subset(gen)
    if len(gen_subset) < 2:
        raise MetricUnavailable("KL_score needs at least 2 distinct valid molecules")
    gen_kl = gen.kl_features(gen_subset, f"-first{len(gen_subset)}")
    ref_kl = ref.kl_features(protocol.reference_subset(ref), protocol.name())
    divergences = []
    for column, name in enumerate(GUACAMOL_DESCRIPTORS):
        p = _finite_only(ref_kl["descriptors"][:, column])
        q = _finite_only(gen_kl["descriptors"][:, column])
        kl = continuous_kl if name in GUACAMOL_CONTINUOUS else discrete_kl
        try:
            divergences.append(kl(p, q))
        except ValueError as exc:
            raise MetricUnavailable(f"KL of {name}: {exc}") from None
    try:
        divergences.append(continuous_kl(ref_kl["nearest"], gen_kl["nearest"]))
    except ValueError as exc:
        raise MetricUnavailable(f"KL of internal similarity: {exc}") from None
    return float(np.mean(np.exp(-np.asarray(divergences))))


def fcd_score(gen: Molecules, ref: Molecules, protocol: GuacamolProtocol = GuacamolProtocol()) -> float:
    """GuacaMol FCD score ``exp(-0.2 FCD)``, FCD between the first ``samples``
    distinct valid generated molecules and a seeded reference subset."""
    gen = as_molecule_set(gen)
    ref = as_molecule_set(ref)
    _require_valid(gen)
    gen_subset = protocol.generated_subset(gen)
    gen_stats = gen.chemnet(gen_subset, f"-first{len(gen_subset)}")
    ref_stats = ref.chemnet(protocol.reference_subset(ref), protocol.name())
    if "mu" not in gen_stats or "mu" not in ref_stats:
        raise MetricUnavailable("FCD_score needs at least 2 distinct valid molecules in each set")
    distance = frechet_distance(gen_stats["mu"], gen_stats["sigma"], ref_stats["mu"], ref_stats["sigma"])
    return float(math.exp(-0.2 * distance))
