"""Ask/tell campaigns: the optimiser proposes a batch, the lab measures it
hours or days later, the answers come back, the next batch is proposed.

State lives in the run directory's SQLite store (:mod:`molgen.loops.store`):
every asked candidate is a row of ``asks`` (pending until answered), every
answer also a row of ``candidates`` (the measured value is its total). A
batch is committed in one transaction before :meth:`AskTellCampaign.ask`
returns, answers in one transaction before :meth:`AskTellCampaign.tell`
returns, so a process killed at any moment loses no answer it acknowledged
and never re-asks a pending candidate as new.

What each ask does, in order:

1. **learn** once new measurements have arrived: ``learn_steps``
   prior-regularised updates (REINVENT's) over all measurements, rewards =
   ranks of the measured values, so no scale has to be known; the
   generator's state and the set of learned ids are checkpointed together,
   so a restart never learns from the same answers twice;
2. **propose** a pool from the generator, minus everything ever asked;
3. **filter and pre-screen** with the objective (the cheap fidelity): its
   filters drop candidates, and with ``prescreen_fraction`` < 1 only the
   best share by its score goes on;
4. **predict** the measured property with a Tanimoto GP fitted on the
   measurements alone (molecules; once ``min_measurements`` exist);
5. **select** a diverse batch (:func:`~molgen.loops.acquisition.select_batch`:
   GP-BUCB with a similarity cap) and store it as pending.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Literal, Sequence

import numpy as np
from pydantic import Field
from scipy.stats import rankdata

from molgen.core.config import StrictModel
from molgen.core.errors import ConfigError, DataError, MolgenError
from molgen.loops.acquisition import select_batch
from molgen.loops.engine import RunDirectory
from molgen.loops.store import AskRecord


class UnknownIdError(MolgenError, KeyError):
    """An answer names an id this campaign never asked."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConflictError(MolgenError):
    """An answer contradicts one already recorded for the same id."""


class BudgetSpentError(MolgenError):
    """The campaign has asked as many candidates as its budget allows."""


class AskTellConfig(StrictModel):
    """Settings of an ask/tell campaign (saved with it)."""

    budget: int = Field(gt=0, description="measurements the lab will make: candidates ever asked (failed ones count)")
    batch_size: int = Field(24, gt=0, le=10_000, description="candidates per ask when the caller gives no size")
    pool_size: int = Field(1000, gt=0, le=100_000, description="proposals drawn from the generator per ask")
    prescreen_fraction: float = Field(
        1.0, gt=0, le=1, description="multi-fidelity: keep only this best share of the pool by the objective's (cheap) "
        "score before the surrogate ranks it (1: filters only)")
    acquisition: Literal["ucb", "thompson", "greedy", "random"] = "ucb"
    beta: float = Field(2.0, ge=0, description="UCB exploration weight (in measured-value std units)")
    max_similarity: float = Field(
        0.7, gt=0, le=1, description="Tanimoto cap inside a batch: a candidate this similar to an earlier pick waits "
        "while others remain (1: off)")
    min_measurements: int = Field(5, ge=2, description="measured values before the surrogate is used (cold start before)")
    maximize: bool = Field(True, description="False when lower measured values are better (IC50, docking score)")
    learn: bool = Field(True, description="update the generator from the measurements (autoregressive generators)")
    learn_steps: int = Field(
        4, ge=1, le=100, description="policy updates per ask that brings new measurements, each over every measurement "
        "so far (a lab batch is small: one step on it barely moves the generator)")
    seed: int = 0


@dataclass
class Proposal:
    """One candidate asked of the lab.

    Attributes:
        id: What the lab reports back with its measurement.
        text: The object (a SMILES for molecules).
        key: Its canonical key.
        batch: The ask that proposed it.
        predicted: Surrogate mean (None before the surrogate is used).
        uncertainty: Surrogate std (None likewise).
        cheap_score: The objective's score (None without an objective with terms).
        why: Why it was chosen.
        status: ``pending``, ``measured`` or ``failed``.
        value: The measurement, once told.
        error: Why the measurement failed, once told.
    """

    id: str
    text: str
    key: str
    batch: int
    predicted: float | None
    uncertainty: float | None
    cheap_score: float | None
    why: str
    status: str = "pending"
    value: float | None = None
    error: str | None = None

    @classmethod
    def of(cls, record: AskRecord) -> "Proposal":
        return cls(record.id, record.text, record.key, record.batch, record.mean, record.std, record.cheap, record.why,
                   record.status, record.value, record.error)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass
