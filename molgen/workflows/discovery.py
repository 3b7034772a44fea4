"""Materials discovery runs (``molgen discover``): a preset (objective plus
loop settings), a crystal generator and a run directory that can be resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from molgen.core.config import StrictModel, read_toml, validate
from molgen.core.device import select_device
from molgen.core.errors import ConfigError, MolgenError
from molgen.core.serialization import read_json, write_json
from molgen.loops.discovery import DiscoveryLoopConfig, DiscoveryResult, MaterialsDiscovery, require_relaxation_support
from molgen.loops.engine import claim_new_run, require_resumable
from molgen.workflows.photovoltaic import GapWindowReportConfig
from molgen.workflows.structure_prediction import predict_structures

RUN_SETTINGS = "discover.json"
PRESET_DIR = Path(__file__).resolve().parent / "data"
#: Shipped presets: name -> file in :data:`PRESET_DIR`.
PRESETS = {
    "photovoltaic": "photovoltaic.toml",
    "photovoltaic-known-gap": "photovoltaic_known_gap.toml",
    "photovoltaic-mp20": "photovoltaic_mp20.toml",
    "photovoltaic-mp20-known-gap": "photovoltaic_mp20_known_gap.toml",
}
#: Generator of a preset that names none.
DEFAULT_GENERATOR = "perov5"


class DiscoveryConfig(DiscoveryLoopConfig):
    """A preset's ``[discovery]`` table: the loop's settings and its report's
    (``[discovery.report]``, the photovoltaic gap window)."""

    report: GapWindowReportConfig = GapWindowReportConfig()


class PresetSpec(StrictModel):
    """A preset file: ``name``, an ``[objective]`` table (as in objective
    TOML files) and a ``[discovery]`` table (:class:`DiscoveryConfig`)."""

    name: str
    generator: str | None = Field(None, description="the preset's crystal generator (shipped name or model directory; "
                                  "None: perov5); --generator overrides it")
    objective: dict[str, Any]
    discovery: DiscoveryConfig = DiscoveryConfig()


class DiscoverSettings(StrictModel):
    """Everything a run needs; saved as ``discover.json`` so ``--resume``
    restarts from the same settings without the preset file."""

    preset: PresetSpec
    generator: str | None = Field(None, description="shipped generator name or a model/run directory (None: the preset's)")
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="the generator's sampling and update forward passes: auto (bf16 autocast on CUDA, "
        "float32 on CPU), bf16 or fp32")


def load_preset(name_or_path: str) -> PresetSpec:
    """A shipped preset by name or a preset TOML file.

    Raises:
        ConfigError: unknown name (listing the shipped ones) or a bad file.
    """
    if name_or_path in PRESETS:
        path = PRESET_DIR / PRESETS[name_or_path]
    elif Path(name_or_path).is_file():
        path = Path(name_or_path)
    else:
        raise ConfigError(f"unknown preset {name_or_path!r}: give a TOML file or one of {', '.join(sorted(PRESETS))}")
    return validate(PresetSpec, read_toml(path), where=str(path))


def discover(settings: DiscoverSettings | None, out_dir: str | Path, resume: bool = False, rounds: int | None = None,
             log=None, relax_fn=None, executor=None, progress: bool = False, hull=None) -> DiscoveryResult:
    """Run (or resume) a discovery loop.

    Args:
        settings: The run's settings (ignored with ``resume``, which reads
            ``out_dir/discover.json``).
        out_dir: Run directory.
        resume: Continue the run in ``out_dir``.
        rounds: With ``resume``, extend the run to this many rounds.
        log: Called with one line per round.
        relax_fn: Replace the expensive oracle (tests).
        executor: Replace the executor (tests).
        hull: A :class:`~molgen.physics.hull.ConvexHull` to use instead of
            building one from the preset's ``[discovery.relax] hull`` sources
            (which must still be set for the hull gate to apply).

    Returns:
        The result (figures also in ``out_dir/summary.json``).

    Raises:
        ConfigError: bad settings; MolgenError: an unusable generator, a
            run directory in the wrong state, or relaxations asked for
            without CHGNet installed (checked before anything starts).
    """
    from molgen.backbones.base import load_generator
    from molgen.loops.reinforce import PriorRegularizedRL
    from molgen.scoring.objective import Objective
    from molgen.workflows.optimization import resolve_prior

    out_dir = Path(out_dir)
    if resume:
        require_resumable(out_dir, "discovery run", RUN_SETTINGS)
        settings = validate(DiscoverSettings, read_json(out_dir / RUN_SETTINGS), where=str(out_dir / RUN_SETTINGS))
        if rounds is not None:
            if rounds < settings.preset.discovery.rounds:
                raise ConfigError(f"--rounds {rounds} is below the run's {settings.preset.discovery.rounds} rounds")
            settings.preset.discovery.rounds = rounds
    elif settings is None:
        raise ConfigError("discover() needs settings unless resuming")
    else:
        claim_new_run(out_dir, "discovery run", RUN_SETTINGS, kind="discover")
    if relax_fn is None:
        require_relaxation_support(settings.preset.discovery)
    objective = Objective.from_spec(settings.preset.objective, where=f"preset {settings.preset.name} [objective]")
    name = settings.generator or settings.preset.generator or DEFAULT_GENERATOR
    generator = load_generator(resolve_prior(name), select_device(settings.device))
    if generator.domain.name != "crystal":
        raise MolgenError(f"--generator {name}: a {generator.domain.name!r} model; discovery presets need a crystal generator")
    if log is not None and not settings.preset.discovery.relax.active:
        # Said before the first round: without relaxations nothing in the run checks stability.
        log("no relaxations (relax per_round or budget is 0): candidates are ranked by the learned predictors only; "
            "stability is not checked (install molgen[potential] and keep relaxations on for CHGNet and the hull)")
    strategy = PriorRegularizedRL(generator, settings.preset.discovery.strategy, seed=settings.seed, precision=settings.precision)
    loop = MaterialsDiscovery(strategy, objective, out_dir, settings.preset.discovery, relax_fn=relax_fn, executor=executor, log=log,
                              progress=progress, hull=hull, structure_predictor=predict_structures)
    write_json(out_dir / RUN_SETTINGS, settings.model_dump(mode="json"))
    return loop.run(resume=resume)
