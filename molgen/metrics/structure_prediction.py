"""Crystal structure prediction metrics, as CDVAE and DiffCSP report them.

For each target (a test crystal) a method proposes ``k`` structures of the
target's composition. A proposal matches when it is structurally valid (no
two atoms closer than the validity distance) and pymatgen's
``StructureMatcher(stol=0.5, angle_tol=10, ltol=0.3)`` maps it onto the
target; its error is the matcher's RMS displacement normalised by
``(V / n)^(1/3)``. Match rate @k: the fraction of targets with a match among
their first ``k`` proposals; RMSE @k: the mean, over matched targets, of the
smallest RMS among those proposals.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import Sequence

import numpy as np
from pymatgen.core import Structure

from molgen.domains.crystal.matching import MatcherSettings
from molgen.domains.crystal.validity import ValidityRules, structure_is_valid
from molgen.metrics.parallel import run_chunks

#: The tolerances of the CSP literature (CDVAE, DiffCSP).
CSP_MATCHER = MatcherSettings(ltol=0.3, stol=0.5, angle_tol=10.0)


def match_rms(proposal: Structure | None, target: Structure, settings: MatcherSettings = CSP_MATCHER,
              rules: ValidityRules = ValidityRules()) -> float | None:
    """Normalised RMS displacement of ``proposal`` onto ``target``, or None
    (no proposal, invalid, or no match)."""
    if proposal is None or len(proposal) == 0 or not structure_is_valid(proposal, rules):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = settings.matcher().get_rms_dist(proposal, target)
        except (ValueError, np.linalg.LinAlgError):  # degenerate lattices
            return None
    return None if found is None else float(found[0])


def _rms_row(task) -> list[float | None]:
    proposals, target, settings = task
    return [match_rms(p, target, settings) for p in proposals]


def csp_report(proposals: Sequence[Sequence[Structure | None]], targets: Sequence[Structure], *,
               ks: Sequence[int] = (1, 20), settings: MatcherSettings = CSP_MATCHER, n_jobs: int = 1) -> dict:
    """Match rate and RMSE at each ``k``.

    Args:
        proposals: Per target, its proposals in order (at least ``max(ks)``
            for the largest ``k`` to mean what it says).
        targets: The true structures.
        ks: Numbers of proposals to score.
        settings: Matcher tolerances.
        n_jobs: Worker processes.

    Returns:
        ``{"targets", "matcher", "k<k>": {"match_rate", "rmse", "matched"}}``
        and ``rms``: per target, the RMS of each proposal (None: no match).
    """
    if len(proposals) != len(targets):
        raise ValueError(f"{len(proposals)} proposal lists for {len(targets)} targets")
    longest = max(ks)
    tasks = [(list(p)[:longest], t, settings) for p, t in zip(proposals, targets)]
    rms = list(run_chunks(_rms_row, tasks, n_jobs))
    report: dict = {"targets": len(targets), "matcher": asdict(settings)}
    for k in ks:
        best = [min((r for r in row[:k] if r is not None), default=None) for row in rms]
        found = [b for b in best if b is not None]
        report[f"k{k}"] = {"match_rate": len(found) / len(targets) if targets else 0.0,
                           "rmse": float(np.mean(found)) if found else None, "matched": len(found)}
    report["rms"] = rms
    return report