class Measurement:
    """One answer of the lab: a value, or a failure with its reason.

    Attributes:
        id: The proposal's id.
        value: The measured value (finite).
        error: Why it could not be measured (then ``value`` is None).
    """

    id: str
    value: float | None = None
    error: str | None = None


@dataclass
class TellReport:
    """What a tell did.

    Attributes:
        recorded: Answers stored now (values and failures).
        failed: Of those, failures.
        duplicates: Answers identical to ones already stored (ignored).
        pending: Candidates still waiting for the lab.
        measured: Measured values stored in all.
        remaining_budget: Candidates the campaign may still ask.
    """

    recorded: int
    failed: int
    duplicates: int
    pending: int
    measured: int
    remaining_budget: int

    def to_dict(self) -> dict[str, int]:
        """JSON-ready fields."""
        return asdict(self)


def parse_measurement(item: Any, where: str = "answer") -> Measurement:
    """A :class:`Measurement` from a dict (``id``, ``value`` and/or ``error``) or itself, checked.

    Args:
        item: The answer.
        where: Names it in messages (``row 3``).

    Returns:
        The measurement.

    Raises:
        DataError: no id, a value that is not a finite number, neither value nor
            error, or both.
    """
    if isinstance(item, Measurement):
        ident, value, error = item.id, item.value, item.error
    elif isinstance(item, dict):
        ident, value, error = item.get("id"), item.get("value"), item.get("error")
    else:
        raise DataError(f"{where}: expected an object with id and value or error, got {type(item).__name__}")
    if not isinstance(ident, str) or not ident.strip():
        raise DataError(f"{where}: missing id")
    error = None if error is None or (isinstance(error, str) and not error.strip()) else str(error).strip()
    if isinstance(value, str):
        value = value.strip() or None
    if value is not None:
        if isinstance(value, bool):
            raise DataError(f"{where} ({ident}): value must be a number, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where} ({ident}): value must be a number, got {value!r}") from None
        if not math.isfinite(value):
            raise DataError(f"{where} ({ident}): value {value} is not finite; report a failed measurement with an error instead")
    if value is None and error is None:
        raise DataError(f"{where} ({ident}): give a value or an error (why it could not be measured)")
    if value is not None and error is not None:
        raise DataError(f"{where} ({ident}): give a value or an error, not both")
    return Measurement(ident.strip(), value, error)


class GeneratorSampler:
    """A campaign strategy that only samples (the generator stays as it is):
    for backbones without an exact likelihood (VAE, diffusion), or when
    learning is off. Its random state is checkpointed like a learner's.

    Args:
        generator: Any molgen generator.
        seed: Seed of its sampling.
    """

    name = "sampler"

    def __init__(self, generator, seed: int = 0):
        from molgen.core.seeding import make_generator

        self.generator, self.domain, self.device = generator, generator.domain, generator.device
        self.random = make_generator(seed, self.device)

    def propose(self, n: int) -> list[str]:
        """``n`` texts drawn from the generator."""
        return self.generator.sample_texts(n, generator=self.random)

    def state(self) -> tuple[dict, dict]:
        return {"rng.sample": self.random.get_state()}, {}

    def load_state(self, tensors: dict, data: dict) -> None:
        self.random.set_state(tensors["rng.sample"].cpu())


