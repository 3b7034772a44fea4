"""Scaffold cross-validation: choose a model, and calibrate it on the
out-of-fold errors.

Random cross-validation flatters memorising models, because near-copies of a
test molecule sit in training. Here folds are built from whole Bemis-Murcko
scaffold groups, so every out-of-fold prediction is made on a scaffold its
model never saw: the situation a user is in. The same out-of-fold
predictions then serve twice: their RMSE ranks the candidate models, and
their residuals, spreads and similarities (to that fold's training rows)
calibrate the chosen model's uncertainty (:meth:`CalibratedPredictor.calibrate_from`)
before it is refitted on all rows ("cross-conformal" calibration: every row
is used for both fitting and calibration, none twice by one model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgen.core.errors import ConfigError, DataError
from molgen.predictors.calibrated import CalibratedPredictor
from molgen.predictors.domain import ApplicabilityDomain, LatentDomain

__all__ = ["CVResult", "combine_cv", "cross_validate", "fit_calibrated", "scaffold_folds", "select_model"]

#: ``seed -> unfitted predictor`` (a fresh model per fold).
Factory = Callable[[int], Any]


def _scaffold(mol: Chem.Mol) -> str:
    try:
        return Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol))
    except Exception:  # noqa: BLE001 -- RDKit rejects a few exotic valences; they form their own group
        return "?"


def scaffold_folds(mols: Sequence[Chem.Mol], folds: int, seed: int = 0) -> list[np.ndarray]:
    """Split rows into ``folds`` groups of whole scaffolds, of near-equal size.

    Scaffold groups are shuffled with the seed, then placed largest first
    into the currently smallest fold.

    Args:
        mols: RDKit molecules.
        folds: Number of folds (>= 2).
        seed: Seed of the group order.

    Returns:
        The held-out row positions of each fold (sorted).

    Raises:
        ConfigError: fewer than 2 folds, or fewer scaffold groups than folds.
    """
    if folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {folds}")
    groups: dict[str, list[int]] = {}
    for row, mol in enumerate(mols):
        groups.setdefault(_scaffold(mol), []).append(row)
    if len(groups) < folds:
        raise ConfigError(f"{len(groups)} scaffold groups cannot fill {folds} folds")
    order = list(groups.values())
    np.random.default_rng(seed).shuffle(order)
    order.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order
    parts: list[list[int]] = [[] for _ in range(folds)]
    for group in order:
        min(parts, key=len).extend(group)
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


@dataclass
class CVResult:
    """Out-of-fold predictions of one model.

    Attributes:
        mean, std: ``[n, n_tasks]`` predictions, each by the fold model that did not see the row.
        similarity: ``[n]`` max Tanimoto of each row to its fold model's training rows.
        latent: ``[n]`` latent distance of each row to its fold model's
            training rows in that model's embedding (None: no embedding).
        rmse: RMSE of ``mean`` over all finite rows.
        fold_rmse: RMSE per fold.
        held: The held-out row positions of each fold.
    """

    mean: np.ndarray
    std: np.ndarray
    similarity: np.ndarray
    rmse: float
    fold_rmse: list[float] = field(default_factory=list)
    latent: np.ndarray | None = None
    held: list[np.ndarray] = field(default_factory=list)


def cross_validate(factory: Factory, mols: Sequence[Chem.Mol], y: Any, *, folds: int = 5, seed: int = 0) -> CVResult:
    """Scaffold k-fold cross-validation of a predictor.

    Args:
        factory: ``seed -> unfitted predictor``.
        mols: RDKit molecules.
        y: Targets ``[n]`` or ``[n, t]``.
        folds: Number of folds.
        seed: Seed of the folds and (``seed + fold``) of each fold's model.

    Returns:
        The out-of-fold predictions and errors.
    """
    from molgen.predictors.metrics import rmse

    mols = list(mols)
    targets = np.asarray(y, dtype=np.float64)
    y2 = targets.reshape(len(mols), -1)
    mean, std = np.full(y2.shape, np.nan), np.full(y2.shape, np.nan)
    similarity = np.full(len(mols), np.nan)
    latent: np.ndarray | None = None
    fold_rmse = []
    parts = scaffold_folds(mols, folds, seed)
    for k, held in enumerate(parts):
        train = np.setdiff1d(np.arange(len(mols)), held)
        model = factory(seed + k).fit([mols[i] for i in train], targets[train])
        held_mols = [mols[i] for i in held]
        m, s = model.predict(held_mols)
        mean[held], std[held] = np.asarray(m).reshape(len(held), -1), np.asarray(s).reshape(len(held), -1)
        similarity[held] = ApplicabilityDomain().fit([mols[i] for i in train]).similarity(held_mols)["max"]
        embed = getattr(model, "embed", None)
        train_embedding = None if embed is None else embed([mols[i] for i in train])
        if train_embedding is not None:
            latent = np.full(len(mols), np.nan) if latent is None else latent
            latent[held] = LatentDomain().fit(train_embedding).distance(embed(held_mols))
        fold_rmse.append(rmse(y2[held], mean[held]))
    return CVResult(mean, std, similarity, rmse(y2, mean), fold_rmse, latent, parts)


def fit_calibrated(factory: Factory, mols: Sequence[Chem.Mol], y: Any, *, folds: int = 5, seed: int = 0,
                   coverage: float = 0.9, cv: CVResult | None = None) -> CalibratedPredictor:
    """Calibrate on scaffold cross-validation, then refit on every row.

    Args:
        factory: ``seed -> unfitted predictor``.
        mols: RDKit molecules.
        y: Targets.
        folds: Cross-validation folds (ignored when ``cv`` is given).
        seed: Seed of folds and models (the final model uses ``seed``).
        coverage: Nominal coverage of the conformal intervals.
        cv: Reuse an earlier :func:`cross_validate` of the same factory and data.

    Returns:
        The calibrated predictor, its base fitted on all rows.
    """
    mols = list(mols)
    cv = cv or cross_validate(factory, mols, y, folds=folds, seed=seed)
    base = factory(seed).fit(mols, y)
    return CalibratedPredictor(base, coverage=coverage).calibrate_from(y, cv.mean, cv.std, cv.similarity, train_objs=mols,
                                                                       latent_distance=cv.latent)


def combine_cv(results: Sequence[CVResult], y: Any) -> CVResult:
    """The out-of-fold predictions a consensus of the given models would make.

    The members were cross-validated on the same folds (same data, seed and
    fold count), so averaging their out-of-fold predictions row by row is the
    consensus's own cross-validation, at no extra fit.

    Args:
        results: :func:`cross_validate` results of the members, same folds.
        y: The targets they were validated on.

    Returns:
        The consensus's out-of-fold predictions (latent distance: the first
        member's that has one, as :meth:`ConsensusPredictor.embed` does).
    """
    from molgen.predictors.consensus import combine_members
    from molgen.predictors.metrics import rmse

    mean, std = combine_members([r.mean for r in results], [r.std for r in results])
    y2 = np.asarray(y, dtype=np.float64).reshape(mean.shape)
    latent = next((r.latent for r in results if r.latent is not None), None)
    # Every member saw the same training rows per fold, so similarity and fold membership are shared.
    held = results[0].held
    return CVResult(mean, std, results[0].similarity, rmse(y2, mean), [rmse(y2[h], mean[h]) for h in held], latent, held)


def select_model(candidates: dict[str, Factory], mols: Sequence[Chem.Mol], y: Any, *, folds: int = 5, seed: int = 0,
                 coverage: float = 0.9, consensus: dict[str, tuple[Sequence[str], Factory]] | None = None,
                 ) -> tuple[str, CalibratedPredictor, dict[str, dict[str, Any]]]:
    """Pick the candidate with the lowest scaffold-CV RMSE, calibrate it and refit it.

    Args:
        candidates: ``name -> factory``.
        mols: RDKit molecules.
        y: Targets (regression).
        folds: Cross-validation folds.
        seed: Seed of folds and models.
        coverage: Nominal coverage of the intervals.
        consensus: Further candidates averaged from others:
            ``name -> (names of candidates, factory of the consensus)``;
            validated from the members' out-of-fold predictions
            (:func:`combine_cv`), so they cost a fit only if chosen.

    Returns:
        ``(chosen name, calibrated predictor, {name: {"cv_rmse", "fold_rmse"}})``.

    Raises:
        ConfigError: no candidates, or a consensus of unknown candidates.
        DataError: every candidate's CV RMSE is NaN.
    """
    if not candidates:
        raise ConfigError("model selection needs at least one candidate")
    consensus = dict(consensus or {})
    for name, (members, _) in consensus.items():
        unknown = [m for m in members if m not in candidates]
        if len(members) < 2 or unknown:
            raise ConfigError(f"consensus candidate {name!r} needs at least two of {sorted(candidates)}, got {list(members)}")
    results = {name: cross_validate(f, mols, y, folds=folds, seed=seed) for name, f in candidates.items()}
    for name, (members, factory) in consensus.items():
        results[name] = combine_cv([results[m] for m in members], y)
        candidates = {**candidates, name: factory}
    table = {name: {"cv_rmse": r.rmse, "fold_rmse": r.fold_rmse} for name, r in results.items()}
    finite = {name: r.rmse for name, r in results.items() if np.isfinite(r.rmse)}
    if not finite:
        raise DataError("model selection: no candidate produced finite out-of-fold predictions")
    best = min(finite, key=finite.get)
    model = fit_calibrated(candidates[best], mols, y, seed=seed, coverage=coverage, cv=results[best])
    return best, model, table
