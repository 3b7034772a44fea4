"""Model size chosen from the data and the training budget when the user
gives none.

The rule (:func:`choose_size`): walk a ladder of transformer sizes from the
smallest up and keep the largest one that

1. sees at least ``tokens_per_param`` training tokens per parameter within
   the budget (a step budget gives the steps directly; a time budget is
   turned into steps with the tokens/s of a few timed steps of that size on
   this machine), and
2. is no larger than ``params_per_data_token`` parameters per token of the
   training set (so a tiny data set never gets a large model), and
3. gets at least ``min_steps`` optimisation steps.

When no size passes, the smallest is used. The thresholds are per backbone
(:data:`RULES`), tuned on 4-minute one-thread runs on ``nci-5k``
(``benchmarks/bench_train_defaults.py``). Only hyper-parameters the user did
not set are filled in (:func:`auto_hparams`, :func:`auto_train_settings`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

#: Model keys that fix the size: any of them in ``[model]`` turns the rule off.
SIZE_KEYS = ("d_model", "n_layers", "n_heads", "d_ff", "encoder_layers")


@dataclass(frozen=True)
class ModelSize:
    """One rung of the size ladder (MLP width is 4 x ``d_model``)."""

    d_model: int
    n_layers: int
    n_heads: int

    @property
    def name(self) -> str:
        """Short label, e.g. ``d128x3``."""
        return f"d{self.d_model}x{self.n_layers}"

    def hparams(self) -> dict[str, int]:
        """The size as backbone hyper-parameters."""
        return {"d_model": self.d_model, "n_layers": self.n_layers, "n_heads": self.n_heads}


#: Candidate sizes, smallest first (head width 16-64, even for rotary embeddings).
LADDER: tuple[ModelSize, ...] = (
    ModelSize(64, 2, 4),
    ModelSize(96, 3, 4),
    ModelSize(128, 3, 4),
    ModelSize(192, 4, 6),
    ModelSize(256, 4, 8),
    ModelSize(384, 6, 8),
    ModelSize(512, 8, 8),
)


@dataclass(frozen=True)
class SizeRule:
    """Thresholds of :func:`choose_size` for one backbone.

    Attributes:
        tokens_per_param: Training tokens the budget must give per parameter.
        params_per_data_token: Largest parameter count per training-set token.
        min_steps: Fewest optimisation steps a size must get.
    """

    tokens_per_param: float = 25.0
    params_per_data_token: float = 20.0
    min_steps: int = 500


#: Tuned on 4-minute one-thread runs on nci-5k (benchmarks/RESULTS.md,
#: "Training defaults"): there, validity rose with passes over the data more
#: than with width (d64x2 with ~4,000 steps beat d96x3 and d128x3 with
#: fewer), hence 25 tokens per parameter. Masked diffusion learns less per
#: token (each step predicts a random part of the canvas): 40.
RULES: dict[str, SizeRule] = {
    "autoregressive": SizeRule(tokens_per_param=25.0),
    "vae": SizeRule(tokens_per_param=25.0),
    "masked-diffusion": SizeRule(tokens_per_param=40.0),
}


@dataclass
class Candidate:
    """A ladder size with what is known about it on this machine.

    Attributes:
        size: The size.
        n_params: Trainable parameters with this data's vocabulary.
        tokens_per_s: Measured training throughput (None: not timed, as
            with a step budget).
    """

    size: ModelSize
    n_params: int
    tokens_per_s: float | None = None


@dataclass
class SizeChoice:
    """The chosen size and why (recorded in ``run.json`` as ``auto_size``)."""

    size: ModelSize
    n_params: int
    steps: int
    epochs: float
    tokens_per_param: float
    reason: str
    rule: dict[str, float] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)
    probe_seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out = asdict(self)
        out["size"] = self.size.name
        return out


def has_explicit_size(model_hparams: dict[str, Any]) -> bool:
    """Whether the user fixed the model size (any of :data:`SIZE_KEYS`)."""
    return any(key in model_hparams for key in SIZE_KEYS)


def _estimated_steps(c: Candidate, max_steps: int | None, max_minutes: float | None, tokens_per_step: float) -> int:
    """Optimisation steps ``c`` gets: the step budget, or the time budget at
    its measured throughput (the smaller when both are set)."""
    steps = []
    if max_steps is not None:
        steps.append(max_steps)
    if max_minutes is not None:
        if c.tokens_per_s is None:
            raise ValueError(f"{c.size.name}: a time budget needs a measured tokens_per_s")
        steps.append(int(60 * max_minutes * c.tokens_per_s / tokens_per_step))
    if not steps:
        raise ValueError("choose_size needs max_steps or max_minutes")
    return min(steps)


def evaluate_candidate(
    c: Candidate, *, n_train: int, tokens_per_example: float, batch_size: int,
    max_steps: int | None, max_minutes: float | None, rule: SizeRule,
) -> dict[str, Any]:
    """Steps, epochs and tokens per parameter ``c`` gets, and whether it passes ``rule``."""
    tokens_per_step = batch_size * tokens_per_example
    steps = _estimated_steps(c, max_steps, max_minutes, tokens_per_step)
    data_tokens = n_train * tokens_per_example
    tpp = steps * tokens_per_step / c.n_params
    checks = {
        "compute": tpp >= rule.tokens_per_param,
        "data": c.n_params <= rule.params_per_data_token * data_tokens,
        "steps": steps >= rule.min_steps,
    }
    return {
        "size": c.size.name, "n_params": c.n_params, "tokens_per_s": c.tokens_per_s, "steps": steps,
        "epochs": round(steps * batch_size / max(n_train, 1), 2), "tokens_per_param": round(tpp, 2),
        "passes": all(checks.values()), "fails": [name for name, ok in checks.items() if not ok],
    }


def choose_size(
    candidates: Sequence[Candidate], *, n_train: int, tokens_per_example: float, batch_size: int,
    max_steps: int | None = None, max_minutes: float | None = None, rule: SizeRule = SizeRule(),
) -> SizeChoice:
    """The largest candidate that passes ``rule`` (else the smallest).

    Args:
        candidates: Sizes, smallest first (``tokens_per_s`` needed with a time budget).
        n_train: Training examples.
        tokens_per_example: Mean predicted tokens per example.
        batch_size: Examples per step.
        max_steps: Step budget.
        max_minutes: Time budget.
        rule: Thresholds.

    Returns:
        The choice, with every candidate's figures and the reason.
    """
    if not candidates:
        raise ValueError("no candidate sizes")
    kw = dict(n_train=n_train, tokens_per_example=tokens_per_example, batch_size=batch_size,
              max_steps=max_steps, max_minutes=max_minutes, rule=rule)
    rows = [evaluate_candidate(c, **kw) for c in candidates]
    passing = [i for i, row in enumerate(rows) if row["passes"]]
    pick = passing[-1] if passing else 0
    row, c = rows[pick], candidates[pick]
    budget = f"{max_minutes:g} min" if max_minutes is not None and (max_steps is None or row["steps"] < max_steps) \
        else f"{row['steps']} steps"
    reason = (f"{c.size.name} ({c.n_params:,} parameters): {row['steps']:,} steps, {row['epochs']:.1f} epochs of "
              f"{n_train:,} examples, {row['tokens_per_param']:.1f} tokens/parameter in {budget}")
    if not passing:
        reason += f"; no size passes ({', '.join(row['fails'])}), so the smallest"
    elif pick + 1 < len(rows):
        nxt = rows[pick + 1]
        reason += f"; {nxt['size']} fails {'/'.join(nxt['fails'])}"
    return SizeChoice(
        size=c.size, n_params=c.n_params, steps=row["steps"], epochs=row["epochs"],
        tokens_per_param=row["tokens_per_param"], reason=reason, rule=asdict(rule), candidates=rows,
    )


def measure_tokens_per_s(model, batches: Sequence[dict[str, torch.Tensor]], lr: float = 1e-3) -> float:
    """Training throughput of ``model``: predicted tokens per second of full
    optimisation steps (forward, backward, AdamW) on ``batches``, the first
    one untimed (warm-up). The model's weights change; use a throw-away copy.

    Args:
        model: A generator on its device.
        batches: At least two token batches.
        lr: Learning rate of the throw-away optimizer.

    Returns:
        Tokens per second.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    seconds, tokens = 0.0, 0
    for i, batch in enumerate(batches):
        batch = {k: v.to(model.device) for k, v in batch.items()}
        start = time.perf_counter()
        out = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        optimizer.step()
        if i:
            seconds += time.perf_counter() - start
            tokens += int(out["tokens"])
    return tokens / max(seconds, 1e-9)