class _CampaignState:
    """Checkpoint of the generator together with the ids it has learned
    from, so a crash between the two can never make it learn an answer twice."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.name = strategy.name
        self.device = strategy.device
        self.learned: set[str] = set()

    def state(self) -> tuple[dict, dict]:
        tensors, data = self.strategy.state()
        return tensors, {**data, "learned": sorted(self.learned)}

    def load_state(self, tensors: dict, data: dict) -> None:
        self.strategy.load_state(tensors, data)
        self.learned = set(data.get("learned", []))


class AskTellCampaign:
    """An ask/tell campaign on an open run directory.

    Args:
        run: The open (locked) :class:`~molgen.loops.engine.RunDirectory`.
        strategy: Proposes texts (``propose(n)``) and, for learning,
            ``learn(texts, keys, rewards)`` (e.g.
            :class:`~molgen.loops.reinforce.PriorRegularizedRL`); ``state()`` /
            ``load_state()`` are checkpointed.
        config: Settings.
        objective: Cheap fidelity and filters
            (:class:`~molgen.scoring.objective.Objective`), or None.
    """

    def __init__(self, run: RunDirectory, strategy, config: AskTellConfig, objective=None):
        self.run, self.store = run, run.store
        self.strategy, self.domain = strategy, strategy.domain
        self.config, self.objective = config, objective
        self.checkpoint = _CampaignState(strategy)
        run.load_checkpoint(self.checkpoint)
        self.molecules = bool(getattr(self.domain, "exports_sdf", False))
        self.can_learn = config.learn and hasattr(strategy, "learn")

    # -- ask ------------------------------------------------------------------
    def ask(self, n: int | None = None, request: str | None = None) -> list[Proposal]:
        """Propose a batch and store it as pending.

        Args:
            n: Batch size (default ``batch_size``; capped by the budget left).
            request: Client's id of this request: asking again with the same
                id returns the same batch instead of a new one (a retried HTTP
                request or a lost reply spends no budget).

        Returns:
            The proposals, best first by the acquisition.

        Raises:
            ConfigError: ``n`` < 1; BudgetSpentError: nothing left to ask;
            MolgenError: the generator proposes nothing new.
        """
        if request is not None:
            earlier = self.store.asks(request=request)
            if earlier:
                return [Proposal.of(r) for r in earlier]
        n = self.config.batch_size if n is None else int(n)
        if n < 1:
            raise ConfigError(f"ask for at least one candidate (got {n})")
        left = self.remaining_budget()
        if left <= 0:
            raise BudgetSpentError(f"the campaign's budget of {self.config.budget} candidates is spent; raise it to ask for more")
        n = min(n, left)
        self._learn()
        batch = self.store.last_batch() + 1
        rng = np.random.default_rng([self.config.seed, batch])
        texts, keys, cheap, notes = self._pool(n)
        measured = self.store.asks(status="measured")
        mean, cov, noise, features, surrogate = self._predict(keys, measured)
        similarity = None
        if self.molecules:
            from molgen.predictors.gaussian_process import fingerprint_matrix, tanimoto

            features = fingerprint_matrix(keys) if features is None else features
            similarity = tanimoto(features, features)
        kind = self.config.acquisition if surrogate else ("random" if cheap is None or self.config.acquisition == "random" else "greedy")
        score = mean if surrogate else (np.zeros(len(keys)) if cheap is None else cheap)
        picks = select_batch(n, score, cov, rng, kind, self.config.beta, noise, similarity, self.config.max_similarity)
        sign = 1.0 if self.config.maximize else -1.0
        now = time.time()
        records = []
        for rank, (i, info) in enumerate(picks, 1):
            why = self._why(kind, surrogate, info, len(measured), notes)
            records.append(AskRecord(
                id=f"b{batch:04d}-{rank:03d}", key=keys[i], text=texts[i], batch=batch, request=request,
                mean=sign * info["mean"] if surrogate else None, std=info["std"] if surrogate else None,
                cheap=None if cheap is None else float(cheap[i]), why=why, status="pending", value=None, error=None,
                asked=now, told=None))
        self.store.add_asks(records)
        # The generator's random state moved while proposing: keep it, so a restart does not re-draw this pool.
        self.run.save_checkpoint(self.checkpoint, batch)
        return [Proposal.of(r) for r in records]

    def _learn(self) -> None:
        """Prior-regularised updates once new measurements have arrived:
        ``learn_steps`` passes over all measurements, rewards = their ranks."""
        if not self.can_learn:
            return
        measured = self.store.asks(status="measured")
        if all(r.id in self.checkpoint.learned for r in measured):
            return
        sign = 1.0 if self.config.maximize else -1.0
        values = sign * np.array([r.value for r in measured], dtype=float)
        ranks = (rankdata(values) - 1) / max(1, len(values) - 1) if len(values) > 1 else np.full(1, 0.5)
        texts, keys, rewards = [r.text for r in measured], [r.key for r in measured], [float(v) for v in ranks]
        for _ in range(self.config.learn_steps):
            self.strategy.learn(texts, keys, rewards)
        self.checkpoint.learned.update(r.id for r in measured)
        self.run.save_checkpoint(self.checkpoint, self.store.last_batch())

    def _pool(self, n: int) -> tuple[list[str], list[str], np.ndarray | None, list[str]]:
        """New, valid, filtered candidates: ``(texts, keys, cheap scores, notes)``."""
        asked = self.store.asked_keys()
        texts: list[str] = []
        keys: list[str] = []
        objs: list[Any] = []
        drawn = 0
        for _ in range(4):  # a generator that repeats itself gets a few more draws before we give up
            for text in self.strategy.propose(self.config.pool_size):
                drawn += 1
                obj = self.domain.try_parse(text)
                key = None if obj is None else self.domain.key(obj)
                if key is None or key in asked:
                    continue
                asked.add(key)
                texts.append(text)
                keys.append(key)
                objs.append(obj)
            if len(keys) >= n:
                break
        notes = [f"{len(keys)} new of {drawn} drawn"]
        cheap = None
        if self.objective is not None and keys:
            table = self.objective(objs)
            cheap = np.asarray(table.total, dtype=float)
            rejected = np.array([r is not None for r in table.rejected_by] if table.rejected_by else [False] * len(keys))
            failed = ~np.isfinite(cheap) & ~rejected
            keep = ~rejected & ~failed
            if rejected.any():
                notes.append(f"{int(rejected.sum())} removed by the objective's filters")
            if failed.any():
                notes.append(f"{int(failed.sum())} the cheap score failed on")
            if self.config.prescreen_fraction < 1:
                kept = np.flatnonzero(keep)
                top = max(n, int(math.ceil(self.config.prescreen_fraction * len(kept))))
                order = kept[np.argsort(-cheap[kept], kind="stable")][:top]
                mask = np.zeros(len(keys), dtype=bool)
                mask[order] = True
                notes.append(f"pre-screened to the best {int(mask.sum())} by the cheap score")
                keep = mask
            idx = np.flatnonzero(keep)
            texts, keys = [texts[i] for i in idx], [keys[i] for i in idx]
            cheap = cheap[idx]
        if not keys:
            raise MolgenError(f"the generator proposed nothing new that passes the objective ({'; '.join(notes)})")
        return texts, keys, cheap, notes

    def _predict(self, keys: list[str], measured: list[AskRecord]):
        """Surrogate posterior over the pool in "higher is better" units:
        ``(mean, cov, noise, features, used)``."""
        if not self.molecules or len(measured) < self.config.min_measurements or self.config.acquisition == "random":
            return None, None, 0.0, None, False
        from molgen.predictors.gaussian_process import TanimotoGP

        sign = 1.0 if self.config.maximize else -1.0
        gp = TanimotoGP().fit([r.key for r in measured], sign * np.array([r.value for r in measured], dtype=float))
        features = gp.featurize(keys)
        mean, cov = gp.posterior(None, full_cov=True, features=features)
        return mean, cov, gp.noise_variance, features, True

    def _why(self, kind: str, surrogate: bool, info: dict[str, float], n_measured: int, notes: list[str]) -> str:
        diversity = f"max similarity to this batch {info['max_similarity']:.2f}"
        if surrogate:
            sign = 1.0 if self.config.maximize else -1.0
            head = {"ucb": f"UCB {sign * info['utility']:.4g} = predicted {sign * info['mean']:.4g} "
                           f"{'+' if sign > 0 else '-'} {self.config.beta:g} x std {info['std']:.3g}",
                    "thompson": f"Thompson draw {sign * info['utility']:.4g} (predicted {sign * info['mean']:.4g}, std {info['std']:.3g})",
                    "greedy": f"predicted {sign * info['mean']:.4g} (std {info['std']:.3g})",
                    "random": "random pick"}[kind]
            head += f" from a GP on {n_measured} measurements"
        elif kind == "greedy":
            head = f"cold start ({n_measured} measured): cheap score {info['mean']:.4g}"
        else:
            head = f"cold start ({n_measured} measured): random draw from the generator"
        return f"{head}; {diversity}; pool: {', '.join(notes)}"

    # -- tell -----------------------------------------------------------------
    def tell(self, answers: Iterable[Any]) -> TellReport:
        """Record measurements (all or nothing: a bad answer rejects the call).

        Late, repeated and out-of-order answers are fine: an answer identical
        to the stored one is a duplicate and ignored; nothing is counted twice.

        Args:
            answers: :class:`Measurement` objects or dicts with ``id`` and
                ``value`` (finite) or ``error``.

        Returns:
            What was recorded.

        Raises:
            DataError: a malformed answer, or two different answers for one
                id in the call; UnknownIdError: ids never asked;
                ConflictError: an answer differs from the one stored.
        """
        parsed: dict[str, Measurement] = {}
        for i, item in enumerate(answers, 1):
            m = parse_measurement(item, where=f"answer {i}")
            if m.id in parsed and not _same(parsed[m.id], m):
                raise DataError(f"answer {i}: two different answers for {m.id} in one call")
            parsed[m.id] = m
        if not parsed:
            raise DataError("no answers given")
        asked = {r.id: r for r in self.store.asks(ids=list(parsed))}
        unknown = [i for i in parsed if i not in asked]
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise UnknownIdError(f"not asked by this campaign: {shown}")
        fresh, duplicates, conflicts = [], 0, []
        for ident, m in parsed.items():
            record = asked[ident]
            if record.status == "pending":
                fresh.append((record, m.value, m.error))
            elif _same(Measurement(ident, record.value, record.error), m):
                duplicates += 1
            else:
                conflicts.append(f"{ident} (stored {record.value if record.error is None else 'failed: ' + record.error}, "
                                 f"now {m.value if m.error is None else 'failed: ' + m.error})")
        if conflicts:
            raise ConflictError(f"answers differ from the recorded ones, nothing recorded: {'; '.join(conflicts[:5])}")
        if fresh:
            self.store.record_answers(fresh)
        counts = self.store.ask_counts()
        return TellReport(len(fresh), sum(v is None for _, v, _ in fresh), duplicates, counts["pending"], counts["measured"],
                          self.remaining_budget())

    # -- reading --------------------------------------------------------------
    def remaining_budget(self) -> int:
        """Candidates the campaign may still ask."""
        return self.config.budget - sum(self.store.ask_counts().values())

    def proposals(self, status: str | None = None) -> list[Proposal]:
        """Every asked candidate (or those of one status), in ask order."""
        return [Proposal.of(r) for r in self.store.asks(status=status)]

    def best(self, top: int = 10) -> list[Proposal]:
        """The best measured candidates, best first."""
        sign = 1.0 if self.config.maximize else -1.0
        measured = self.proposals("measured")
        return sorted(measured, key=lambda p: (-sign * p.value, p.id))[:top]

    def status(self) -> dict[str, Any]:
        """Budget, counts, best values and a row per batch (best and top-10
        mean of the measurements of batches up to it)."""
        counts = self.store.ask_counts()
        sign = 1.0 if self.config.maximize else -1.0
        rows, values = [], []
        records = self.store.asks()
        for batch in sorted({r.batch for r in records}):
            mine = [r for r in records if r.batch == batch]
            values += [r.value for r in mine if r.status == "measured"]
            ordered = sorted(values, key=lambda v: -sign * v)
            rows.append({
                "batch": batch, "asked": len(mine), "measured": sum(r.status == "measured" for r in mine),
                "failed": sum(r.status == "failed" for r in mine), "pending": sum(r.status == "pending" for r in mine),
                "best_so_far": ordered[0] if ordered else None,
                "top10_mean_so_far": float(np.mean(ordered[:10])) if ordered else None,
            })
        best = self.best(1)
        return {
            "budget": self.config.budget, "asked": sum(counts.values()), **counts,
            "remaining_budget": self.remaining_budget(), "batches": len(rows),
            "best": best[0].to_dict() if best else None,
            "top10_mean": rows[-1]["top10_mean_so_far"] if rows else None,
            "learned_from": len(self.checkpoint.learned), "per_batch": rows,
        }


def _same(a: Measurement, b: Measurement) -> bool:
    if (a.value is None) != (b.value is None):
        return False
    return a.value is None or math.isclose(a.value, b.value, rel_tol=1e-9, abs_tol=1e-12)


def measurements_from_rows(rows: Sequence[dict[str, Any]], source: str = "") -> list[Measurement]:
    """Measurements from table rows (CSV/SDF) with ``id`` plus ``value``
    and/or ``error``, each checked; a ``row`` entry numbers the row in messages.

    Args:
        rows: The rows.
        source: Names the file in messages.

    Raises:
        DataError: a row without an id, or a malformed value.
    """
    prefix = f"{source} " if source else ""
    return [parse_measurement(row, where=f"{prefix}row {row.get('row', i)}") for i, row in enumerate(rows, 1)]
