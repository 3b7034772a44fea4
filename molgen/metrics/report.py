"""One call that computes the whole MOSES + GuacaMol report, sharing every
statistic between metrics and reporting what could not be computed."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from molgen.metrics import molecules as m
from molgen.metrics.cache import default_cache_root
from molgen.metrics.features import FeatureOptions
from molgen.metrics.molset import MoleculeSet

TRAINING_METRICS = ("Novelty",)


def metric_names(k: Sequence[int] = (1000, 10000)) -> list[str]:
    """All metric keys, in report order, for the given unique@k values."""
    return (
        ["valid", *[f"unique@{n}" for n in k]]
        + ["FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "IntDiv2", "Filters", "Novelty"]
        + ["logP", "SA", "QED", "weight", "KL_score", "FCD_score"]
    )


@dataclass
class MetricReport:
    """Result of :func:`evaluate_molecules`.

    Attributes:
        values: Metric name -> value, None where it could not be computed.
        reasons: Metric name -> why it is None.
        metadata: Set sizes, hashes, settings, versions, timings, cache hits.
    """

    values: dict[str, float | None]
    reasons: dict[str, str] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {"metrics": self.values, "unavailable": self.reasons, "metadata": self.metadata}

    def format_table(self) -> str:
        """Two-column text table; unavailable metrics show their reason."""
        width = max(len(name) for name in self.values) if self.values else 6
        lines = [f"{'metric':<{width}}  value", f"{'-' * width}  -----"]
        for name, value in self.values.items():
            shown = f"{value:.4f}" if value is not None else f"n/a ({self.reasons.get(name, 'unavailable')})"
            lines.append(f"{name:<{width}}  {shown}")
        return "\n".join(lines)


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import rdkit
    import scipy

    from molgen import __version__

    versions = {"molgen": __version__, "rdkit": rdkit.__version__, "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__}
    try:
        versions["fcd"] = md.version("fcd")
    except md.PackageNotFoundError:
        versions["fcd"] = "missing"
    return versions


def evaluate_molecules(
    generated: Sequence[str],
    reference: Sequence[str] | None = None,
    training: Sequence[str] | None = None,
    *,
    metrics: Sequence[str] | None = None,
    k: Sequence[int] = (1000, 10000),
    n_jobs: int = 1,
    cache_root: Path | None | str = "default",
    options: FeatureOptions = FeatureOptions(),
    protocol: m.GuacamolProtocol = m.GuacamolProtocol(),
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricReport:
    """Compute MOSES and GuacaMol distribution-learning metrics.

    Args:
        generated: Generated SMILES in sampling order, invalid ones included.
        reference: Reference SMILES (MOSES: the test set); metrics against it
            are None without one.
        training: Training SMILES, for novelty.
        metrics: Names to compute (default: all of :func:`metric_names`).
        k: The ``unique@k`` sizes.
        n_jobs: Worker processes for RDKit work (0: all cores).
        cache_root: Cache of reference/training statistics; ``"default"`` is
            ``MOLGEN_HOME/metrics``, None disables it.
        options: Fingerprint and scaffold settings.
        protocol: GuacaMol's subset sizes and seed for KL_score and FCD_score.
        device: Where ChemNet runs.
        progress: Show a bar over the metrics (on a terminal).

    Returns:
        The report.

    Raises:
        ValueError: an unknown metric name.
    """
    started = time.perf_counter()
    known = metric_names(k)
    wanted = list(known) if metrics is None else list(metrics)
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(known)}")
    root = default_cache_root() if cache_root == "default" else (None if cache_root is None else Path(cache_root))
    gen = MoleculeSet(generated, options=options, n_jobs=n_jobs, device=device)
    ref = None if reference is None else MoleculeSet(reference, options=options, n_jobs=n_jobs, cache_root=root, device=device)
    train = None if training is None else MoleculeSet(training, options=options, n_jobs=n_jobs, cache_root=root)

    computations: dict[str, Callable[[], float]] = {"valid": lambda: m.validity(gen)}
    for n in k:
        computations[f"unique@{n}"] = lambda n=n: m.unique_at(gen, n)
    diversity: dict[int, float] = {}

    def intdiv(p: int) -> float:
        if not diversity:  # both powers from one pass over the similarity matrix
            powers = tuple(q for q, name in ((1, "IntDiv"), (2, "IntDiv2")) if name in wanted)
            diversity.update(m.internal_diversities(gen, powers))
        return diversity[p]

    computations.update(
        {
            "IntDiv": lambda: intdiv(1),
            "IntDiv2": lambda: intdiv(2),
            "Filters": lambda: m.filters_fraction(gen),
        }
    )
    if ref is not None:
        computations.update(
            {
                "FCD/Test": lambda: m.fcd(gen, ref),
                "SNN/Test": lambda: m.snn(gen, ref),
                "Frag/Test": lambda: m.fragment_similarity(gen, ref),
                "Scaf/Test": lambda: m.scaffold_similarity(gen, ref),
                "KL_score": lambda: m.kl_score(gen, ref, protocol),
                "FCD_score": lambda: m.fcd_score(gen, ref, protocol),
            }
        )
        for name in ("logP", "SA", "QED", "weight"):
            computations[name] = lambda name=name: m.property_distance(gen, ref, name)
    if train is not None:
        computations["Novelty"] = lambda: m.novelty(gen, train)

    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    seconds: dict[str, float] = {}
    from molgen.core.progress import progress_iter

    for name in progress_iter(wanted, desc="metrics", unit="metric", enabled=progress):
        tic = time.perf_counter()
        if name not in computations:
            values[name] = None
            reasons[name] = "no training set given" if name in TRAINING_METRICS else "no reference set given"
            continue
        try:
            value = float(computations[name]())
            if not math.isfinite(value):
                raise m.MetricUnavailable(f"the computation gave {value}")
            values[name] = value
        except m.MetricUnavailable as exc:
            values[name], reasons[name] = None, str(exc)
        seconds[name] = round(time.perf_counter() - tic, 3)

    metadata = {
        "n": len(gen),
        "n_valid": len(gen.valid_canonical),
        "n_unique": len(gen.unique),
        "generated_hash": gen.hash,
        "reference": None if ref is None else {"n": len(ref), "hash": ref.hash, "cache_hits": ref.cache.hits},
        "training": None if train is None else {"n": len(train), "hash": train.hash, "cache_hits": train.cache.hits},
        "seed": protocol.seed,
        "guacamol_samples": protocol.samples,
        "options": asdict(options),
        "n_jobs": n_jobs,
        "seconds": seconds,
        "total_seconds": round(time.perf_counter() - started, 3),
        "versions": _versions(),
    }
    return MetricReport(values, reasons, metadata)

