"""Train a generator on a data set: load and validate data, build the
vocabulary and model, split, train, save."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from molgen.backbones.base import Generator
from molgen.core.config import StrictModel, read_toml, validate
from molgen.core.device import select_device
from molgen.core.registry import BACKBONES, DOMAINS
from molgen.core.serialization import read_json, write_json
from molgen.core.errors import DataError, MolgenError, ParseError
from molgen.datasets import load_texts
from molgen.train import GraphBatches, SeededBatches, TokenBatches, TrainConfig, Trainer, TrainResult
from molgen.train.trainer import CHECKPOINT_DIR

RUN_CONFIG = "run.json"
MODEL_DIR = "model"


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
    seed: int = 0
    device: str = "auto"
    init_from: str | None = Field(None, description="saved model directory to fine-tune")
    data: DataConfig = DataConfig()
    model: dict[str, Any] = Field(default_factory=dict, description="backbone hyper-parameters")
    train: TrainConfig = TrainConfig()

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
    loaded = load_texts(
        d.source, domain, limit=d.limit, seed=config.seed, on_invalid=d.on_invalid, canonicalize=d.canonicalize
    )
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
        lines=[loaded.lines[i] for i in train_idx], **common,
    )
    val = None
    if len(val_idx):
        val = TokenBatches(
            [loaded.texts[i] for i in val_idx], batch_size=config.train.batch_size, seed=config.seed,
            lines=[loaded.lines[i] for i in val_idx], **common,
        )
    return PreparedData(train, val, str(loaded.path), len(loaded.texts), len(loaded.skipped), longest_augmented)


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


def _graph_model_and_data(config: RunConfig, out_dir: Path, resume: bool):
    """Build (or reload) a graph-view model and its batches."""
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
    return model, PreparedData(train_batches, val_batches, path, n_loaded, skipped)


def run_training(config: RunConfig, out_dir: str | Path, resume: bool = False, on_validation=None) -> RunSummary:
    """Train a generator and save it.

    Layout of ``out_dir``: ``model/`` (final model: ``config.json`` +
    ``model.safetensors``), ``checkpoint/`` (resumable state),
    ``train_log.csv`` and ``run.json`` (the settings used).

    Args:
        config: Run settings. With ``resume``, only the budget
            (``train.max_steps``/``max_minutes``) of ``config`` is used; the
            rest comes from ``out_dir/run.json``.
        out_dir: Run directory.
        resume: Continue from ``out_dir/checkpoint``.
        on_validation: Optional ``callback(trainer, val_loss)`` run after each
            validation (see :class:`~molgen.train.Trainer`).

    Returns:
        Summary with paths and measured figures.
    """
    out_dir = Path(out_dir)
    if resume:
        saved = validate(RunConfig, read_json(out_dir / RUN_CONFIG), where=str(out_dir / RUN_CONFIG))
        if config.train.max_steps is not None or config.train.max_minutes is not None:
            saved.train.max_steps = config.train.max_steps
            saved.train.max_minutes = config.train.max_minutes
        config = saved
    backbone_view = BACKBONES.get(config.backbone).view  # fail early, listing valid names
    device = select_device(config.device)
    t0 = time.perf_counter()
    if backbone_view == "graph":
        model, data = _graph_model_and_data(config, out_dir, resume)
        domain = model.domain
    elif resume or config.init_from:  # the saved vocabulary and hyper-parameters are kept
        model = Generator.from_pretrained(out_dir / CHECKPOINT_DIR if resume else config.init_from)
        domain = model.domain
        data = prepare_data(config, domain, fit_vocab=False, max_length=model.config.max_length)
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
        model = backbone_cls.from_domain(domain, **hparams)
    if backbone_view != "graph" and not resume and hasattr(model, "fit_statistics"):
        model.fit_statistics(data.train)  # e.g. the length histogram of a masked-diffusion model
    data_seconds = time.perf_counter() - t0
    model.to(device)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / RUN_CONFIG, config.model_dump(mode="json"))
    trainer = Trainer(model, data.train, data.val, config.train, out_dir, on_validation=on_validation)
    result = trainer.fit(resume=resume)
    extra = {
        "training": {**dataclasses.asdict(result), "init_from": config.init_from, "ema_decay": config.train.ema_decay},
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
    model_dir = model.save_pretrained(out_dir / MODEL_DIR, extra=extra)
    return RunSummary(
        out_dir=out_dir,
        model_dir=model_dir,
        n_parameters=model.num_parameters(),
        n_train=len(data.train),
        n_val=len(data.val) if data.val else 0,
        result=result,
        data_seconds=data_seconds,
    )
