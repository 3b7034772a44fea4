"""A set of SMILES with its shared, lazily computed and optionally cached
statistics: canonical forms, fingerprints, fragments, scaffolds, properties,
ChemNet activations. Each is computed once per distinct molecule and reused by
every metric that needs it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from molgen.metrics.cache import StatsCache, content_hash
from molgen.metrics.chemnet import activation_statistics, chemnet_activations
from molgen.metrics.features import FeatureOptions, canonicalize, compute_features
from molgen.metrics.similarity import nearest_neighbour_similarity


class MoleculeSet:
    """SMILES (invalid ones allowed) plus their statistics.

    Args:
        smiles: The SMILES, in order.
        options: Fingerprint and scaffold settings.
        n_jobs: Worker processes for RDKit work.
        cache_root: Directory of the statistics cache; None: no cache (the
            right choice for generated sets, which change every time).
        device: Where ChemNet runs.
    """

    def __init__(
        self,
        smiles: Sequence[str],
        *,
        options: FeatureOptions = FeatureOptions(),
        n_jobs: int = 1,
        cache_root: Path | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.smiles = list(smiles)
        self.options = options
        self.n_jobs = n_jobs
        self.device = device
        self.hash = content_hash(self.smiles)
        self.cache = StatsCache(cache_root, self.hash)
        self._canonical: list[str | None] | None = None
        self._unique: list[str] | None = None
        self._entry_to_unique: np.ndarray | None = None
        self._features: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.smiles)

    # -- canonical forms -------------------------------------------------
    @property
    def canonical(self) -> list[str | None]:
        """Canonical SMILES of each entry, None for invalid ones."""
        if self._canonical is None:
            self._canonical = canonicalize(self.smiles, self.n_jobs)
        return self._canonical

    @property
    def valid_canonical(self) -> list[str]:
        """Canonical SMILES of the valid entries, in order, duplicates kept."""
        return [c for c in self.canonical if c is not None]

    def _index_unique(self) -> None:
        position: dict[str, int] = {}
        entry_to_unique = []
        for text in self.valid_canonical:
            entry_to_unique.append(position.setdefault(text, len(position)))
        self._unique = list(position)
        self._entry_to_unique = np.asarray(entry_to_unique, dtype=np.int64)

    @property
    def unique(self) -> list[str]:
        """Distinct valid canonical SMILES in order of first appearance."""
        if self._unique is None:
            self._index_unique()
        return self._unique

    @property
    def valid_to_unique(self) -> np.ndarray:
        """For each valid entry, its index in :attr:`unique`."""
        if self._entry_to_unique is None:
            self._index_unique()
        return self._entry_to_unique

    @property
    def weights(self) -> np.ndarray:
        """Multiplicity of each distinct molecule among the valid entries."""
        return self.cached_arrays("weights", lambda: {"weights": np.bincount(self.valid_to_unique, minlength=len(self.unique))})["weights"]

    def cached_arrays(self, name: str, compute) -> dict[str, np.ndarray]:
        """Arrays named ``name`` from memory, the cache, or ``compute``."""
        if name not in self._features:
            self._features[name] = self.cache.arrays(name, compute)
        return self._features[name]

    def cached_json(self, name: str, compute):
        """JSON value named ``name`` from memory, the cache, or ``compute``."""
        if name not in self._features:
            self._features[name] = self.cache.json(name, compute)
        return self._features[name]

    def _features_of_unique(self, *names: str) -> dict[str, object]:
        return compute_features(self.unique, names, self.options, self.n_jobs)

    # -- statistics --------------------------------------------------------
    def fingerprints(self) -> np.ndarray:
        """Packed Morgan fingerprints of the distinct molecules."""
        name = f"fingerprints-r{self.options.radius}-{self.options.n_bits}"
        return self.cached_arrays(name, lambda: {"bits": self._features_of_unique("fingerprints")["fingerprints"]})["bits"]

    def fragment_counts(self) -> Counter:
        """BRICS fragment counts over the valid entries (duplicates counted)."""

        def compute() -> dict[str, int]:
            counts: Counter = Counter()
            for fragments, weight in zip(self._features_of_unique("fragments")["fragments"], self.weights):
                for fragment in fragments:
                    counts[fragment] += int(weight)
            return dict(counts)

        return Counter(self.cached_json("fragments", compute))

    def scaffold_counts(self) -> Counter:
        """Bemis-Murcko scaffold counts over the valid entries."""

        def compute() -> dict[str, int]:
            counts: Counter = Counter()
            for scaffold, weight in zip(self._features_of_unique("scaffolds")["scaffolds"], self.weights):
                if scaffold is not None:
                    counts[scaffold] += int(weight)
            return dict(counts)

        return Counter(self.cached_json(f"scaffolds-min{self.options.scaffold_min_rings}", compute))

    def properties(self) -> np.ndarray:
        """``(n_unique, 4)`` logP, SA, QED and weight."""
        return self.cached_arrays("properties", lambda: {"values": self._features_of_unique("properties")["properties"]})["values"]

    def filters(self) -> np.ndarray:
        """Whether each distinct molecule passes the MOSES filters."""
        return self._features_of_unique_cached("filters")

    def _features_of_unique_cached(self, name: str) -> np.ndarray:
        return self.cached_arrays(name, lambda: {"values": np.asarray(self._features_of_unique(name)[name])})["values"]

    def chemnet(self, subset: np.ndarray | None = None, subset_name: str = "") -> dict[str, np.ndarray]:
        """ChemNet activation mean and covariance (FCD statistics).

        Args:
            subset: None: all valid entries (duplicates counted); else indices
                into :attr:`unique`, each counted once.
            subset_name: Names the subset in the cache.

        Returns:
            ``{"mu", "sigma"}``, or ``{}`` with fewer than 2 molecules.
        """

        def compute() -> dict[str, np.ndarray]:
            if subset is None:
                rows, weights = self._activations(None), self.weights
            else:
                rows, weights = self._activations(np.asarray(subset)), None
            if (len(rows) if weights is None else weights.sum()) < 2:
                return {}
            mu, sigma = activation_statistics(rows, weights)
            return {"mu": mu, "sigma": sigma}

        return self.cached_arrays(f"chemnet{subset_name}", compute)

    def _activations(self, subset: np.ndarray | None) -> np.ndarray:
        # One ChemNet pass over the distinct molecules serves the full set and
        # any subset; a subset alone (full statistics cached) runs only its rows.
        if "_activations" in self._features:
            full = self._features["_activations"]
            return full if subset is None else full[subset]
        if subset is not None:
            return chemnet_activations([self.unique[i] for i in subset], device=self.device)
        self._features["_activations"] = chemnet_activations(self.unique, device=self.device)
        return self._features["_activations"]

    def kl_features(self, subset: np.ndarray, subset_name: str) -> dict[str, np.ndarray]:
        """GuacaMol's descriptors and nearest-neighbour internal similarity of a
        subset of distinct molecules (``subset`` indexes :attr:`unique`)."""

        def compute() -> dict[str, np.ndarray]:
            chosen = [self.unique[i] for i in subset]
            feats = compute_features(chosen, ("descriptors", "fingerprints_kl"), self.options, self.n_jobs)
            bits = feats["fingerprints_kl"]
            # Nearest neighbour other than itself: GuacaMol fills the diagonal with 0.
            nearest = nearest_neighbour_similarity(bits)
            return {"descriptors": feats["descriptors"], "nearest": nearest}

        return self.cached_arrays(f"kl{subset_name}", compute)



def as_molecule_set(molecules: "MoleculeSet | Sequence[str]") -> MoleculeSet:
    """Wrap a SMILES sequence as an uncached :class:`MoleculeSet` (a set passes through)."""
    return molecules if isinstance(molecules, MoleculeSet) else MoleculeSet(molecules)
