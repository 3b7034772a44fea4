"""Per-molecule features that the molecule metrics share, computed once per
distinct molecule, in worker processes for the RDKit-bound parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import AllChem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgen.core.errors import ParseError
from molgen.domains.smiles import SmilesDomain
from molgen.metrics.filters import passes_moses_filters
from molgen.metrics.parallel import resolve_jobs, run_chunks
from molgen.metrics.similarity import morgan_bits
from molgen.properties.molecular import GUACAMOL_DESCRIPTORS, MOSES_PROPERTIES

#: Molecules per task sent to a worker process.
CHUNK_SIZE = 1000

#: What :func:`compute_features` can compute.
FEATURE_NAMES = ("fingerprints", "fragments", "scaffolds", "properties", "filters", "descriptors", "fingerprints_kl")


@dataclass(frozen=True)
class FeatureOptions:
    """Settings of the shared features.

    Attributes:
        radius: Morgan radius of the fingerprints (MOSES: 2).
        n_bits: Fingerprint length (MOSES: 1024).
        scaffold_min_rings: Scaffolds with fewer rings are left out of Scaf,
            as MOSES does (2); 0 keeps every non-empty scaffold.
        kl_radius: Morgan radius of GuacaMol's internal-similarity fingerprints.
        kl_n_bits: Their length (GuacaMol: 4096).
    """

    radius: int = 2
    n_bits: int = 1024
    scaffold_min_rings: int = 2
    kl_radius: int = 2
    kl_n_bits: int = 4096


_DOMAIN = SmilesDomain()


def _canonical_chunk(texts: Sequence[str]) -> list[str | None]:
    out: list[str | None] = []
    for text in texts:
        try:
            out.append(_DOMAIN.key(_DOMAIN.parse(text)))
        except ParseError:
            out.append(None)
    return out


def brics_fragments(mol: Chem.Mol) -> list[str]:
    """SMILES of the fragments left after cutting every BRICS bond."""
    return Chem.MolToSmiles(AllChem.FragmentOnBRICSBonds(mol)).split(".")


def murcko_scaffold(mol: Chem.Mol, min_rings: int = 2) -> str | None:
    """Canonical SMILES of the Bemis-Murcko scaffold, or None when it has fewer than ``min_rings`` rings."""
    scaffold = MurckoScaffold.GetScaffoldForMol(mol)
    text = Chem.MolToSmiles(scaffold)
    if not text or scaffold.GetRingInfo().NumRings() < min_rings:
        return None
    return text


def _safe(function: Callable, mol: Chem.Mol, default):
    # One molecule on which RDKit fails must not sink a whole evaluation.
    try:
        return function(mol)
    except Exception:
        return default


def _feature_chunk(args: tuple[Sequence[str], tuple[str, ...], FeatureOptions]) -> dict[str, list]:
    texts, wanted, options = args
    out: dict[str, list] = {name: [] for name in wanted}
    empty_fp = np.zeros(options.n_bits // 8, dtype=np.uint8)
    empty_kl_fp = np.zeros(options.kl_n_bits // 8, dtype=np.uint8)
    with rdBase.BlockLogs():
        for text in texts:
            mol = Chem.MolFromSmiles(text)
            if "fingerprints" in wanted:
                out["fingerprints"].append(_safe(lambda m: morgan_bits(m, options.radius, options.n_bits), mol, empty_fp))
            if "fingerprints_kl" in wanted:
                out["fingerprints_kl"].append(
                    _safe(lambda m: morgan_bits(m, options.kl_radius, options.kl_n_bits), mol, empty_kl_fp)
                )
            if "fragments" in wanted:
                out["fragments"].append(_safe(brics_fragments, mol, []))
            if "scaffolds" in wanted:
                out["scaffolds"].append(_safe(lambda m: murcko_scaffold(m, options.scaffold_min_rings), mol, None))
            if "properties" in wanted:
                out["properties"].append([_safe(fn, mol, np.nan) for fn in MOSES_PROPERTIES.values()])
            if "filters" in wanted:
                out["filters"].append(_safe(passes_moses_filters, mol, False))
            if "descriptors" in wanted:
                out["descriptors"].append([_safe(fn, mol, np.nan) for fn in GUACAMOL_DESCRIPTORS.values()])
    return out


def canonicalize(texts: Sequence[str], n_jobs: int = 1) -> list[str | None]:
    """RDKit canonical SMILES of each text, None where it does not parse and sanitize.

    Args:
        texts: SMILES strings (invalid ones allowed).
        n_jobs: Worker processes.

    Returns:
        One entry per text.
    """
    tasks = [texts[i : i + CHUNK_SIZE] for i in range(0, len(texts), CHUNK_SIZE)]
    return [c for chunk in run_chunks(_canonical_chunk, tasks, resolve_jobs(n_jobs)) for c in chunk]


def compute_features(
    canonical: Sequence[str], wanted: Iterable[str], options: FeatureOptions = FeatureOptions(), n_jobs: int = 1
) -> dict[str, object]:
    """Compute the named features of valid canonical SMILES.

    Args:
        canonical: Valid canonical SMILES (distinct ones, ideally).
        wanted: Names from :data:`FEATURE_NAMES`.
        options: Fingerprint and scaffold settings.
        n_jobs: Worker processes.

    Returns:
        ``fingerprints``/``fingerprints_kl``: packed ``uint8`` matrices;
        ``properties``: ``(n, 4)`` logP, SA, QED, weight; ``descriptors``:
        ``(n, 9)`` GuacaMol descriptors; ``filters``: bool array;
        ``fragments``: per-molecule fragment lists; ``scaffolds``: per-molecule
        scaffold or None. Failed values are NaN / empty / None.
    """
    wanted = tuple(name for name in FEATURE_NAMES if name in set(wanted))
    tasks = [(canonical[i : i + CHUNK_SIZE], wanted, options) for i in range(0, len(canonical), CHUNK_SIZE)]
    merged: dict[str, list] = {name: [] for name in wanted}
    for chunk in run_chunks(_feature_chunk, tasks, resolve_jobs(n_jobs)):
        for name in wanted:
            merged[name].extend(chunk[name])
    out: dict[str, object] = dict(merged)
    widths = {"fingerprints": options.n_bits // 8, "fingerprints_kl": options.kl_n_bits // 8}
    for name, width in widths.items():
        if name in out:
            out[name] = np.array(merged[name], dtype=np.uint8).reshape(-1, width)
    if "properties" in out:
        out["properties"] = np.array(merged["properties"], dtype=np.float64).reshape(-1, len(MOSES_PROPERTIES))
    if "descriptors" in out:
        out["descriptors"] = np.array(merged["descriptors"], dtype=np.float64).reshape(-1, len(GUACAMOL_DESCRIPTORS))
    if "filters" in out:
        out["filters"] = np.array(merged["filters"], dtype=bool)
    return out
