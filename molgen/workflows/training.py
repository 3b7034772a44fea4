"""Train a generator on a data set: load and validate data, build the
vocabulary and model, split, train, save."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from molgen.backbones.base import Generator, TransformerHParams
from molgen.core.config import StrictModel, read_toml, validate
from molgen.core.device import select_device
from molgen.core.registry import BACKBONES, DOMAINS
from molgen.core.serialization import read_json, write_json
from molgen.core.errors import ConfigError, DataError, MolgenError, ParseError
from molgen.datasets import load_texts
from molgen.train import GraphBatches, SeededBatches, TokenBatches, TrainConfig, Trainer, TrainResult
from molgen.train.distributed import DistributedContext
from molgen.train.trainer import CHECKPOINT_DIR
from molgen.workflows import auto_size

RUN_CONFIG = "run.json"
MODEL_DIR = "model"
AUTO_SIZE_KEY = "auto_size"  # run.json: the size rule's choice and reason (a record, not a setting)


class DataConfig(StrictModel):
    """Where the training objects come from and how they are prepared."""

    source: str = Field("nci-5k", description="registered data set name or a .smi/.csv path")
    limit: int | None = Field(None, gt=0, description="seeded random subset of this size")
    val_fraction: float = Field(0.05, ge=0, lt=1)
    canonicalize: bool = Field(True, description="train on canonical texts")
    on_invalid: Literal["error", "skip"] | None = Field(None, description="default: the data set's policy, else error")
    on_unknown_token: Literal["error", "unk"] = "error"
    augment: bool = Field(False, description="randomized equivalent texts each draw (randomized SMILES)")


class RunConfig(StrictModel):
    """Everything a training run needs; a TOML file has the same sections."""

    domain: str = "smiles"
    backbone: str = "autoregressive"
    seed: int = Field(0, ge=0, lt=2**63, description="seed of subset, split, initialisation, batches and noise")
    device: str = "auto"
    init_from: str | None = Field(None, description="saved model directory to fine-tune")
    data: DataConfig = DataConfig()
    model: dict[str, Any] = Field(default_factory=dict, description="backbone hyper-parameters")
    train: TrainConfig = TrainConfig()

    @field_validator("train", mode="before")
    @classmethod
    def _finite_minutes(cls, value: Any) -> Any:
        # NaN fails "> 0" with a confusing message, and infinity would never stop.
        minutes = value.get("max_minutes") if isinstance(value, dict) else getattr(value, "max_minutes", None)
        if isinstance(minutes, float) and not math.isfinite(minutes):
            raise PydanticCustomError("finite_minutes", "max_minutes must be a finite number of minutes > 0, got {value}",
                                      {"value": minutes})
        return value

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> "RunConfig":
        """Read a TOML file and apply dotted-key overrides (``"train.max_steps"``).

        Raises:
            ConfigError: unknown keys or invalid values, naming the key.
        """
        data = read_toml(path)
        apply_overrides(data, overrides)
        return validate(cls, data, where=str(path))


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys in a nested dict in place, skipping None values."""
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


@dataclass
class PreparedData:
    """Train/validation batches and what was done to the data."""

    train: SeededBatches
    val: SeededBatches | None
    source_path: str
    n_loaded: int
    n_skipped_invalid: int
    longest_augmented: int = 0  # token length of the longest randomized form seen


@dataclass
class RunSummary:
    """Result of :func:`run_training`."""

    out_dir: Path
    model_dir: Path
    n_parameters: int
    n_train: int
    n_val: int
    result: TrainResult
    data_seconds: float
    auto_size: dict[str, Any] | None = None  # the size rule's record when the size was chosen for the user


