"""Metrics of generated peptides: validity, uniqueness, novelty, diversity,
predicted antimicrobial activity and physicochemical distances to held-out
AMPs.

* ``valid``: fraction of entries that parse as canonical sequences within the
  domain's length bounds;
* ``unique``: distinct valid sequences / valid; ``novelty``: distinct valid
  sequences absent from the training set / distinct valid;
* ``diversity``: mean pairwise normalised Levenshtein distance over the
  distinct valid sequences (rapidfuzz; at most ``max_pairs_n`` of them, seeded);
  ``nn_identity_train``: mean over generated sequences of
  ``1 - min normalised distance`` to the training set;
* ``amp_fraction`` / ``amp_probability``: share with classifier probability
  >= 0.5 and the mean probability (:class:`AMPClassifier`, shipped weights);
* ``W1/<property>``: Wasserstein-1 distance of each property of
  :data:`PEPTIDE_PROPERTIES` between valid generated and reference sequences.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from molgen.core.errors import ParseError
from molgen.domains.protein import ProteinDomain
from molgen.metrics.report import MetricReport
from molgen.properties.peptides import PEPTIDE_PROPERTIES, peptide_properties


def property_matrix(seqs: Sequence[str]) -> np.ndarray:
    """``[n, len(PEPTIDE_PROPERTIES)]`` property values (NaN where undefined)."""
    return np.array([[peptide_properties(s)[k] for k in PEPTIDE_PROPERTIES] for s in seqs]).reshape(len(seqs), len(PEPTIDE_PROPERTIES))


def diversity(seqs: Sequence[str], max_n: int = 2000, seed: int = 0) -> float:
    """Mean pairwise normalised Levenshtein distance (i != j)."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    seqs = list(seqs)
    if len(seqs) < 2:
        raise ValueError("diversity needs at least two sequences")
    if len(seqs) > max_n:
        rows = np.random.default_rng(seed).choice(len(seqs), max_n, replace=False)
        seqs = [seqs[i] for i in rows]
    d = cdist(seqs, seqs, scorer=Levenshtein.normalized_distance, dtype=np.float32, workers=1)
    n = len(seqs)
    return float((d.sum() - np.trace(d)) / (n * (n - 1)))


def nearest_identity(seqs: Sequence[str], reference: Sequence[str]) -> float:
    """Mean of ``1 - min normalised Levenshtein distance`` to ``reference``."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    d = cdist(list(seqs), list(reference), scorer=Levenshtein.normalized_distance, dtype=np.float32, workers=1)
    return float(np.mean(1.0 - d.min(1)))


def evaluate_peptides(
    generated: Sequence[str],
    reference: Sequence[str] | None = None,
    training: Sequence[str] | None = None,
    *,
    classifier=None,
    domain: ProteinDomain | None = None,
    max_pairs_n: int = 2000,
    seed: int = 0,
) -> MetricReport:
    """The peptide generation report.

    Args:
        generated: Generated sequences (invalid entries included).
        reference: Held-out AMPs for the property distances (None: skipped).
        training: Training sequences for novelty and identity (None: skipped).
        classifier: Object with ``predict_proba``; default: the shipped
            :class:`AMPClassifier`; ``False`` skips the AMP metrics.
        domain: Validity policy (default :class:`ProteinDomain`).
        max_pairs_n: Sequences drawn for the pairwise diversity.
        seed: Seed of that draw.

    Returns:
        The report.
    """
    domain = domain or ProteinDomain()
    start = time.perf_counter()
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    valid = []
    for text in generated:
        try:
            seq = domain.parse(text)
        except ParseError:
            continue
        if domain.is_valid(seq):
            valid.append(seq)
    n = len(generated)
    values["valid"] = len(valid) / n if n else None
    if not n:
        reasons["valid"] = "no generated sequences"
    distinct = list(dict.fromkeys(valid))
    none_valid = "no valid generated sequences"
    values["unique"] = len(distinct) / len(valid) if valid else None
    if training is not None and distinct:
        train_set = set(training)
        values["novelty"] = sum(s not in train_set for s in distinct) / len(distinct)
        values["nn_identity_train"] = nearest_identity(distinct, training)
    else:
        for k in ("novelty", "nn_identity_train"):
            values[k] = None
            reasons[k] = none_valid if not distinct else "no training set"
    if len(distinct) >= 2:
        values["diversity"] = diversity(distinct, max_pairs_n, seed)
    else:
        values["diversity"], reasons["diversity"] = None, "fewer than two distinct valid sequences"
    if classifier is not False and valid:
        if classifier is None:
            from molgen.predictors.peptides import AMPClassifier

            classifier = AMPClassifier.load()
        proba = classifier.predict_proba(valid)
        values["amp_fraction"] = float(np.mean(proba >= 0.5))
        values["amp_probability"] = float(np.mean(proba))
    else:
        for k in ("amp_fraction", "amp_probability"):
            values[k], reasons[k] = None, none_valid if not valid else "no classifier"
    if reference is not None and valid:
        gen_props, ref_props = property_matrix(valid), property_matrix(reference)
        for j, name in enumerate(PEPTIDE_PROPERTIES):
            a, b = gen_props[:, j], ref_props[:, j]
            a, b = a[np.isfinite(a)], b[np.isfinite(b)]
            values[f"W1/{name}"] = float(wasserstein_distance(a, b)) if len(a) and len(b) else None
    else:
        for name in PEPTIDE_PROPERTIES:
            values[f"W1/{name}"] = None
            reasons[f"W1/{name}"] = none_valid if not valid else "no reference set"
    for k, v in values.items():
        if v is None and k not in reasons:
            reasons[k] = none_valid
    meta = {"n_generated": n, "n_valid": len(valid), "n_distinct": len(distinct), "seed": seed,
            "domain": domain.to_config(), "seconds": round(time.perf_counter() - start, 2)}
    return MetricReport(values, reasons, meta)
