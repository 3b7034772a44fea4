"""Goal-directed optimisation (``molgen optimize``): a prior, an objective,
a budget and a run directory that can be resumed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from molgen.core.config import StrictModel, validate
from molgen.core.device import select_device
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.serialization import read_json, write_json
from molgen.loops.campaign import Campaign, CampaignConfig, CampaignResult
from molgen.loops.latent import LatentSearch, LatentSearchConfig
from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

RUN_SETTINGS = "optimize.json"
OBJECTIVE_COPY = "objective.toml"


def _strategy_kind(value: Any) -> str:
    # Settings written before strategies had a kind are REINVENT's.
    return value.get("kind", "reinvent") if isinstance(value, dict) else getattr(value, "kind", "reinvent")


StrategyConfig = Annotated[
    Union[Annotated[ReinforceConfig, Tag("reinvent")], Annotated[LatentSearchConfig, Tag("latent")]],
    Discriminator(_strategy_kind),
]


class OptimizeConfig(StrictModel):
    """Everything a campaign needs; saved as ``optimize.json`` in the run
    directory so ``--resume`` restarts from the same settings."""

    prior: str = Field("zinc250k", description="shipped prior name or a model/run directory (a VAE for latent search)")
    objective: str = Field(description="registered objective name or a TOML path")
    seed: int = 0
    device: str = "auto"
    campaign: CampaignConfig
    strategy: StrategyConfig = Field(default_factory=ReinforceConfig, description="kind reinvent (default) or latent")


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
    from molgen.scoring import get_objective

    out_dir = Path(out_dir)
    if resume:
        if not (out_dir / RUN_SETTINGS).is_file():
            raise MolgenError(f"{out_dir} holds no campaign to resume (no {RUN_SETTINGS})")
        config = validate(OptimizeConfig, read_json(out_dir / RUN_SETTINGS), where=str(out_dir / RUN_SETTINGS))
        budget = settings.campaign.budget if isinstance(settings, OptimizeConfig) else (settings.get("campaign") or {}).get("budget")
        if budget is not None:
            if budget < config.campaign.budget:
                raise ConfigError(f"--budget {budget} is below the run's budget {config.campaign.budget}")
            config.campaign.budget = int(budget)
    else:
        config = settings if isinstance(settings, OptimizeConfig) else validate(OptimizeConfig, settings, where="optimize settings")
    objective_source = config.objective
    if resume and (out_dir / OBJECTIVE_COPY).is_file():
        objective_source = str(out_dir / OBJECTIVE_COPY)
    objective = get_objective(objective_source)
    prior = load_generator(resolve_prior(config.prior), select_device(config.device))
    strategy = _build_strategy(prior, config)
    campaign = Campaign(strategy, objective, out_dir, config.campaign, progress=progress)
    if not resume:
        if (out_dir / RUN_SETTINGS).is_file():
            raise MolgenError(f"{out_dir} already holds a campaign; pass --resume or choose another --out")
        out_dir.mkdir(parents=True, exist_ok=True)
        if Path(config.objective).is_file():  # the run must not depend on the user's file staying put
            shutil.copyfile(config.objective, out_dir / OBJECTIVE_COPY)
    write_json(out_dir / RUN_SETTINGS, config.model_dump(mode="json"))
    return campaign.run(resume=resume)


def _build_strategy(prior, config: OptimizeConfig):
    if isinstance(config.strategy, LatentSearchConfig):
        start = None
        if config.strategy.start is not None:
            from molgen.datasets import load_texts

            start = load_texts(config.strategy.start, prior.domain, limit=config.strategy.start_size, seed=config.seed,
                               on_invalid="skip").texts
        return LatentSearch(prior, config.strategy, start=start, seed=config.seed)
    return PriorRegularizedRL(prior, config.strategy, seed=config.seed)


def export_top(run_dir: str | Path, output: str | Path, top: int | None = 100) -> Path:
    """Export the best ``top`` candidates of a run to ``.csv`` or ``.sdf``.

    Raises:
        MolgenError: no store in ``run_dir`` or an unknown output suffix.
    """
    from molgen.loops.campaign import STORE_NAME
    from molgen.loops.store import CandidateStore

    path = Path(run_dir) / STORE_NAME
    if not path.is_file():
        raise MolgenError(f"{run_dir} holds no {STORE_NAME} (is it a `molgen optimize` run?)")
    suffix = Path(output).suffix.lower()
    if suffix not in (".csv", ".sdf"):
        raise MolgenError(f"{output}: export to .csv or .sdf")
    with CandidateStore(path) as store:
        return store.export_csv(output, top) if suffix == ".csv" else store.export_sdf(output, top)