def probe_ladder(
    build: Callable[[ModelSize], Any], batches: Sequence[dict[str, torch.Tensor]], *, n_train: int,
    tokens_per_example: float, batch_size: int, max_steps: int | None, max_minutes: float | None,
    rule: SizeRule, ladder: Sequence[ModelSize] = LADDER,
) -> SizeChoice:
    """Measure the ladder bottom-up and choose (:func:`choose_size`).

    With a time budget each size is timed on ``batches``; the walk stops at
    the first size that fails the rule, since larger ones are slower and
    bigger. With only a step budget nothing is timed.

    Args:
        build: ``size -> model`` (untrained, on the training device).
        batches: Training batches for timing (two or three are enough).
        n_train, tokens_per_example, batch_size, max_steps, max_minutes, rule:
            As for :func:`choose_size`.
        ladder: Sizes, smallest first.

    Returns:
        The choice, with ``probe_seconds`` set.
    """
    start = time.perf_counter()
    kw = dict(n_train=n_train, tokens_per_example=tokens_per_example, batch_size=batch_size,
              max_steps=max_steps, max_minutes=max_minutes, rule=rule)
    candidates: list[Candidate] = []
    # Timing moves the global RNG; keep the caller's stream where it was.
    with torch.random.fork_rng(devices=[]):
        for size in ladder:
            model = build(size)
            c = Candidate(size, model.num_parameters())
            if max_minutes is not None:
                c.tokens_per_s = measure_tokens_per_s(model, batches)
            del model
            candidates.append(c)
            if not evaluate_candidate(c, **kw)["passes"]:
                break
    choice = choose_size(candidates, **kw)
    choice.probe_seconds = round(time.perf_counter() - start, 2)
    return choice


