"""CDVAE-style metrics of generated crystals (Xie et al. 2022; DiffCSP and
MatterGen report the same set).

* validity: structural, compositional and both (:class:`ValidityRules`), over
  every generated entry (unparsable ones count invalid);
* COV-R / COV-P: a reference crystal is recalled (a generated one is precise)
  when the other set holds a crystal within ``struct_cutoff`` in CrystalNN
  structure-fingerprint distance *and* ``comp_cutoff`` in standardised Magpie
  composition-fingerprint distance. Fingerprints are matminer's
  ``CrystalNNFingerprint("ops")`` averaged over sites and
  ``ElementProperty("magpie")``; COV-P divides by the number of generated
  entries, as CDVAE does;
* Wasserstein-1 distances of density and of the number of elements between
  ``n_samples`` valid generated crystals (seeded) and the reference;
* uniqueness and novelty with the domain's "same" (reduced formula plus
  ``StructureMatcher``).

Composition fingerprints are standardised with a fixed mean and standard
deviation per Magpie feature, as CDVAE does with constants from its own data;
ours are measured on the mp20-biternary training split and ship in
``metrics/data/magpie_scaler.json`` (``benchmarks/make_magpie_scaler.py``
rebuilds them), so COV does not depend on which reference is scored.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from molgen.core.errors import ParseError
from molgen.domains.crystal import CrystalDomain
from molgen.domains.crystal.matching import (
    MatcherSettings,
    formula_key,
    group_structures,
)
from molgen.domains.crystal.validity import (
    ValidityRules,
    composition_is_valid,
    structure_is_valid,
)
from molgen.metrics.cache import StatsCache, content_hash, default_cache_root
from molgen.metrics.parallel import resolve_jobs, run_chunks
from molgen.metrics.report import MetricReport

STRUCT_FP_SIZE = 61
COMP_FP_SIZE = 132
#: Cells larger than this are not fingerprinted (CrystalNN is ~40 ms per site);
#: they still count in validity, and as not covered.
MAX_FINGERPRINT_SITES = 200


@dataclass(frozen=True)
class CoverageCutoffs:
    """Fingerprint-distance thresholds of COV-R / COV-P."""

    struct_cutoff: float
    comp_cutoff: float


#: CDVAE's cutoffs per data set.
COVERAGE_PRESETS: dict[str, CoverageCutoffs] = {
    "perov-5": CoverageCutoffs(0.2, 4.0),
    "carbon-24": CoverageCutoffs(0.2, 4.0),
    "mp-20": CoverageCutoffs(0.4, 10.0),
    "mp20-biternary": CoverageCutoffs(0.4, 10.0),
}

CRYSTAL_METRICS = (
    "struct_valid", "comp_valid", "valid", "COV-R", "COV-P", "wdist_density", "wdist_num_elems", "unique", "novelty",
)


def preset_for(source: str | None) -> CoverageCutoffs:
    """The coverage cutoffs of a data set name (``perov-5-test`` -> ``perov-5``);
    MP-20's for anything else."""
    if source:
        for name in sorted(COVERAGE_PRESETS, key=len, reverse=True):
            if source.startswith(name):
                return COVERAGE_PRESETS[name]
    return COVERAGE_PRESETS["mp-20"]


# -- fingerprints --------------------------------------------------------------
_FEATURIZERS = None


def _featurizers():
    global _FEATURIZERS
    if _FEATURIZERS is None:
        from matminer.featurizers.composition.composite import ElementProperty
        from matminer.featurizers.site.fingerprint import CrystalNNFingerprint

        _FEATURIZERS = (CrystalNNFingerprint.from_preset("ops"), ElementProperty.from_preset("magpie"))
    return _FEATURIZERS


# Densest packing of spheres: a crystal with less volume per atom than spheres
# of diameter ``min_distance`` need must have two atoms closer than that.
_PACKING_FRACTION = math.pi / (3 * math.sqrt(2))


