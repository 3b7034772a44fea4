"""Goal-directed optimisation (``molgen optimize``): a prior, an objective,
a budget and a run directory that can be resumed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from molgen.core.config import StrictModel, validate
from molgen.core.device import select_device
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.serialization import read_json, write_json
from molgen.loops.campaign import Campaign, CampaignConfig, CampaignResult
from molgen.loops.engine import STORE_NAME, claim_new_run, require_resumable
from molgen.loops.latent import LatentSearch, LatentSearchConfig
from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig
from molgen.loops.store import CandidateStore

RUN_SETTINGS = "optimize.json"
OBJECTIVE_COPY = "objective.toml"


def _strategy_kind(value: Any) -> str:
    # Settings written before strategies had a kind are REINVENT's.
    return value.get("kind", "reinvent") if isinstance(value, dict) else getattr(value, "kind", "reinvent")


StrategyConfig = Annotated[
    Union[Annotated[ReinforceConfig, Tag("reinvent")], Annotated[LatentSearchConfig, Tag("latent")]],
    Discriminator(_strategy_kind),
]


class OracleExecution(StrictModel):
    """Where a campaign's oracle runs: each batch is split in chunks scored
    through an executor (:mod:`molgen.core.executors`). Docking is the
    oracle this is for: one call takes seconds, a batch of 64 takes minutes
    in one process."""

    executor: Literal["serial", "process", "ray"] = Field("serial", description="serial (in process), process or ray")
    workers: int = Field(2, ge=1, description="pool processes or local Ray CPUs")
    chunk_size: int = Field(8, ge=1, description="molecules per task (small: oracle calls are expensive)")


class OptimizeConfig(StrictModel):
    """Everything a campaign needs; saved as ``optimize.json`` in the run
    directory so ``--resume`` restarts from the same settings."""

    prior: str = Field("zinc250k", description="shipped prior name or a model/run directory (a VAE for latent search)")
    objective: str = Field(description="registered objective name or a TOML path")
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="REINVENT's sampling and forward passes: auto (bf16 autocast on CUDA, float32 on CPU), "
        "bf16 or fp32 (latent search runs in float32)")
    campaign: CampaignConfig
    strategy: StrategyConfig = Field(default_factory=ReinforceConfig, description="kind reinvent (default) or latent")
    oracle: OracleExecution = Field(default_factory=OracleExecution,
                                      description="where the objective's batches run (any executor gives the same scores)")
    objective_sha256: str | None = Field(
        None, description="pinned at the start: sha256 of the objective (the TOML file's bytes, or the registered name); "
        "a resume refuses an objective that differs from it")


def objective_digest(source: str) -> str:
    """sha256 of an objective: the bytes of a TOML file, or the registered
    name (whose definition is the installed code)."""
    import hashlib

    path = Path(source)
    data = path.read_bytes() if path.is_file() else f"registered:{source}".encode()
    return hashlib.sha256(data).hexdigest()


def _resume_objective(config: OptimizeConfig, out_dir: Path, given: str | None) -> str:
    """The objective a resumed run may use: the run's own, unchanged.

    A run directory can be edited or shared, and an objective can run
    programs (``external`` components), so the objective is pinned by hash at
    the start and checked here.

    Raises:
        MolgenError: the run's copy was changed, ``given`` differs from the
            run's objective, or the run predates pinning and ``given`` is absent.
    """
    pinned = config.objective_sha256
    copy = out_dir / OBJECTIVE_COPY
    if given is not None:
        digest = objective_digest(given)
        if pinned is not None and digest != pinned:
            raise MolgenError(f"--objective {given} differs from the objective this run was started with "
                              f"(sha256 {digest[:12]} vs {pinned[:12]}); a run continues with its own objective")
        return given
    if pinned is None:
        raise MolgenError(f"{out_dir} was made by an older molgen and its objective is not pinned: pass --objective "
                          "again (the file or name the run was started with) to resume it")
    source = str(copy) if copy.is_file() else config.objective
    if objective_digest(source) != pinned:
        raise MolgenError(f"the objective of {out_dir} ({source}) changed since the run started (sha256 no longer "
                          f"{pinned[:12]}...): it is not run; pass --objective with the run's original objective to resume")
    return source


def resolve_prior(prior: str) -> Path:
    """Directory of a prior: a shipped name (``zinc250k``, ``model:zinc250k``)
    or a model/run directory (see :func:`molgen.pretrained.resolve_model_path`).

    Raises:
        CheckpointError: neither a shipped model nor a model/run directory.
    """
    from molgen.pretrained import resolve_model_path

    try:
        return resolve_model_path(prior)
    except MolgenError as exc:
        raise type(exc)(f"{prior!r}: {exc}") from None


def optimize(settings: dict[str, Any] | OptimizeConfig, out_dir: str | Path, resume: bool = False, progress: bool = False) -> CampaignResult:
    """Run (or resume) a campaign: REINVENT on an autoregressive prior, or
    latent-space search (CMA-ES or gradient ascent) on a VAE.

    Args:
        settings: An :class:`OptimizeConfig` or its dict. With ``resume`` only
            ``campaign.budget`` is taken from it, when present (to extend a
            run); the rest comes from ``out_dir/optimize.json``.
        out_dir: Run directory.
        resume: Continue the campaign in ``out_dir``.
        progress: Progress bar.

    Returns:
        The campaign result (figures also in ``out_dir/summary.json``).

    Raises:
        ConfigError: bad settings; MolgenError: unusable prior or objective,
            or a run directory in the wrong state.
    """
    from molgen.backbones.base import load_generator

    out_dir = Path(out_dir)
    given_objective = settings.objective if isinstance(settings, OptimizeConfig) else settings.get("objective")
    if resume:
        require_resumable(out_dir, "campaign", RUN_SETTINGS)
        config = validate(OptimizeConfig, read_json(out_dir / RUN_SETTINGS), where=str(out_dir / RUN_SETTINGS))
        budget = settings.campaign.budget if isinstance(settings, OptimizeConfig) else (settings.get("campaign") or {}).get("budget")
        oracle = settings.oracle.model_dump(exclude_unset=True) if isinstance(settings, OptimizeConfig) else settings.get("oracle")
        if oracle:  # where the oracle runs may change between sessions; the scores do not
            config.oracle = validate(OracleExecution, {**config.oracle.model_dump(), **oracle}, where="oracle")
        if budget is not None:
            if budget < config.campaign.budget:
                raise ConfigError(f"--budget {budget} is below the run's budget {config.campaign.budget}")
            config.campaign.budget = int(budget)
    else:
        config = settings if isinstance(settings, OptimizeConfig) else validate(OptimizeConfig, settings, where="optimize settings")
    if resume:
        objective_source = _resume_objective(config, out_dir, given_objective)
        if config.objective_sha256 is None:
            config.objective_sha256 = objective_digest(objective_source)
    else:
        objective_source = config.objective
        config.objective_sha256 = objective_digest(objective_source)
    objective = _oracle_objective(objective_source, config)
    prior = load_generator(resolve_prior(config.prior), select_device(config.device))
    strategy = _build_strategy(prior, config)
    campaign = Campaign(strategy, objective, out_dir, config.campaign, progress=progress)
    if not resume:
        claim_new_run(out_dir, "campaign", RUN_SETTINGS, kind="optimize")
        if Path(config.objective).is_file():  # the run must not depend on the user's file staying put
            shutil.copyfile(config.objective, out_dir / OBJECTIVE_COPY)
    write_json(out_dir / RUN_SETTINGS, config.model_dump(mode="json"))
    try:
        return campaign.run(resume=resume)
    finally:
        if hasattr(objective, "close"):
            objective.close()


def _oracle_objective(source: str, config: OptimizeConfig):
    """The objective, behind an executor unless it runs in process."""
    from molgen.scoring import get_objective

    if config.oracle.executor == "serial":
        return get_objective(source)
    from molgen.core.executors import make_executor
    from molgen.scoring.parallel import ExecutorObjective, ObjectiveSource

    execution = config.oracle
    return ExecutorObjective(ObjectiveSource.of(source), make_executor(execution.executor, execution.workers),
                             chunk_size=execution.chunk_size, workers=execution.workers)


def _build_strategy(prior, config: OptimizeConfig):
    if isinstance(config.strategy, LatentSearchConfig):
        start = None
        if config.strategy.start is not None:
            from molgen.datasets import load_texts

            start = load_texts(config.strategy.start, prior.domain, limit=config.strategy.start_size, seed=config.seed,
                               on_invalid="skip").texts
        return LatentSearch(prior, config.strategy, start=start, seed=config.seed)
    return PriorRegularizedRL(prior, config.strategy, seed=config.seed, precision=config.precision)


def export_top(run_dir: str | Path, output: str | Path, top: int | None = 100) -> Path:
    """Export the best ``top`` candidates of a run to ``.csv`` or ``.sdf``.

    Raises:
        MolgenError: no store in ``run_dir`` or an unknown output suffix.
    """
    path = Path(run_dir) / STORE_NAME
    if not path.is_file():
        raise MolgenError(f"{run_dir} holds no {STORE_NAME} (is it a `molgen optimize` run?)")
    suffix = Path(output).suffix.lower()
    if suffix not in (".csv", ".sdf"):
        raise MolgenError(f"{output}: export to .csv or .sdf")
    with CandidateStore(path) as store:
        return store.export_csv(output, top) if suffix == ".csv" else store.export_sdf(output, top)