def split_train_val(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (validation, training) positions, each sorted; no validation
    part below 20 examples."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction)) if n >= 20 else 0
    return np.sort(order[:n_val]), np.sort(order[n_val:])


def prepare_data(config: RunConfig, domain, fit_vocab: bool, max_length: int | None) -> PreparedData:
    """Load, validate, split and encode the run's data.

    Args:
        config: Run settings.
        domain: Domain instance (its tokenizer is fitted when ``fit_vocab``).
        fit_vocab: Build the vocabulary from the data (False when fine-tuning
            or resuming with a fixed vocabulary).
        max_length: Drop longer sequences (incl. BOS/EOS); None keeps all.

    Returns:
        Encoded batches.
    """
    d = config.data
    names = list(config.model.get("conditions", []))
    from molgen.properties.molecular import MOSES_PROPERTIES

    computable = {n.lower() for n in MOSES_PROPERTIES} if domain.name == "smiles" else set()
    columns = tuple(n for n in names if n.lower() not in computable)
    loaded = load_texts(
        d.source, domain, limit=d.limit, seed=config.seed, on_invalid=d.on_invalid, canonicalize=d.canonicalize,
        targets=columns or None,
    )
    values = condition_values(loaded, domain, names) if names else None
    val_idx, train_idx = split_train_val(len(loaded.texts), d.val_fraction, config.seed)
    train_texts = [loaded.texts[i] for i in train_idx]
    augment = domain.augment if d.augment else None
    augmented: list[str] = []
    if augment is not None:  # randomized forms seen by the vocabulary and the length bound
        aug_rng = np.random.default_rng([config.seed, 7])
        augmented = [augment(t, aug_rng) for t in train_texts[:5000]]
    if fit_vocab:
        domain.tokenizer.fit(list(loaded.texts) + augmented)
    longest_augmented = max((len(domain.tokenizer.tokenize(t)) + 2 for t in augmented), default=0)
    common = dict(tokenizer=domain.tokenizer, on_unknown=d.on_unknown_token, max_length=max_length)
    train = TokenBatches(
        train_texts, batch_size=config.train.batch_size, seed=config.seed, augment=augment,
        lines=[loaded.lines[i] for i in train_idx], conditions=None if values is None else values[train_idx], **common,
    )
    val = None
    if len(val_idx):
        val = TokenBatches(
            [loaded.texts[i] for i in val_idx], batch_size=config.train.batch_size, seed=config.seed,
            lines=[loaded.lines[i] for i in val_idx], conditions=None if values is None else values[val_idx], **common,
        )
    return PreparedData(train, val, str(loaded.path), len(loaded.texts), len(loaded.skipped), longest_augmented)


def condition_values(loaded, domain, names: list[str]) -> np.ndarray:
    """``[n, k]`` values of a conditional model's properties for the loaded
    texts: computed with RDKit for molecules (logP, QED, SA, weight; any
    case), else the data set's columns of those names.

    Raises:
        DataError: a name that is neither a computable property nor a column.
    """
    from molgen.properties.molecular import MOSES_PROPERTIES

    computable = {name.lower(): fn for name, fn in MOSES_PROPERTIES.items()} if domain.name == "smiles" else {}
    columns = []
    for name in names:
        fn = computable.get(name.lower())
        if fn is not None:
            columns.append([fn(domain.parse(text)) for text in loaded.texts])
            continue
        source_values = (loaded.targets or {}).get(name)
        if source_values is None or not np.isfinite(np.asarray(source_values, dtype=np.float64)).any():
            raise DataError(f"condition {name!r} is neither a computed property ({', '.join(MOSES_PROPERTIES)}) "
                            "nor a column of the data")
        columns.append(list(source_values))
    return np.asarray(columns, dtype=np.float32).T


def load_graphs(config: RunConfig, domain, fit_types: bool, conditions: list[str]) -> tuple[list, list, str, int, int]:
    """Load the run's data as graph-view graphs and split them.

    Args:
        config: Run settings.
        domain: Domain offering the graph view (its node types are learned
            from the training part when ``fit_types``).
        fit_types: Learn the graph view's categories from the data.
        conditions: Property columns attached to each graph as ``condition``.

    Returns:
        ``(train graphs, validation graphs, source path, loaded, skipped)``;
        entries that do not parse, or hold a category the fixed node types
        lack, are skipped and counted.
    """
    d = config.data
    if d.augment:
        raise MolgenError("data.augment (randomized texts) has no meaning for a graph backbone: its denoiser is permutation-invariant")
    loaded = load_texts(
        d.source, domain, limit=d.limit, seed=config.seed, on_invalid=d.on_invalid,
        canonicalize=d.canonicalize, targets=tuple(conditions) or None, keep_objects=True,
    )
    missing = [c for c in conditions if c not in loaded.targets]
    if missing:
        raise DataError(f"condition column(s) {', '.join(missing)} not found in {d.source}")
    objs, skipped = loaded.objects, len(loaded.skipped)
    val_order, train_idx = split_train_val(len(objs), d.val_fraction, config.seed)
    val_idx = set(val_order.tolist())
    if fit_types:
        domain.fit_graph([objs[i] for i in train_idx])
    train, val = [], []
    for j, obj in enumerate(objs):
        try:
            graph = domain.to_graph(obj)
        except ParseError:  # a category the (fixed) node types lack
            skipped += 1
            continue
        if conditions:
            row = [loaded.targets[c][j] for c in conditions]
            graph.condition = torch.tensor([row], dtype=torch.float32)
        (val if j in val_idx else train).append(graph)
    if not train:
        raise DataError(f"no graphs left to train on from {d.source}")
    return train, val, str(loaded.path), len(loaded.texts), skipped


def _graph_model_and_data(config: RunConfig, out_dir: Path, resume: bool, log, device):
    """Build (or reload) a graph-view model and its batches.

    Returns:
        ``(config, model, data, None)`` (graph models have no size rule).
    """
    if resume or config.init_from:
        model = Generator.from_pretrained(out_dir / CHECKPOINT_DIR if resume else config.init_from)
        conditions = list(model.config.conditions)
        train, val, path, n_loaded, skipped = load_graphs(config, model.domain, False, conditions)
        if not resume:
            model.fit_statistics(train)
    else:
        domain = DOMAINS.get(config.domain)()
        backbone_cls = BACKBONES.get(config.backbone)
        if backbone_cls.view not in domain.views:
            raise MolgenError(f"backbone {config.backbone!r} needs the {backbone_cls.view} view; domain {domain.name!r} offers {', '.join(domain.views)}")
        conditions = list(config.model.get("conditions", []))
        train, val, path, n_loaded, skipped = load_graphs(config, domain, True, conditions)
        hparams = dict(config.model)
        hparams.setdefault("max_nodes", max(int(g.num_nodes) for g in train + val))
        model = backbone_cls.from_domain(domain, **hparams)
        model.fit_statistics(train)
    too_big = [g for g in train if g.num_nodes > model.config.max_nodes]
    train = [g for g in train if g.num_nodes <= model.config.max_nodes]
    batch = config.train.batch_size
    train_batches = GraphBatches(train, model.collate, batch, seed=config.seed)
    train_batches.dropped_too_long = len(too_big)
    val_batches = GraphBatches(val, model.collate, batch, seed=config.seed) if val else None
    return config, model, PreparedData(train_batches, val_batches, path, n_loaded, skipped), None


def check_model_shape(backbone: str, hparams: dict[str, Any], where: str) -> None:
    """Fail early, with the key names, on transformer hyper-parameters the
    attention layers cannot use (``d_model`` not a multiple of ``n_heads``,
    or an odd head width, which rotary embeddings cannot rotate).

    Args:
        backbone: Backbone name.
        hparams: Hyper-parameters given (defaults fill the rest).
        where: Where they come from, for the message.

    Raises:
        ConfigError: the shape is unusable.
    """
    config_cls = BACKBONES.get(backbone).config_cls
    if not issubclass(config_cls, TransformerHParams):
        return
    fields = config_cls.model_fields
    d_model = hparams.get("d_model", fields["d_model"].default)
    n_heads = hparams.get("n_heads", fields["n_heads"].default)
    if not (isinstance(d_model, int) and isinstance(n_heads, int)) or d_model <= 0 or n_heads <= 0:
        return  # the typed config reports these
    if d_model % n_heads:
        raise ConfigError(f"{where}: d_model={d_model} is not divisible by n_heads={n_heads}")
    if (d_model // n_heads) % 2:
        raise ConfigError(f"{where}: d_model / n_heads = {d_model // n_heads} must be even (rotary embeddings rotate pairs)")


def _check_init_from(path: str) -> None:
    """Check the shape in a fine-tuning source's ``config.json`` (a missing or
    unreadable file is left to the loader's own error)."""
    config_path = Path(path) / "config.json"
    try:
        saved = read_json(config_path)
        backbone, hparams = saved["backbone"], saved["hparams"]
    except (MolgenError, OSError, KeyError, TypeError, ValueError):
        return
    if isinstance(backbone, str) and isinstance(hparams, dict) and backbone in BACKBONES:
        check_model_shape(backbone, hparams, str(config_path))


def _choose_size(config: RunConfig, domain, backbone_cls, hparams: dict[str, Any], data: PreparedData, device):
    """Apply the size rule (:mod:`molgen.workflows.auto_size`) to a run whose
    size the user left open; settings the user gave are kept.

    Returns:
        ``(config, hparams, data, choice)``: the config with the chosen size
        and training settings filled in (``run.json`` records them), the
        model hyper-parameters, the data (re-encoded when the batch size or a
        masked-diffusion canvas changed), and the choice.
    """
    explicit_train = config.train.model_fields_set
    model_updates: dict[str, Any] = {}
    train_updates = auto_size.auto_batch_settings(explicit_train)
    if config.backbone == "masked-diffusion" and "max_length" not in config.model:
        canvas = auto_size.canvas_length(data.train.lengths)
        if canvas < hparams["max_length"]:  # sequences longer than the canvas are left out
            model_updates["max_length"] = canvas
    if model_updates or any(getattr(config.train, k) != v for k, v in train_updates.items()):
        config = config.model_copy(update={
            "model": {**config.model, **model_updates}, "train": config.train.model_copy(update=train_updates)})
        hparams = {**hparams, **model_updates}
        data = prepare_data(config, domain, fit_vocab=False, max_length=hparams.get("max_length"))
    budget = config.train.with_default_budget()
    tokens_per_example = float(np.mean(data.train.lengths - 1))
    batches = [data.train.batch(i) for i in range(max(2, min(3, data.train.batches_per_epoch)))]

    def build(size):
        return backbone_cls.from_domain(domain, **{**hparams, **size.hparams()}).to(device)

    choice = auto_size.probe_ladder(
        build, batches, n_train=len(data.train), tokens_per_example=tokens_per_example,
        batch_size=config.train.batch_size, max_steps=budget.max_steps, max_minutes=budget.max_minutes,
        rule=auto_size.RULES[config.backbone],
    )
    extra = auto_size.auto_hparams(config.backbone, choice, config.model)
    config = config.model_copy(update={
        "model": {**config.model, **extra},
        "train": config.train.model_copy(update=auto_size.auto_train_settings(choice, explicit_train)),
    })
    return config, {**hparams, **extra}, data, choice


def _check_resume_budget(out_dir: Path, max_steps: int | None) -> None:
    """A step budget below the step a run has reached is a mistake (it
    would train nothing and report a NaN loss): refuse it before anything
    in the run directory is touched."""
    from molgen.train.trainer import CHECKPOINT_DIR

    state_path = out_dir / CHECKPOINT_DIR / "trainer_state.json"
    if max_steps is None or not state_path.is_file():
        return
    try:
        step = int(read_json(state_path)["step"])
    except (KeyError, TypeError, ValueError, MolgenError):
        return  # the trainer reports a damaged checkpoint itself
    if max_steps < step:
        raise MolgenError(f"the run in {out_dir} is already at step {step}: give --max-steps above it "
                          "(or --max-minutes) to train further")


def run_training(config: RunConfig, out_dir: str | Path, resume: bool = False, on_validation=None, log=None) -> RunSummary:
    """Train a generator and save it.

    Layout of ``out_dir``: ``model/`` (final model: ``config.json`` +
    ``model.safetensors``), ``checkpoint/`` (resumable state),
    ``train_log.csv`` and ``run.json`` (the settings used).

    When ``config.model`` sets none of ``d_model``, ``n_layers``,
    ``n_heads``, ``d_ff``, ``encoder_layers`` (and the run neither resumes nor
    fine-tunes), a token backbone's size is chosen from the training-set size
    and the budget (:mod:`molgen.workflows.auto_size`); the choice and why are
    written to ``run.json`` under ``auto_size``. ``config.seed`` seeds torch
    before the model is built, so the same seed gives the same initial
    weights (and, with a step budget on CPU, the same trained weights); the
    caller's global torch random state is restored afterwards.

    Args:
        config: Run settings. With ``resume``, only the budget
            (``train.max_steps``/``max_minutes``) of ``config`` is used; the
            rest comes from ``out_dir/run.json``.
        out_dir: Run directory.
        resume: Continue from ``out_dir/checkpoint``.
        on_validation: Optional ``callback(trainer, val_loss)`` run after each
            validation (see :class:`~molgen.train.Trainer`).
        log: Optional ``callback(line)`` for one-line notes (the chosen size).

    Returns:
        Summary with paths and measured figures.

    Raises:
        ConfigError: e.g. ``d_model`` not divisible by ``n_heads`` (in the
            config or the ``init_from`` model's ``config.json``).
    """
    out_dir = Path(out_dir)
    if resume:
        saved_raw = read_json(out_dir / RUN_CONFIG)
        if isinstance(saved_raw, dict):
            saved_raw.pop(AUTO_SIZE_KEY, None)
        saved = validate(RunConfig, saved_raw, where=str(out_dir / RUN_CONFIG))
        if config.train.max_steps is not None or config.train.max_minutes is not None:
            saved.train.max_steps = config.train.max_steps
            saved.train.max_minutes = config.train.max_minutes
            _check_resume_budget(out_dir, config.train.max_steps)
        config = saved
    backbone_view = BACKBONES.get(config.backbone).view  # fail early, listing valid names
    if not resume and not config.init_from:
        check_model_shape(config.backbone, config.model, "[model]")
    if config.init_from and not resume:
        _check_init_from(config.init_from)
    dist = DistributedContext.from_env()
    device = dist.device(select_device(config.device))
    dist.init(device)
    # Seed initialisation, batches' noise and dropout from config.seed, without
    # leaving the caller's global generator changed.
    fork_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        return _run(config, out_dir, resume, on_validation, log, backbone_view, device)


def _token_model_and_data(config: RunConfig, out_dir: Path, resume: bool, log, device):
    """Build (or reload) a tokens-view model and its batches; a new model
    whose size the user left open gets one from the size rule.

    Returns:
        ``(config, model, data, size choice or None)``.
    """
    choice = None
    if resume or config.init_from:  # the saved vocabulary and hyper-parameters are kept
        model = Generator.from_pretrained(out_dir / CHECKPOINT_DIR if resume else config.init_from)
        data = prepare_data(config, model.domain, fit_vocab=False, max_length=model.config.max_length)
    else:
        domain = DOMAINS.get(config.domain)()
        backbone_cls = BACKBONES.get(config.backbone)
        hparams = dict(config.model)
        data = prepare_data(config, domain, fit_vocab=True, max_length=hparams.get("max_length"))
        if "max_length" in backbone_cls.config_cls.model_fields and "max_length" not in hparams:
            # Room for the longest training sequence (plus a margin for sampling).
            longest = max(int(d.lengths.max()) for d in (data.train, data.val) if d is not None)
            longest = max(longest, data.longest_augmented)
            hparams["max_length"] = longest + 8
        if config.backbone in auto_size.RULES and not auto_size.has_explicit_size(config.model):
            dist = DistributedContext.from_env()
            if dist.is_main:
                config, hparams, data, choice = _choose_size(config, domain, backbone_cls, hparams, data, device)
            if dist.enabled:  # the size rule times the machine: every rank takes rank 0's choice
                shared = [(config, hparams, choice)]
                torch.distributed.broadcast_object_list(shared, src=0)
                config, hparams, choice = shared[0]
                if not dist.is_main:
                    data = prepare_data(config, domain, fit_vocab=False, max_length=hparams.get("max_length"))
            if log is not None:
                log(f"model size (auto): {choice.reason}; set [model] d_model/n_layers/n_heads to choose it yourself")
        torch.manual_seed(config.seed)  # initial weights depend on the seed only, not on what ran before
        model = backbone_cls.from_domain(domain, **hparams)
    if not resume:
        model.fit_statistics(data.train)  # e.g. the length histogram of a masked-diffusion model
    return config, model, data, choice


#: One model-and-data preparation per view.
_PREPARE_BY_VIEW = {"tokens": _token_model_and_data, "graph": _graph_model_and_data}


def _run(config: RunConfig, out_dir: Path, resume: bool, on_validation, log, backbone_view: str, device) -> RunSummary:
    """:func:`run_training` after the checks, under the seeded generator."""
    t0 = time.perf_counter()
    config, model, data, choice = _PREPARE_BY_VIEW[backbone_view](config, out_dir, resume, log, device)
    data_seconds = time.perf_counter() - t0
    model.to(device)
    dist = DistributedContext.from_env()
    out_dir.mkdir(parents=True, exist_ok=True)
    record = choice.record() if choice is not None else None
    run_json = config.model_dump(mode="json")
    if record is not None:
        run_json[AUTO_SIZE_KEY] = record
    if dist.is_main:
        write_json(out_dir / RUN_CONFIG, run_json)
    trainer = Trainer(model, data.train, data.val, config.train, out_dir, on_validation=on_validation, dist=dist)
    result = trainer.fit(resume=resume)
    extra = {
        "training": {**dataclasses.asdict(result), "init_from": config.init_from, "ema_decay": config.train.ema_decay,
                     "world_size": dist.world_size},
        "data": {
            "source": config.data.source,
            "path": data.source_path,
            "n_loaded": data.n_loaded,
            "n_skipped_invalid": data.n_skipped_invalid,
            "n_train": len(data.train),
            "n_val": len(data.val) if data.val else 0,
            "dropped_too_long": data.train.dropped_too_long,
            "seed": config.seed,
        },
    }
    if record is not None:
        extra["auto_size"] = {k: record[k] for k in ("size", "n_params", "reason")}
    model_dir = out_dir / MODEL_DIR
    if dist.is_main:
        model_dir = model.save_pretrained(model_dir, extra=extra)
    dist.barrier()  # the model is on disk before any rank returns
    return RunSummary(
        out_dir=out_dir,
        model_dir=model_dir,
        n_parameters=model.num_parameters(),
        n_train=len(data.train),
        n_val=len(data.val) if data.val else 0,
        result=result,
        data_seconds=data_seconds,
        auto_size=record,
    )
