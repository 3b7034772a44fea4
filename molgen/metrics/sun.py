"""S.U.N. rate of generated crystals: stable, unique and novel (MatterGen's headline).

Each generated structure is checked for validity, relaxed with the
interatomic potential (CHGNet) and placed against a convex hull of known
phases under the same potential (:class:`molgen.physics.hull.ConvexHull`):

* **stable**: energy above hull <= ``threshold`` (0.1 eV/atom by default, as
  MatterGen; 0.0 for the strict "on or below the hull");
* **unique**: the first of its group of matching relaxed structures
  (StructureMatcher) within the generated set;
* **novel**: matches no training structure (matching within equal reduced
  formulas);
* **S.U.N.**: all three; the rate is over *all* generated samples, so
  invalid structures and failed relaxations count against it.

It also gives the RMSD between each generated structure and its relaxed
form (MatterGen's second headline: how close to a local minimum the
generator lands), in Angstrom.

A relaxation costs seconds per structure on a CPU core, so for large sets
stability can be *estimated*: relax a seeded simple random sample of the
valid structures (``sampled``), judge uniqueness and novelty on the
generated structures of the whole set, and report the stable and S.U.N.
rates as ``valid rate x share in the sample`` with a 95 % Wilson interval.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from molgen.domains.crystal.matching import MatcherSettings, formula_key, group_structures


def relaxation_rmsd(generated: Any, relaxed: Any) -> float | None:
    """RMS displacement (A) between a structure and its relaxed form.

    StructureMatcher's normalised RMS (loose tolerances, so a large
    relaxation still maps site to site) times the cube root of the relaxed
    volume per atom; None when the two no longer match.
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher(ltol=0.5, stol=0.5, angle_tol=10, primitive_cell=False, scale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rms = matcher.get_rms_dist(generated, relaxed)
    if rms is None:
        return None
    return float(rms[0]) * (relaxed.volume / len(relaxed)) ** (1 / 3)


def _novel_flags(structures: Sequence[Any], training: Sequence[Any], settings: MatcherSettings) -> list[bool]:
    by_formula: dict[str, list[Any]] = {}
    for s in training:
        by_formula.setdefault(formula_key(s), []).append(s)
    matcher = settings.matcher()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [not any(matcher.fit(s, t) for t in by_formula.get(formula_key(s), [])) for s in structures]


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (by default) Wilson score interval of a binomial proportion.

    Args:
        successes: Successes.
        trials: Trials (0 gives ``(0, 1)``).
        z: Normal quantile.

    Returns:
        ``(low, high)``.
    """
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def sun_report(
    structures: Sequence[Any | None],
    relaxations: Sequence[dict[str, Any] | None],
    hull,
    training: Sequence[Any],
    *,
    threshold: float = 0.1,
    matcher: MatcherSettings = MatcherSettings(),
    progress: Callable[[str], None] | None = None,
    sampled: Sequence[int] | None = None,
) -> dict[str, Any]:
    """S.U.N. figures of a generated set.

    Args:
        structures: Generated structures in sampling order (None: did not
            parse or not valid; counted as failures).
        relaxations: For each, the :func:`~molgen.physics.relaxation.relax_structure`
            result (None where not relaxed).
        hull: :class:`~molgen.physics.hull.ConvexHull` under the relaxation's potential.
        training: Training structures (novelty).
        threshold: eV/atom above hull still called stable.
        matcher: Uniqueness and novelty matching.
        progress: Called with a short message per stage.
        sampled: None: every valid structure was relaxed (uniqueness and
            novelty of the relaxed structures, as MatterGen). Else the
            positions of the seeded random sample of valid structures that
            were relaxed: uniqueness and novelty are judged on the generated
            structures of the whole set, and the stable and S.U.N. rates are
            estimates (valid rate x share in the sample, with 95 % intervals);
            a sampled structure counts as S.U.N. only if it is still novel
            after relaxation.

    Returns:
        ``{"samples", "valid", "relaxed", "stable", "unique", "novel", "sun",
        ..._rate, "e_above_hull": {mean, median, ...}, "rmsd": {...},
        "relaxation_status": {...}, "rows": [per-sample dicts]}``; rates are
        over all samples. With ``sampled``, ``stable`` and ``sun`` count the
        sample only and ``stability_sample`` holds the estimate's details.
    """
    from pymatgen.core import Structure

    n = len(structures)
    if n == 0:
        raise ValueError("no structures")
    if sampled is not None:
        sampled = sorted(set(int(i) for i in sampled))
        if not sampled or any(i < 0 or i >= n or structures[i] is None for i in sampled):
            raise ValueError("sampled must name valid structures of the set")
    rows: list[dict[str, Any]] = []
    statuses: dict[str, int] = {}
    final: list[Any | None] = []
    for s, r in zip(structures, relaxations):
        row: dict[str, Any] = {"valid": s is not None, "status": None, "e_above_hull": None, "rmsd": None,
                               "formula": s.composition.reduced_formula if s is not None else None,
                               "n_elements": len(s.composition.elements) if s is not None else None}
        relaxed = None
        if s is not None and r is not None:
            row["status"] = r.get("status")
            statuses[r.get("status")] = statuses.get(r.get("status"), 0) + 1
            if r.get("final_structure") and r.get("energy_per_atom") is not None and r.get("status") in ("ok", "unconverged"):
                relaxed = Structure.from_dict(r["final_structure"])
                row["e_above_hull"] = hull.e_above_hull(relaxed.composition, r["energy_per_atom"])
                row["rmsd"] = relaxation_rmsd(s, relaxed)
        final.append(relaxed)
        rows.append(row)
    if progress:
        progress("uniqueness")
    # Uniqueness and novelty: of the relaxed structures when all were relaxed, else of the generated ones.
    judged = final if sampled is None else list(structures)
    sampled_set = set(sampled or ())
    kept = [i for i, s in enumerate(judged) if s is not None]
    labels = group_structures([judged[i] for i in kept], matcher)
    first = {}
    for position, label in enumerate(labels):
        first.setdefault(label, kept[position])
    unique = set(first.values())
    if progress:
        progress("novelty")
    novel_flags = _novel_flags([judged[i] for i in kept], training, matcher)
    novel = {i for i, flag in zip(kept, novel_flags) if flag}
    if sampled is not None:
        # A generated structure can relax onto a known one (an elemental polymorph onto the
        # known metal): in the sample, novel must hold after relaxation too.
        relaxed_in_sample = [i for i in sampled if final[i] is not None]
        relaxed_flags = _novel_flags([final[i] for i in relaxed_in_sample], training, matcher)
        still_novel = {i for i, flag in zip(relaxed_in_sample, relaxed_flags) if flag}
        for i in sampled:
            rows[i]["novel_after_relaxation"] = i in still_novel
    for i, row in enumerate(rows):
        e = row["e_above_hull"]
        row["stable"] = e is not None and e <= threshold + 1e-9  # threshold 0: on or below the hull
        row["unique"] = i in unique
        row["novel"] = i in novel
        row["sun"] = row["stable"] and row["unique"] and row["novel"] and row.get("novel_after_relaxation", True)
        if sampled is not None and row["valid"] and i not in sampled_set:
            row["stable"] = row["sun"] = None  # not relaxed: unknown, outside the estimate
    counts = {key: sum(bool(r[key]) for r in rows) for key in ("valid", "stable", "unique", "novel", "sun")}
    energies = np.array([r["e_above_hull"] for r in rows if r["e_above_hull"] is not None])
    rmsds = np.array([r["rmsd"] for r in rows if r["rmsd"] is not None])

    def summary(values: np.ndarray) -> dict[str, float | int | None]:
        if not len(values):
            return {"n": 0, "mean": None, "median": None}
        return {"n": int(len(values)), "mean": float(values.mean()), "median": float(np.median(values)),
                "p10": float(np.percentile(values, 10)), "p90": float(np.percentile(values, 90))}

    relaxed_positions = kept if sampled is None else sampled
    report: dict[str, Any] = {"samples": n, "threshold_ev_per_atom": threshold, "relaxed": len(relaxed_positions), **counts}
    report.update({f"{key}_rate": counts[key] / n for key in counts})
    report["stable_unique_novel_of_relaxed"] = counts["sun"] / len(relaxed_positions) if relaxed_positions else math.nan
    report["e_above_hull"] = summary(energies)
    on_hull = float((energies <= 0).sum())
    if sampled is None:
        report["on_hull_rate"] = on_hull / n
    else:
        # Unbiased for a simple random sample of the valid structures: rate = P(valid) * P(x | valid).
        valid_rate, k = counts["valid"] / n, len(sampled)
        estimate = {"relaxed_of_valid": k, "valid": counts["valid"], "design": "simple random sample of the valid structures"}
        for key in ("stable", "sun"):
            low, high = wilson_interval(counts[key], k)
            report[f"{key}_rate"] = valid_rate * counts[key] / k
            estimate[f"{key}_rate_ci95"] = [valid_rate * low, valid_rate * high]
        report["on_hull_rate"] = valid_rate * on_hull / k
        estimate["novel_after_relaxation_of_relaxed"] = sum(bool(rows[i].get("novel_after_relaxation")) for i in sampled) / k
        report["stability_sample"] = estimate
    report["rmsd_angstrom"] = summary(rmsds)
    report["relaxation_status"] = statuses
    # A hull of binary/ternary phases is sparse for quaternaries: report S.U.N. per arity.
    by_arity: dict[int, dict[str, int]] = {}
    in_sample = set(range(n)) if sampled is None else sampled_set
    for i, row in enumerate(rows):
        if row["n_elements"] is not None:
            entry = by_arity.setdefault(row["n_elements"], {"samples": 0, "relaxed": 0, "stable": 0, "sun": 0})
            entry["samples"] += 1
            entry["relaxed"] += int(i in in_sample)
            entry["stable"] += int(bool(row["stable"]))
            entry["sun"] += int(bool(row["sun"]))
    report["by_number_of_elements"] = {str(k): by_arity[k] for k in sorted(by_arity)}
    report["rows"] = rows
    return report
