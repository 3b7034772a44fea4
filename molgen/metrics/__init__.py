"""Distribution-learning metrics. Molecules: MOSES and GuacaMol
(:func:`evaluate_molecules` for the whole report, or each metric on its own)."""

from molgen.metrics.features import FeatureOptions
from molgen.metrics.molecules import (
    GuacamolProtocol,
    MetricUnavailable,
    fcd,
    fcd_score,
    filters_fraction,
    fragment_similarity,
    internal_diversity,
    kl_score,
    novelty,
    property_distance,
    scaffold_similarity,
    snn,
    unique_at,
    validity,
)
from molgen.metrics.molset import MoleculeSet
from molgen.metrics.report import MetricReport, evaluate_molecules, metric_names

__all__ = [
    "FeatureOptions",
    "GuacamolProtocol",
    "MetricReport",
    "MetricUnavailable",
    "MoleculeSet",
    "evaluate_molecules",
    "fcd",
    "fcd_score",
    "filters_fraction",
    "fragment_similarity",
    "internal_diversity",
    "kl_score",
    "metric_names",
    "novelty",
    "property_distance",
    "scaffold_similarity",
    "snn",
    "unique_at",
    "validity",
]
