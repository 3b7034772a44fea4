"""Diversity filter: buckets of identical Murcko scaffolds (REINVENT's
"IdenticalMurckoScaffold" memory), so a campaign cannot collapse onto one
chemotype."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel


class DiversityFilterConfig(StrictModel):
    """Settings of :class:`ScaffoldDiversityFilter`."""

    kind: Literal["murcko", "generic", "off"] = Field("murcko", description="scaffold type, or off")
    bucket_size: int = Field(25, gt=0, description="molecules per scaffold before the penalty applies")
    min_score: float = Field(0.4, ge=0, description="only molecules scoring at least this fill buckets")
    penalty: float = Field(0.0, ge=0, le=1, description="reward multiplier once a bucket is full (0: zero reward)")
    penalize_repeats: bool = Field(True, description="a molecule proposed again in a later step gets the penalty too")


def scaffold_key(mol, generic: bool = False) -> str:
    """Canonical SMILES of the Bemis-Murcko scaffold ("" for acyclic
    molecules); with ``generic`` every atom becomes carbon and every bond single."""
    from rdkit import Chem
    from rdkit.Chem.Scaffolds import MurckoScaffold

    try:
        core = MurckoScaffold.GetScaffoldForMol(mol)
        if generic:
            core = MurckoScaffold.MakeScaffoldGeneric(core)
        return Chem.MolToSmiles(core)
    except Exception:  # RDKit rejects a few exotic valences in the generic form
        return "?"


class ScaffoldDiversityFilter:
    """Penalises rewards of molecules whose scaffold bucket is full.

    A molecule scoring at least ``min_score`` joins its scaffold's bucket
    (once per canonical key). The first ``bucket_size`` members of a bucket
    keep their reward; later ones get it multiplied by ``penalty``. The oracle's scores are untouched: the filter
    only shapes the learning signal.

    Args:
        config: The settings (``kind="off"`` makes the filter a no-op).
    """

    def __init__(self, config: DiversityFilterConfig | None = None):
        self.config = config or DiversityFilterConfig()
        self.buckets: dict[str, dict[str, int]] = {}  # scaffold -> key -> arrival rank
        self.seen: set[str] = set()
        self.last_full: set[str] = set()  # scaffolds whose bucket penalised a molecule in the last apply()

    @property
    def enabled(self) -> bool:
        return self.config.kind != "off"

    def apply(self, mols: Sequence, keys: Sequence[str | None], scores: np.ndarray) -> np.ndarray:
        """Penalised rewards for ``scores`` (NaN stays NaN), filling buckets.

        Args:
            mols: RDKit molecules (None for invalid ones).
            keys: Their canonical keys (None for invalid ones).
            scores: Oracle scores ``[N]``.

        Returns:
            Rewards ``[N]``.
        """
        rewards = np.array(scores, dtype=float, copy=True)
        self.last_full = set()
        if not self.enabled:
            return rewards
        c = self.config
        repeats = [key is not None and key in self.seen for key in keys]
        for i, (mol, key) in enumerate(zip(mols, keys)):
            if c.penalize_repeats and repeats[i] and np.isfinite(rewards[i]):
                rewards[i] *= c.penalty
                continue
            if mol is None or not np.isfinite(rewards[i]) or rewards[i] < c.min_score:
                continue
            scaffold = scaffold_key(mol, c.kind == "generic")
            bucket = self.buckets.setdefault(scaffold, {})
            rank = bucket.setdefault(key, len(bucket))
            if rank >= c.bucket_size:
                rewards[i] *= c.penalty
                self.last_full.add(scaffold)
        self.seen.update(k for k in keys if k is not None)
        return rewards

    def keys_of(self, scaffolds: set[str]) -> set[str]:
        """Canonical keys of every molecule bucketed under ``scaffolds``.

        Args:
            scaffolds: Scaffold keys (e.g. :attr:`last_full`).

        Returns:
            The molecules' canonical keys.
        """
        return {key for scaffold in scaffolds for key in self.buckets.get(scaffold, {})}

    def summary(self) -> dict[str, int]:
        """Number of scaffolds seen and of full buckets."""
        return {"scaffolds": len(self.buckets), "full_buckets": sum(len(b) >= self.config.bucket_size for b in self.buckets.values())}