def canvas_length(lengths: Sequence[int], coverage: float = 0.95) -> int:
    """Canvas of an auto-sized masked-diffusion model: the length (BOS and
    EOS included) that holds ``coverage`` of the training sequences. The
    canvas is always denoised in full, so one long outlier would make every
    step pay for it; the longer sequences are left out of training.

    Args:
        lengths: Training sequence lengths.
        coverage: Fraction of sequences that must fit.

    Returns:
        The canvas length (at least 3).
    """
    ordered = sorted(int(n) for n in lengths)
    if not ordered:
        raise ValueError("no lengths")
    index = min(len(ordered) - 1, max(0, int(round(coverage * len(ordered))) - 1))
    return max(3, ordered[index])


def auto_batch_settings(explicit: set[str]) -> dict[str, Any]:
    """Batch size of an auto-sized run when the user did not set one: 64
    (small models on a CPU learn more per second from more, smaller steps
    than from the 128 default).

    Args:
        explicit: ``[train]`` keys the user set.

    Returns:
        ``{key: value}`` to apply to the train settings.
    """
    return {} if "batch_size" in explicit else {"batch_size": 64}


def auto_train_settings(choice: SizeChoice, explicit: set[str]) -> dict[str, Any]:
    """Optimisation settings for an auto-sized model, for keys the user did
    not set: peak lr ``5e-3 * min(1, sqrt(128 / d_model))`` (small models
    take larger steps than the 1e-3 default), warm-up of 5 % of the expected
    steps (20 to 100), cosine decay to 2 % of the peak (``min_lr_ratio``),
    and a moving average of the weights over about the last tenth of the run
    (``ema_decay = 1 - 10 / steps``, within 0.99 to 0.999), which is what is
    saved.

    Args:
        choice: The chosen size.
        explicit: ``[train]`` keys the user set.

    Returns:
        ``{key: value}`` to apply to the train settings.
    """
    steps = max(choice.steps, 1)
    settings = {
        "lr": round(5e-3 * min(1.0, (128 / choice.size.d_model) ** 0.5), 5),
        "warmup_steps": int(min(100, max(20, 0.05 * steps))),
        "min_lr_ratio": 0.02,
        "ema_decay": round(min(0.999, max(0.99, 1 - 10 / steps)), 4),
    }
    return {k: v for k, v in settings.items() if k not in explicit}


def auto_hparams(backbone: str, choice: SizeChoice, given: dict[str, Any]) -> dict[str, Any]:
    """Backbone hyper-parameters that follow from the chosen size and the
    expected steps, for keys the user did not set. VAE: KL annealing over
    the first third of the expected steps (instead of a fixed 2,000, which a
    short run never finishes, leaving the prior unmatched). Masked diffusion:
    lengths drawn from the training histogram (``length_model = "sampled"``),
    so the short run spends its steps on content rather than on padding.

    Args:
        backbone: Backbone name.
        choice: The chosen size.
        given: ``[model]`` keys the user set.

    Returns:
        Hyper-parameters: the size plus backbone extras.
    """
    out: dict[str, Any] = dict(choice.size.hparams())
    if backbone == "vae":
        out["kl_warmup_steps"] = max(1, choice.steps // 3)
    if backbone == "masked-diffusion":
        out["length_model"] = "sampled"
    return {k: v for k, v in out.items() if k not in given}