def degenerate_cell(structure: Structure, rules: ValidityRules = ValidityRules()) -> bool:
    """Whether a cell is too degenerate to fingerprint: CDVAE would not build
    it (volume below ``min_volume``), or it is structurally invalid beyond
    doubt (a lattice vector shorter than ``min_distance``, so every atom
    overlaps its own image, or less volume per atom than the densest packing
    of such spheres allows). Their neighbour lists hold thousands of images:
    one such cell from an untrained model kept CrystalNN busy for minutes.

    Args:
        structure: The crystal.
        rules: Validity thresholds.

    Returns:
        True when the structure fingerprint should be skipped (NaN).
    """
    d = rules.min_distance
    volume = structure.volume
    if not math.isfinite(volume) or volume < rules.min_volume:
        return True
    if volume / len(structure) < (math.pi / 6) * d**3 / _PACKING_FRACTION:
        return True
    return min(structure.lattice.get_lll_reduced_lattice().abc) < d


def fingerprint(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    """CrystalNN structure fingerprint (mean over sites) and Magpie composition
    fingerprint of one crystal; NaN rows where a featurizer fails.

    Returns:
        ``(struct_fp [61], comp_fp [132])``.
    """
    struct_fp = np.full(STRUCT_FP_SIZE, np.nan)
    comp_fp = np.full(COMP_FP_SIZE, np.nan)
    if len(structure) > MAX_FINGERPRINT_SITES:
        return struct_fp, comp_fp
    site_fp, comp_featurizer = _featurizers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not degenerate_cell(structure):  # NaN: not covered, as a CrystalNN failure
            try:
                struct_fp = np.mean([site_fp.featurize(structure, i) for i in range(len(structure))], axis=0)
            except Exception:  # CrystalNN fails on some unphysical cells: not covered
                pass
        try:
            comp_fp = np.asarray(comp_featurizer.featurize(structure.composition), dtype=float)
        except Exception:
            pass
    return struct_fp, comp_fp


def _fingerprint_chunk(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    domain = CrystalDomain()
    structs, comps = [], []
    for text in texts:
        try:
            s, c = fingerprint(domain.parse(text))
        except ParseError:
            s, c = np.full(STRUCT_FP_SIZE, np.nan), np.full(COMP_FP_SIZE, np.nan)
        structs.append(s)
        comps.append(c)
    return np.array(structs).reshape(-1, STRUCT_FP_SIZE), np.array(comps).reshape(-1, COMP_FP_SIZE)


def fingerprints(texts: Sequence[str], n_jobs: int | None = 1, chunk: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints of many crystal texts (CIF or compact), computed once per
    distinct text, over ``n_jobs`` processes.

    Returns:
        ``(struct_fps [n, 61], comp_fps [n, 132])`` with NaN rows for failures.
    """
    distinct = list(dict.fromkeys(texts))
    index = {t: i for i, t in enumerate(distinct)}
    tasks = [distinct[i : i + chunk] for i in range(0, len(distinct), chunk)]
    parts = list(run_chunks(_fingerprint_chunk, tasks, resolve_jobs(n_jobs)))
    struct = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, STRUCT_FP_SIZE))
    comp = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, COMP_FP_SIZE))
    rows = [index[t] for t in texts]
    return struct[rows], comp[rows]


@dataclass(frozen=True)
class CompositionScaler:
    """Standardisation of composition fingerprints (NaN -> 0 after scaling)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def default(cls) -> "CompositionScaler":
        """The shipped scaler (Magpie statistics of mp20-biternary train)."""
        import json
        from importlib.resources import files

        data = json.loads(files("molgen.metrics").joinpath("data/magpie_scaler.json").read_text())
        mean = np.nan_to_num(np.array(data["mean"], dtype=float))
        std = np.array(data["std"], dtype=float)
        return cls(mean, np.where(np.isfinite(std) & (std > 0), std, 1.0))

    @classmethod
    def fit(cls, comp_fps: np.ndarray) -> "CompositionScaler":
        """Mean and standard deviation per feature, ignoring NaN rows."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(comp_fps, axis=0)
            std = np.nanstd(comp_fps, axis=0)
        mean = np.nan_to_num(mean)
        std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        return cls(mean, std)

    def transform(self, comp_fps: np.ndarray) -> np.ndarray:
        """Scaled fingerprints."""
        return np.nan_to_num((comp_fps - self.mean) / self.std)


def coverage(
    gen_struct: np.ndarray,
    gen_comp: np.ndarray,
    ref_struct: np.ndarray,
    ref_comp: np.ndarray,
    cutoffs: CoverageCutoffs,
    n_generated: int | None = None,
    details: dict | None = None,
) -> dict[str, float]:
    """COV-R, COV-P and the mean matched distances (AMSD/AMCD) of CDVAE.

    Rows with a NaN fingerprint are left out (never covered / never precise);
    composition fingerprints must already be scaled.

    Args:
        gen_struct, gen_comp: Generated fingerprints.
        ref_struct, ref_comp: Reference fingerprints.
        cutoffs: Distance thresholds.
        n_generated: Denominator of COV-P (default: number of generated rows).
        details: When given, receives ``uncovered_reference`` (indices of the
            reference rows no generated row recalls), to see what is missed.

    Returns:
        ``{"COV-R", "COV-P", "AMSD-R", "AMSD-P", "AMCD-R", "AMCD-P"}``.
    """
    n_generated = len(gen_struct) if n_generated is None else n_generated
    gen_ok = ~np.isnan(gen_struct).any(1)
    ref_ok = ~np.isnan(ref_struct).any(1)
    if not gen_ok.any() or not ref_ok.any():
        return {"COV-R": 0.0, "COV-P": 0.0}
    struct_d = cdist(gen_struct[gen_ok], ref_struct[ref_ok])
    comp_d = cdist(gen_comp[gen_ok], ref_comp[ref_ok])
    recall_struct, recall_comp = struct_d.min(0), comp_d.min(0)
    precision_struct, precision_comp = struct_d.min(1), comp_d.min(1)
    recalled = (recall_struct <= cutoffs.struct_cutoff) & (recall_comp <= cutoffs.comp_cutoff)
    precise = (precision_struct <= cutoffs.struct_cutoff) & (precision_comp <= cutoffs.comp_cutoff)
    if details is not None:
        details["uncovered_reference"] = np.flatnonzero(ref_ok)[~recalled].tolist() + np.flatnonzero(~ref_ok).tolist()
    return {
        "COV-R": float(recalled.sum() / len(ref_struct)),
        "COV-P": float(precise.sum() / max(n_generated, 1)),
        "AMSD-R": float(recall_struct.mean()),
        "AMSD-P": float(precision_struct.mean()),
        "AMCD-R": float(recall_comp.mean()),
        "AMCD-P": float(precision_comp.mean()),
    }


# -- per-structure facts -------------------------------------------------------
def _facts_chunk(args) -> list[tuple]:
    texts, rules = args
    domain = CrystalDomain()
    out = []
    for text in texts:
        try:
            s = domain.parse(text)
        except ParseError:
            out.append((False, False, None, None, None))
            continue
        struct_ok = structure_is_valid(s, rules)
        comp_ok = composition_is_valid(s.composition, rules)
        out.append((struct_ok, comp_ok, float(s.density), len(s.composition.elements), domain.format(s)))
    return out


def structure_facts(texts: Sequence[str], rules: ValidityRules, n_jobs: int | None = 1, chunk: int = 200) -> list[tuple]:
    """``(struct_valid, comp_valid, density, n_elements, compact_text)`` per text
    (``compact_text`` None when the text does not parse)."""
    tasks = [(list(texts[i : i + chunk]), rules) for i in range(0, len(texts), chunk)]
    return [row for part in run_chunks(_facts_chunk, tasks, resolve_jobs(n_jobs)) for row in part]


def _structures(items: Sequence[str] | Sequence[Structure]) -> list[Structure]:
    domain = CrystalDomain()
    return [t if isinstance(t, Structure) else domain.parse(t) for t in items]


def uniqueness(texts: Sequence[str] | Sequence[Structure], matcher: MatcherSettings = MatcherSettings()) -> float:
    """Fraction of crystals (texts or structures) that match no earlier crystal of the list."""
    if not texts:
        raise ValueError("no crystals")
    labels = group_structures(_structures(texts), matcher)
    return len(set(labels)) / len(labels)


def novelty(
    texts: Sequence[str] | Sequence[Structure], training: Sequence[str], matcher: MatcherSettings = MatcherSettings()
) -> float:
    """Fraction of crystals (texts or structures) that match no training crystal
    (matching runs only within equal reduced formulas)."""
    if not texts:
        raise ValueError("no crystals")
    train_by_formula: dict[str, list[Structure]] = {}
    for s in _structures(training):
        train_by_formula.setdefault(formula_key(s), []).append(s)
    m = matcher.matcher()
    novel = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in _structures(texts):
            if not any(m.fit(s, t) for t in train_by_formula.get(formula_key(s), [])):
                novel += 1
    return novel / len(texts)


# -- the report -------------------------------------------------------------------
@dataclass(frozen=True)
class CrystalEvalOptions:
    """Settings of :func:`evaluate_crystals`.

    Attributes:
        cutoffs: COV thresholds (see :data:`COVERAGE_PRESETS`).
        n_samples: Valid generated crystals drawn (seeded) for the density and
            element-count distances, as CDVAE's 1,000 (None: all valid ones).
        seed: Seed of that draw.
        rules: Validity rules.
        matcher: Matching tolerances for uniqueness and novelty.
        scaler: ``"default"`` (shipped Magpie statistics) or ``"reference"``
            (fitted on the reference set).
    """

    cutoffs: CoverageCutoffs = COVERAGE_PRESETS["mp-20"]
    n_samples: int | None = 1000
    seed: int = 0
    rules: ValidityRules = ValidityRules()
    matcher: MatcherSettings = MatcherSettings()
    scaler: str = "default"


def evaluate_crystals(
    generated: Sequence[str],
    reference: Sequence[str] | None = None,
    training: Sequence[str] | None = None,
    *,
    options: CrystalEvalOptions = CrystalEvalOptions(),
    n_jobs: int | None = 1,
    cache_root: Path | None | str = "default",
) -> MetricReport:
    """The CDVAE metric set for generated crystals.

    Args:
        generated: Generated crystals as text (CIF or compact; unparsable
            entries count as invalid).
        reference: Reference crystals (the test split); None skips coverage
            and distances.
        training: Training crystals for novelty; None skips it.
        options: Cutoffs, sampling and matching settings.
        n_jobs: Worker processes for fingerprints and validity.
        cache_root: Where reference fingerprints are cached (None: no cache).

    Returns:
        The report (keys :data:`CRYSTAL_METRICS` plus AMSD/AMCD).
    """
    if cache_root == "default":
        cache_root = default_cache_root()
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    facts = structure_facts(generated, options.rules, n_jobs)
    n = len(facts)
    if n == 0:
        reasons.update({k: "no generated crystals" for k in CRYSTAL_METRICS})
        return MetricReport({k: None for k in CRYSTAL_METRICS}, reasons, {"n_generated": 0})
    struct_ok = np.array([f[0] for f in facts])
    comp_ok = np.array([f[1] for f in facts])
    valid = struct_ok & comp_ok
    values["struct_valid"] = float(struct_ok.mean())
    values["comp_valid"] = float(comp_ok.mean())
    values["valid"] = float(valid.mean())
    seconds["validity"] = time.perf_counter() - start
    valid_texts = [f[4] for f, ok in zip(facts, valid) if ok]
    rng = np.random.default_rng(options.seed)
    if options.n_samples is not None and len(valid_texts) > options.n_samples:
        sample_rows = np.sort(rng.choice(len(valid_texts), options.n_samples, replace=False))
    else:
        sample_rows = np.arange(len(valid_texts))
    valid_rows = np.flatnonzero(valid)[sample_rows]

    meta = {
        "n_generated": n,
        "n_valid": int(valid.sum()),
        "n_property_samples": int(len(valid_rows)),
        "options": {
            "cutoffs": asdict(options.cutoffs),
            "n_samples": options.n_samples,
            "seed": options.seed,
            "rules": options.rules.to_dict(),
            "matcher": options.matcher.to_dict(),
            "scaler": options.scaler,
        },
    }
    if reference is None or len(reference) == 0:
        for k in ("COV-R", "COV-P", "wdist_density", "wdist_num_elems"):
            values[k], reasons[k] = None, "no reference set"
    else:
        t = time.perf_counter()
        ref_hash = content_hash(reference)
        cache = StatsCache(Path(cache_root) if cache_root else None, ref_hash)
        ref = cache.arrays("crystal_fingerprints", lambda: _reference_arrays(reference, n_jobs))
        meta["reference"] = {"n": len(reference), "hash": ref_hash, "cache": str(cache.directory) if cache.directory else None}
        seconds["reference"] = time.perf_counter() - t
        t = time.perf_counter()
        gen_texts = [f[4] for f in facts if f[4] is not None]
        gen_struct = np.full((n, STRUCT_FP_SIZE), np.nan)
        gen_comp = np.full((n, COMP_FP_SIZE), np.nan)
        parsed = np.array([f[4] is not None for f in facts])
        if gen_texts:
            gen_struct[parsed], gen_comp[parsed] = fingerprints(gen_texts, n_jobs)
        scaler = CompositionScaler.fit(ref["comp"]) if options.scaler == "reference" else CompositionScaler.default()
        missed: dict = {}
        cov = coverage(gen_struct, scaler.transform(gen_comp), ref["struct"], scaler.transform(ref["comp"]), options.cutoffs, n, missed)
        values.update(cov)
        meta["reference"]["uncovered"] = missed.get("uncovered_reference", list(range(len(reference))))
        seconds["coverage"] = time.perf_counter() - t
        if len(valid_rows):
            values["wdist_density"] = float(wasserstein_distance([facts[i][2] for i in valid_rows], ref["density"]))
            values["wdist_num_elems"] = float(wasserstein_distance([facts[i][3] for i in valid_rows], ref["n_elements"]))
        else:
            for k in ("wdist_density", "wdist_num_elems"):
                values[k], reasons[k] = None, "no valid generated crystals"
    t = time.perf_counter()
    valid_structures = _structures(valid_texts)  # parsed once for uniqueness and novelty
    if valid_texts:
        values["unique"] = uniqueness(valid_structures, options.matcher)
    else:
        values["unique"], reasons["unique"] = None, "no valid generated crystals"
    seconds["unique"] = time.perf_counter() - t
    if training is None:
        values["novelty"], reasons["novelty"] = None, "no training set"
    elif valid_texts:
        t = time.perf_counter()
        values["novelty"] = novelty(valid_structures, training, options.matcher)
        seconds["novelty"] = time.perf_counter() - t
    else:
        values["novelty"], reasons["novelty"] = None, "no valid generated crystals"
    meta["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    meta["seconds"]["total"] = round(time.perf_counter() - start, 2)
    ordered = {k: values.get(k) for k in CRYSTAL_METRICS}
    ordered.update({k: v for k, v in values.items() if k not in ordered})
    return MetricReport(ordered, reasons, meta)


def _reference_arrays(reference: Sequence[str], n_jobs: int | None) -> dict[str, np.ndarray]:
    struct, comp = fingerprints(reference, n_jobs)
    domain = CrystalDomain()
    structures = [domain.parse(t) for t in reference]
    return {
        "struct": struct,
        "comp": comp,
        "density": np.array([s.density for s in structures], dtype=float),
        "n_elements": np.array([len(s.composition.elements) for s in structures], dtype=float),
    }
