"""The training loop: AdamW, warm-up + cosine schedule (by steps or by
wall-clock), gradient clipping, bf16 autocast on CUDA, validation,
safetensors checkpoints, exact resume, progress bar and a CSV log."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Literal

import torch
from pydantic import Field
from tqdm.auto import tqdm

from molgen.core.config import StrictModel
from molgen.core.errors import CheckpointError, MolgenError
from molgen.core.serialization import (
    flatten_state,
    load_model_dir,
    load_tensors,
    read_json,
    save_model_dir,
    unflatten_state,
)
from molgen.train.data import SeededBatches
from molgen.train.distributed import DistributedContext, LossModule, micro_batches, shard
from molgen.train.ema import WeightAverage

CHECKPOINT_DIR = "checkpoint"
LOG_NAME = "train_log.csv"
LOG_FIELDS = ["step", "epoch", "lr", "train_loss", "val_loss", "tokens_per_s", "elapsed_s"]


class TrainConfig(StrictModel):
    """Optimisation settings."""

    batch_size: int = Field(128, gt=0)
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="final lr as a fraction of the peak")
    weight_decay: float = Field(0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = Field(100, ge=0)
    max_steps: int | None = Field(None, gt=0, description="step budget (default 2000 when no budget is set)")
    max_minutes: float | None = Field(None, gt=0, description="wall-clock budget of optimisation steps")
    grad_clip: float | None = Field(1.0, gt=0)
    ema_decay: float | None = Field(
        None, gt=0, lt=1, description="keep an exponential moving average of the weights with this decay (e.g. 0.999); "
        "validation and the saved model use the average (None: off)")
    keep_best: bool = Field(
        False, description="end the run with the weights (the average when ema_decay is set) that had the lowest "
        "validation loss, instead of the last ones: early stopping for small data sets that start to overfit")
    val_every: int = Field(250, gt=0)
    val_batches: int = Field(20, gt=0, description="validation batches per evaluation")
    checkpoint_every: int = Field(500, gt=0)
    log_every: int = Field(25, gt=0)
    micro_batch_size: int | None = Field(
        None, gt=0, description="rows per forward pass on each process; smaller than the process's share of "
        "batch_size accumulates gradients over several passes (the optimisation step, and so the result, is the "
        "same; None: the whole share at once)")
    bf16: bool = Field(True, description="bf16 autocast on CUDA (ignored on CPU); precision 'auto' follows it")
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="autocast of the forward pass: auto (bf16 on CUDA when bf16 is true, else float32), "
        "bf16 (on any device, the CPU included) or fp32")
    progress: bool | None = Field(None, description="progress bar (None: only on a terminal)")

    DEFAULT_MAX_STEPS: ClassVar[int] = 2000

    def with_default_budget(self) -> "TrainConfig":
        """A copy with ``max_steps`` set when neither budget is."""
        if self.max_steps is None and self.max_minutes is None:
            return self.model_copy(update={"max_steps": self.DEFAULT_MAX_STEPS})
        return self


@dataclass
class TrainResult:
    """Summary of a finished run."""

    steps: int
    train_loss: float
    val_loss: float | None
    tokens_per_s: float
    elapsed_s: float
    tokens_seen: int
    best_step: int | None = None  # with keep_best: the step whose weights were kept


class Trainer:
    """Optimises a :class:`~molgen.backbones.base.Generator`.

    Args:
        model: The model (already on its device).
        train_data: Training batches.
        val_data: Validation batches or None.
        config: Optimisation settings.
        out_dir: Run directory (checkpoint and log go there).
        on_validation: Called as ``on_validation(trainer, val_loss)`` after
            each validation, with the weights that would be saved in
            ``trainer.model`` (the average when ``ema_decay`` is set), e.g. to
            sample and score during a run. Its time is not counted in the
            wall-clock budget, and each training step puts the model back in
            training mode.
        dist: This process's place in a data-parallel run (default: alone).
            Each rank computes its share of every global batch; only rank 0
            writes the log and checkpoints.
    """

    def __init__(self, model, train_data: SeededBatches, val_data: SeededBatches | None, config: TrainConfig, out_dir: str | Path,
                 on_validation: Callable[["Trainer", float | None], None] | None = None, dist: DistributedContext | None = None):
        self.model = model
        self.dist = dist or DistributedContext()
        self.on_validation = on_validation
        self.train_data = train_data
        self.val_data = val_data
        self.out_dir = Path(out_dir)
        config = config.with_default_budget()
        if config.keep_best and val_data is None:
            raise MolgenError("keep_best needs validation data to pick the best weights: set data.val_fraction > 0 "
                              "(data sets under 20 entries get no validation split)")
        self.config = config
        self.device = model.device
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
            betas=config.betas,
        )
        self.step = 0
        self.elapsed = 0.0
        self.tokens_seen = 0
        self._val_cache = val_data.fixed_batches(config.val_batches) if val_data is not None else []
        self.use_bf16 = config.precision == "bf16" or (config.precision == "auto" and config.bf16 and self.device.type == "cuda")
        self.ema = WeightAverage(model, config.ema_decay) if config.ema_decay else None
        # keep_best: the lowest validation loss so far, its step and weights (on CPU)
        self.best_val: float | None = None
        self.best_step: int | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self._loss_module = LossModule(model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # Unused parameters exist (graph diffusion's last-layer edge/global outputs, a conditional
            # model's condition embedding on a batch that drops every condition); DDP must look for them.
            self._loss_module = DistributedDataParallel(
                self._loss_module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)

    # -- schedule ----------------------------------------------------------
    def progress_fraction(self) -> float:
        """Fraction of the budget (steps or minutes, whichever is nearer) used."""
        c = self.config
        fractions = []
        if c.max_steps:
            fractions.append(self.step / c.max_steps)
        if c.max_minutes:
            fractions.append(self.elapsed / (60 * c.max_minutes))
        return min(1.0, max(fractions))

    def learning_rate(self) -> float:
        """Linear warm-up, then cosine decay to ``min_lr_ratio * lr``."""
        c = self.config
        if self.step < c.warmup_steps:
            return c.lr * (self.step + 1) / c.warmup_steps
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress_fraction()))
        return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * cosine)

    def _done(self) -> bool:
        c = self.config
        return (c.max_steps is not None and self.step >= c.max_steps) or (
            c.max_minutes is not None and self.elapsed >= 60 * c.max_minutes
        )

    # -- steps ---------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.use_bf16)

    def train_step(self, batch: dict[str, torch.Tensor]) -> tuple[float, int]:
        """One optimisation step on a whole batch; returns (loss, predicted tokens)."""
        return self._optimise([batch])

    def train_rows(self, rows) -> tuple[float, int]:
        """One optimisation step on the global batch ``rows`` of the training
        data: this rank's share, in micro-batches when configured; returns the
        global (loss, predicted tokens)."""
        mine = shard(rows, self.dist.rank, self.dist.world_size)
        return self._optimise([self.train_data.batch_of(part, self.step)
                               for part in micro_batches(mine, self.config.micro_batch_size)])

    def _optimise(self, batches: list[dict[str, torch.Tensor]]) -> tuple[float, int]:
        """Accumulate the gradients of ``batches`` (this rank's share of the step)
        and take the step. Each piece's mean loss is weighted by its tokens and
        the sum divided by the tokens of the whole global batch, so 2 ranks x
        B/2 rows, or micro-batches, give the gradient of one pass over B rows
        (exactly, for losses that are means over their ``tokens``)."""
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.optimizer.zero_grad(set_to_none=True)
        pooled = len(batches) > 1 or self.dist.enabled
        weighted, count, tokens = 0.0, 0, 0
        for k, batch in enumerate(batches):
            batch = {key: v.to(self.device, non_blocking=True) for key, v in batch.items()}
            # Gradients are all-reduced once, with the last piece of the step.
            last = k == len(batches) - 1
            sync = contextlib.nullcontext() if last or not self.dist.enabled else self._loss_module.no_sync()
            with sync:
                with self._autocast():
                    out = self._loss_module(batch)
                loss = float(out["loss"].detach())
                if not math.isfinite(loss):  # stop before the weights are corrupted
                    raise MolgenError(
                        f"training diverged at step {self.step + 1} (loss {loss}); lower the learning rate "
                        f"and resume from the last checkpoint in {self.out_dir / CHECKPOINT_DIR}"
                    )
                tokens = int(out.get("tokens", torch.tensor(0)))
                weight = max(tokens, 1) if pooled else 1  # a backbone that reports no tokens: each piece counts once
                (out["loss"] * weight).backward()
            weighted += loss * weight
            count += weight
        if pooled:
            weighted, total = self.dist.all_reduce_sum([weighted, count], self.device)
            # DDP averaged the token-weighted gradients over ranks: times world / tokens gives their sum / tokens.
            scale = self.dist.world_size / max(total, 1.0)
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
            loss, tokens = weighted / max(total, 1.0), int(total)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model, self.step)
        return loss, tokens

    @torch.no_grad()
    def validate(self) -> float | None:
        """Token-weighted mean validation loss of the weights that will be
        saved (the average when ``ema_decay`` is set; None without
        validation data)."""
        if not self._val_cache:
            return None
        if self.ema is not None:
            with self.ema.applied(self.model):
                return self._track_best(self._validate())
        return self._track_best(self._validate())

    def _track_best(self, val_loss: float) -> float:
        """With ``keep_best``, copy the weights being validated when they beat
        the best so far."""
        if self.config.keep_best and (self.best_val is None or val_loss < self.best_val):
            self.best_val, self.best_step = val_loss, self.step
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
        return val_loss

    def _validate(self) -> float:
        self.model.eval()
        total, count = 0.0, 0
        for batch in self._val_cache:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with self._autocast():
                out = self.model.loss(batch)
            n = int(out["tokens"])
            total += float(out["loss"]) * n
            count += n
        return total / max(count, 1)

    def _call_on_validation(self, val_loss: float | None) -> None:
        if self.on_validation is None:
            return
        if self.ema is not None:
            with self.ema.applied(self.model):
                self.on_validation(self, val_loss)
        else:
            self.on_validation(self, val_loss)

    # -- checkpoints -----------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write ``out_dir/checkpoint`` (model, optimizer, trainer state); only rank 0 writes."""
        path = self.out_dir / CHECKPOINT_DIR
        if not self.dist.is_main:
            return path
        tensors, skeleton = flatten_state(self.optimizer.state_dict(), "optim")
        state = {"step": self.step, "elapsed": self.elapsed, "tokens_seen": self.tokens_seen, "optimizer": skeleton,
                 "best_val": self.best_val, "best_step": self.best_step}
        extra_tensors = {"optimizer.safetensors": tensors}
        if self.ema is not None:
            extra_tensors["ema.safetensors"] = self.ema.tensors()
        if self.best_weights is not None:
            extra_tensors["best.safetensors"] = self.best_weights
        return save_model_dir(
            self.out_dir / CHECKPOINT_DIR,
            self.model.describe(),
            self.model.state_dict(),
            extra_tensors=extra_tensors,
            extra_json={"trainer_state.json": state},
        )

    def load_checkpoint(self) -> None:
        """Restore model, optimizer and counters from ``out_dir/checkpoint``.

        Raises:
            CheckpointError: missing or corrupted checkpoint.
        """
        path = self.out_dir / CHECKPOINT_DIR
        _, weights = load_model_dir(path, self.device)
        state = read_json(path / "trainer_state.json")
        optim_tensors = load_tensors(path / "optimizer.safetensors", self.device)
        try:
            self.model.load_state_dict(weights, strict=True)
            self.optimizer.load_state_dict(unflatten_state(optim_tensors, state["optimizer"]))
            self.step = int(state["step"])
            self.elapsed = float(state["elapsed"])
            self.tokens_seen = int(state.get("tokens_seen", 0))
            best_path = path / "best.safetensors"
            if self.config.keep_best and best_path.is_file() and state.get("best_val") is not None:
                self.best_val, self.best_step = float(state["best_val"]), int(state["best_step"])
                self.best_weights = load_tensors(best_path, "cpu")
            if self.ema is not None:
                ema_path = path / "ema.safetensors"
                if ema_path.is_file():
                    self.ema.load(load_tensors(ema_path, self.device))
                else:  # a run trained without an average starts one from the resumed weights
                    self.ema.reset(self.model)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not match this model: {str(exc).splitlines()[0]}") from None

    # -- loop -----------------------------------------------------------------
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until the step or time budget is used.

        Args:
            resume: Continue from ``out_dir/checkpoint`` (and append to the log).

        Returns:
            Summary of the run.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self.load_checkpoint()
            if self.config.max_steps is not None and self.step > self.config.max_steps:
                raise MolgenError(f"the run in {self.out_dir} is already at step {self.step}: give --max-steps above it "
                                  "(or --max-minutes) to train further")
        log_path = self.out_dir / LOG_NAME
        new_log = not (resume and log_path.exists())
        main = self.dist.is_main
        log_file = open(log_path if main else os.devnull, "w" if new_log or not main else "a", newline="")
        writer = csv.DictWriter(log_file, fieldnames=LOG_FIELDS)
        if new_log:
            writer.writeheader()
        c = self.config
        bar = tqdm(
            total=c.max_steps,
            initial=self.step,
            disable=(None if c.progress is None else not c.progress) if main else True,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
        last_loss, val_loss = float("nan"), None
        try:
            while not self._done():
                t0 = time.perf_counter()
                loss, tokens = self.train_rows(self.train_data.rows(self.step))
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                self.step += 1
                self.elapsed += dt
                self.tokens_seen += tokens
                window_loss += loss
                window_steps += 1
                window_tokens += tokens
                window_time += dt
                last_loss = loss
                bar.update(1)
                is_val = self.step % c.val_every == 0 or self._done()
                if self.step % c.log_every == 0 or is_val:
                    if is_val:
                        val_loss = self.validate()  # every rank: same data, same weights, same figure
                        if main:
                            self._call_on_validation(val_loss)
                    row = {
                        "step": self.step,
                        "epoch": round(self.step / self.train_data.batches_per_epoch, 4),
                        "lr": f"{self.learning_rate():.3e}",
                        "train_loss": round(window_loss / window_steps, 5),
                        "val_loss": "" if not is_val or val_loss is None else round(val_loss, 5),
                        "tokens_per_s": round(window_tokens / max(window_time, 1e-9), 1),
                        "elapsed_s": round(self.elapsed, 2),
                    }
                    writer.writerow(row)
                    log_file.flush()
                    bar.set_postfix(loss=row["train_loss"], val=row["val_loss"] or "-")
                    window_loss, window_steps, window_tokens, window_time = 0.0, 0, 0, 0.0
                if self.step % c.checkpoint_every == 0:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            self.save_checkpoint()  # never lose the work done so far
            raise
        finally:
            bar.close()
            log_file.close()
        self.save_checkpoint()
        if val_loss is None:
            val_loss = self.validate()
        if self.ema is not None:  # what the caller saves and samples from is the average
            self.ema.copy_to(self.model)
        if self.best_weights is not None:  # the best weights were recorded as validated (averaged or not)
            self.model.load_state_dict(self.best_weights)
            val_loss = self.best_val
        return TrainResult(
            steps=self.step,
            train_loss=last_loss,
            val_loss=val_loss,
            tokens_per_s=self.tokens_seen / max(self.elapsed, 1e-9),
            elapsed_s=self.elapsed,
            tokens_seen=self.tokens_seen,
            best_step=self.best_step,
        )
