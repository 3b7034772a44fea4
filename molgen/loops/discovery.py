"""Materials discovery in rounds: sample -> decode -> dedupe -> cheap filters
and learned predictors -> an expensive oracle (relaxation with a universal
potential) on the best few -> store -> update the generator -> repeat.

Differences from :class:`~molgen.loops.campaign.Campaign` (the molecule
loop) that call for a round structure: crystals are deduplicated with
``StructureMatcher`` (their domain key, the formula, does not tell polymorphs
apart); the expensive stage ranks a whole round before choosing what to
relax, and has its own budget; relaxations run through an executor (process
pool or Ray) and each is stored the moment it finishes.

The loop is generic: what a preset wants counted per round (a band-gap
window for photovoltaics) comes in as a :class:`RoundReport`
(see :mod:`molgen.workflows.photovoltaic`). The run directory (store,
checkpoints, lock, atomic files) is the engine's (:mod:`molgen.loops.engine`).

Run directory (besides the engine's candidates.sqlite, checkpoints and summary.json)::

    candidates.sqlite   also every relaxation (table followups), committed as it comes
    rounds.csv          per-round funnel, rates, energies and timings
    relaxed/*.cif       relaxed structures; relaxed.db the same as an ASE database
    selected.csv        relaxed candidates with predicted and relaxed properties

A killed run restarts (``resume=True``) at the round after its last
checkpoint; the generator's random state is restored, so the repeated round
proposes the same structures, which come back from the store without being
re-scored or re-relaxed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError
from molgen.core.progress import progress_bar
from molgen.loops.engine import RunDirectory
from molgen.core.executors import make_executor
from molgen.loops.polymorphs import (PolymorphStageConfig, cell_formula, element_pool, plan_cells, reduced_formula,
                                     resample, substitution_templates)
from molgen.loops.reinforce import ReinforceConfig
from molgen.loops.store import Candidate, CandidateStore
from molgen.scoring.oracle import Oracle

ROUNDS_NAME = "rounds.csv"
POLYMORPHS_NAME = "polymorphs.csv"
POLYMORPH_PLAN_NAME = "polymorph_formulas.csv"  # the formulas each round resampled, and why
SELECTED_NAME = "selected.csv"
ASE_DB_NAME = "relaxed.db"
RELAXED_DIR = "relaxed"
FOLLOWUP = "relaxation"
#: Relaxation outcomes that give a usable energy.
USABLE = ("ok", "unconverged")


class RelaxStageConfig(StrictModel):
    """The expensive stage: which candidates are relaxed, how, and where."""

    per_round: int = Field(16, ge=0, description="best new candidates of a round sent to relaxation")
    budget: int = Field(200, ge=0, description="relaxations in the whole run")
    min_score: float = Field(0.0, description="only candidates whose cheap score exceeds this")
    max_formation_energy: float | None = Field(
        0.0, description="eV/atom: without a hull, a relaxed candidate above this formation-energy proxy counts as "
        "unstable (None: no gate)")
    hull: list[str] = Field(
        default_factory=list, description="registered crystal data sets whose known phases make the convex hull "
        "(energies under the same potential, cached under MOLGEN_HOME/hull); empty: the formation-energy proxy")
    max_e_above_hull: float | None = Field(
        0.1, description="eV/atom: with a hull, a relaxed candidate further above it counts as unstable (None: no gate)")
    unstable_reward: float = Field(0.0, ge=0, le=1, description="reward factor of relaxed candidates that failed or are unstable")
    settings: dict[str, Any] = Field(default_factory=dict, description="RelaxSettings of the potential (steps, fmax, ...)")
    executor: Literal["serial", "process", "ray"] = "process"
    workers: int = Field(2, gt=0)

    @property
    def active(self) -> bool:
        """Whether the run relaxes anything (``per_round`` and ``budget`` both above 0)."""
        return bool(self.per_round and self.budget)


class DiscoveryLoopConfig(StrictModel):
    """Settings of the round loop (a preset's ``[discovery]`` table adds its report settings)."""

    rounds: int = Field(10, gt=0)
    per_round: int = Field(512, gt=0, description="structures sampled per round")
    repeat_reward: float = Field(
        0.0, ge=0, le=1, description="reward factor of a structure first proposed in an earlier round (pushes toward new ones)")
    formula_bucket: int | None = Field(
        None, gt=0, description="distinct crystals per reduced formula that earn a reward; later polymorphs get 0, "
        "as REINVENT's scaffold buckets do for molecules (None: no limit)")
    relax: RelaxStageConfig = RelaxStageConfig()
    polymorphs: PolymorphStageConfig = PolymorphStageConfig()
    strategy: ReinforceConfig = Field(default_factory=lambda: ReinforceConfig(update_batch=64))


class RoundReport:
    """What a preset counts beyond the generic funnel (the base counts
    nothing more). A preset's report (e.g. the photovoltaic gap window)
    overrides these hooks; each returns what it adds."""

    def round_stats(self, new: list[Candidate], passes: Callable[[dict, str], bool]) -> dict[str, Any]:
        """Columns of ``rounds.csv`` for one round.

        Args:
            new: The round's new candidates.
            passes: ``(components, filter name) -> bool``, the objective's filter on stored values.

        Returns:
            Column -> value (placed after ``pass_all``).
        """
        return {}

    def line(self, row: dict[str, Any]) -> str:
        """A fragment of the one-line round log ("" for none)."""
        return ""

    def candidate_fields(self, components: dict) -> dict[str, Any]:
        """Columns of ``selected.csv`` derived from a candidate's stored components."""
        return {}

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Entries of ``summary.json`` from all rounds' rows."""
        return {}


class ReportSpec(Protocol):
    """Report settings that build their report (a preset config's ``report`` field)."""

    def build(self, objective) -> RoundReport: ...


def require_relaxation_support(config: DiscoveryLoopConfig) -> None:
    """Fail before a run starts when it asks for relaxations (``relax.per_round``
    and ``relax.budget`` above 0) but the interatomic potential is not
    installed: otherwise every relaxation would fail in its worker and the
    run would still end as a "success".

    Raises:
        MolgenError: chgnet cannot be imported (with the install hint).
    """
    if not config.relax.active:
        return
    try:
        import chgnet  # noqa: F401  (the package only: its model import takes seconds)
    except ImportError as exc:
        raise MolgenError(
            f"relaxations need CHGNet, which is not installed ({exc}): pip install 'molgen[potential]', "
            "or pass --relax-per-round 0 to run without relaxations") from None


@dataclass
class DiscoveryResult:
    """What a discovery run did."""

    out_dir: Path
    rounds: int
    summary: dict[str, Any]


def decode(domain, text: str):
    """Text -> object, or None when it does not parse. Unlike
    ``domain.try_parse`` it keeps invalid structures: validity is judged by
    the objective's filters, so the funnel can count each rule."""
    try:
        return domain.parse(text)
    except Exception:  # ParseError, or anything a malformed sample trips in pymatgen: never end a round
        return None


def _safe_name(key: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)


class MaterialsDiscovery:
    """A round-based discovery loop over a crystal generator.

    Args:
        strategy: Proposes texts and learns from rewards (e.g.
            :class:`~molgen.loops.reinforce.PriorRegularizedRL` on a crystal prior).
        objective: The cheap stage: filters and learned predictors.
        out_dir: Run directory.
        config: Loop settings; a ``report`` field (a :class:`ReportSpec`, as
            a preset's config has) builds the report when ``report`` is None.
        relax_fn: ``payload -> result dict`` of the expensive oracle (default
            :func:`molgen.physics.relaxation.relax_structure`); it must be a
            top-level function so that process pools and Ray can ship it.
        executor: An executor from :mod:`molgen.core.executors` (default:
            built from ``config.relax``).
        log: Called with one line per round (e.g. ``print``).
        progress: Show a bar over the rounds (on a terminal).
        report: What the preset counts per round (default: from ``config.report``, else nothing more).
        hull: A :class:`~molgen.physics.hull.ConvexHull` to measure relaxed
            candidates against (default: built from ``config.relax.hull``
            when relaxations run).
        structure_predictor: Crystal structure prediction for the polymorph
            stage's ``method = "generator"`` (see :func:`molgen.loops.polymorphs.resample`).

    Raises:
        MolgenError: the polymorph stage samples the generator but no
            ``structure_predictor`` was given.
    """

    def __init__(self, strategy, objective, out_dir: str | Path, config: DiscoveryLoopConfig,
                 relax_fn: Callable[[dict], dict] | None = None, executor=None, log: Callable[[str], None] | None = None,
                 progress: bool = False, report: RoundReport | None = None, hull=None,
                 structure_predictor: Callable[..., list] | None = None):
        from molgen.domains.crystal.matching import StructureIndex

        self.strategy = strategy
        self.domain = strategy.domain
        self.objective = objective
        self.out_dir = Path(out_dir)
        self.config = config
        self.relax_fn = relax_fn
        self.executor = executor
        self.log = log or (lambda line: None)
        self.progress = progress
        if report is None:
            spec: ReportSpec | None = getattr(config, "report", None)
            report = spec.build(objective) if spec is not None else RoundReport()
        self.report = report
        self.hull = hull
        self.structure_predictor = structure_predictor
        if config.polymorphs.active and config.polymorphs.learn and not hasattr(strategy, "learn"):
            raise MolgenError("[discovery.polymorphs] learn = true needs a strategy that learns from texts it did not "
                              "propose (the REINVENT strategy)")
        if config.polymorphs.active and config.polymorphs.method == "generator" and structure_predictor is None:
            raise MolgenError('[discovery.polymorphs] method = "generator" needs a structure_predictor '
                              "(molgen.workflows.structure_prediction.predict_structures)")
        if config.polymorphs.active and config.polymorphs.method == "substitution":
            substitution_templates(tuple(config.polymorphs.templates))  # an unknown or unreadable source fails now, not in round 1
        self.index = StructureIndex(self.domain.matcher)
        self.round = 0
        self._texts: dict[str, str] = {}
        self._round_keys: dict[int, str] = {}
        self._first_round: dict[str, int] = {}
        self._tables: list[tuple[list[str], Any]] = []
        self._polymorph_keys: set[str] = set()  # this round's resampled structures (kept out of its funnel)
        self._polymorph_rows: list[dict[str, Any]] = []
        self._polymorph_batch: tuple[list[str], list[str], list[float]] = ([], [], [])  # texts, keys, scores
        self._polymorph_plan: list[dict[str, Any]] = []
        self._element_pool = element_pool(config.polymorphs) if config.polymorphs.active and config.polymorphs.neighbours else ()

    # -- the loop -----------------------------------------------------------
    def run(self, resume: bool = False) -> DiscoveryResult:
        """Run (or resume) all rounds.

        Args:
            resume: Continue the run stored in ``out_dir``.

        Returns:
            The result; ``summary.json``, ``rounds.csv`` and ``selected.csv`` are written.

        Raises:
            MolgenError: ``out_dir`` holds a run and ``resume`` is False, or
                holds none and ``resume`` is True.
        """
        executor = self.executor
        with RunDirectory(self.out_dir, "discovery run", unit="candidates", command="molgen discover").open(resume) as run:
            store = run.store
            try:
                oracle = Oracle(self.objective, self.domain, None, listener=lambda keys, objs, table: self._persist(store, keys, table),
                                key=self._key)
                if resume:
                    self._restore(run, oracle)
                if executor is None and self.config.relax.active:
                    if self.relax_fn is None:
                        require_relaxation_support(self.config)
                    executor = make_executor(self.config.relax.executor, self.config.relax.workers)
                if executor is not None and self.config.relax.hull and self.hull is None:
                    self.hull = self._build_hull()
                rows = run.read_records(ROUNDS_NAME)
                self._polymorph_rows = run.read_records(POLYMORPHS_NAME) if self.config.polymorphs.active else []
                self._polymorph_plan = run.read_records(POLYMORPH_PLAN_NAME) if self.config.polymorphs.active else []
                with progress_bar(self.config.rounds, desc="rounds", unit="round", enabled=self.progress, initial=self.round) as bar:
                    for r in range(self.round + 1, self.config.rounds + 1):
                        self.round = r
                        row = self._one_round(store, oracle, executor)
                        rows = [x for x in rows if int(x["round"]) < r] + [row]
                        run.write_records(ROUNDS_NAME, rows)
                        if self.config.polymorphs.active:
                            run.write_records(POLYMORPHS_NAME, self._polymorph_rows)
                            run.write_records(POLYMORPH_PLAN_NAME, self._polymorph_plan)
                        run.save_checkpoint(self.strategy, r)
                        bar.update(1)
                        self.log(self._round_line(row))
                summary = self._finish(run, rows)
            finally:
                if executor is not None and self.executor is None:
                    executor.close()
        return DiscoveryResult(self.out_dir, self.round, summary)

    def _one_round(self, store: CandidateStore, oracle: Oracle, executor) -> dict[str, Any]:
        c, r = self.config, self.round
        times: dict[str, float] = {}
        t = time.perf_counter()
        texts = self.strategy.propose(c.per_round)
        times["generate"] = time.perf_counter() - t
        t = time.perf_counter()
        objs = [decode(self.domain, text) for text in texts]
        keys: list[str | None] = []
        for obj in objs:
            try:
                keys.append(None if obj is None else self.index.add(obj))
            except Exception:  # matcher failure on a degenerate cell: treat as undecodable
                keys.append(None)
        objs = [o if k is not None else None for o, k in zip(objs, keys)]
        self._round_keys = {id(o): k for o, k in zip(objs, keys) if k is not None}
        # "Earlier" by the round that first stored a key: a resumed round must not treat its own
        # structures, stored before the kill, as repeats (the uninterrupted run did not).
        seen_before = {k for k in keys if k is not None and self._first_round.get(k, self.round) < self.round}
        times["dedupe"] = time.perf_counter() - t
        self._texts = {k: self.domain.format(o) for k, o in zip(keys, objs) if k is not None and k not in seen_before}
        self._tables = []
        t = time.perf_counter()
        scores = oracle.score(objs)
        times["score"] = time.perf_counter() - t
        t = time.perf_counter()
        polymorph_stats = self._polymorph_round(store, oracle, {k for k in keys if k is not None})
        times["polymorphs"] = time.perf_counter() - t
        component_seconds: dict[str, float] = {}
        for _, table in self._tables:
            for name, sec in table.seconds.items():
                component_seconds[name] = component_seconds.get(name, 0.0) + sec
        filter_names = {f.component.name for f in self.objective.filters}
        times["filters"] = sum(v for k, v in component_seconds.items() if k in filter_names)
        times["predictors"] = sum(v for k, v in component_seconds.items() if k not in filter_names)
        t = time.perf_counter()
        self._relax_round(store, executor)
        times["relaxation"] = time.perf_counter() - t
        followups = store.followups(FOLLOWUP)  # read once, after this round's relaxations
        rewards = self.shape_rewards(scores, keys, seen_before, followups)
        t = time.perf_counter()
        stats = self.strategy.update(texts, keys, rewards.tolist())
        texts_p, keys_p, scores_p = self._polymorph_batch
        if self.config.polymorphs.learn and texts_p:
            earlier = {k for k in keys_p if self._first_round.get(k, self.round) < self.round}
            self.strategy.learn(texts_p, keys_p, self.shape_rewards(scores_p, keys_p, earlier, followups).tolist())
        times["update"] = time.perf_counter() - t
        row = self._round_stats(store, texts, objs, keys, followups)
        row.update(polymorph_stats)
        row.update({"mean_reward": float(rewards.mean()) if len(rewards) else float("nan"), "loss": stats.get("loss", float("nan"))})
        row.update({f"seconds_{k}": round(v, 3) for k, v in times.items()})
        store.log_step(r, len(texts), sum(o is not None for o in objs), row["new"], row["mean_reward"], row["loss"], sum(times.values()))
        return row

    def shape_rewards(self, scores, keys: list[str | None], seen_before: set[str], followups: dict[str, dict]) -> np.ndarray:
        """Rewards for the generator update: the cheap score (0 where it failed),
        times ``repeat_reward`` for structures from earlier rounds, 0 beyond
        ``formula_bucket`` polymorphs of a formula, times ``unstable_reward``
        where the relaxation failed or found the structure unstable."""
        c = self.config
        rewards = np.nan_to_num(np.array(scores, dtype=float), nan=0.0)
        for i, key in enumerate(keys):
            if key is None:
                continue
            if key in seen_before:
                rewards[i] *= c.repeat_reward
            if c.formula_bucket is not None and self.index.rank(key) > c.formula_bucket:
                rewards[i] = 0.0
            f = followups.get(key)
            if f is not None and not self._stable(f):
                rewards[i] *= c.relax.unstable_reward
        return rewards

    def _polymorph_round(self, store: CandidateStore, oracle: Oracle, proposed: set[str]) -> dict[str, Any]:
        """Resample the round's best new formulas in fresh structures (see
        :mod:`molgen.loops.polymorphs`), dedupe and score them; return their
        ``rounds.csv`` columns."""
        pc = self.config.polymorphs
        self._polymorph_keys = set()
        self._polymorph_batch = ([], [], [])
        if not pc.active:
            return {}
        # Ranked among the round's own proposals (and, frontier = "run", earlier rounds' candidates) only:
        # a resumed round whose resampled structures were stored before the kill picks the same formulas.
        self._polymorph_plan = [x for x in self._polymorph_plan if int(x["round"]) < self.round]
        resampled: dict[str, int] = {}
        for x in self._polymorph_plan:
            resampled[x["formula"]] = resampled.get(x["formula"], 0) + 1
        if pc.frontier == "run":
            best = [c for c in store.passed_until(self.round, pc.min_score)
                    if (c.step < self.round or c.key in proposed) and resampled.get(c.key.split("#")[0], 0) < pc.depth]
        else:
            best = [c for c in store.passed_of_step(self.round, pc.min_score) if c.key in proposed]
        plan = plan_cells((self.domain.try_parse(c.text) for c in best), pc, resampled, self._element_pool)
        self._polymorph_plan += [{"round": self.round, "cell": cell, "formula": reduced_formula(cell), "role": role,
                                  "offset": offset} for cell, role, offset in plan]
        cells = [cell for cell, _, _ in plan]
        model = getattr(self.strategy, "prior", None)  # the generator before any update: its structures are the most faithful
        model = self.strategy.agent if model is None else model
        structures = resample(model, cells, pc, self.round, self.structure_predictor, [o for _, _, o in plan]) if cells else []
        objs, keys, texts = [], [], []
        for structure in structures:
            try:
                key = None if structure is None else self.index.add(structure)
            except Exception:  # as for proposals
                key = None
            if key is None or key in proposed or key in self._polymorph_keys:
                continue
            objs.append(structure)
            keys.append(key)
            texts.append(self.domain.format(structure))
            self._polymorph_keys.add(key)
            self._round_keys[id(structure)] = key
            if self._first_round.get(key, self.round) == self.round:
                self._texts[key] = texts[-1]
        if objs:
            # New and earlier-round structures alike: the update sees each resampled structure with its score.
            self._polymorph_batch = (texts, keys, list(oracle.score(objs)))
        self._polymorph_rows = [x for x in self._polymorph_rows if int(x["round"]) < self.round]
        passed = {c.key for c in store.passed_of_step(self.round, pc.min_score)}
        new = [k for k in keys if self._first_round.get(k) == self.round]
        self._polymorph_rows += [{"round": self.round, "key": k, "cell": cell_formula(o), "new": k in new, "passed": k in passed}
                                 for k, o in zip(keys, objs)]
        return {"polymorph_formulas": sum(role == "chosen" for _, role, _ in plan),
                "polymorph_neighbours": sum(role == "neighbour" for _, role, _ in plan), "polymorph_sampled": len(structures),
                "polymorph_distinct": len(keys), "polymorph_new": len(new),
                "polymorph_pass_all": sum(k in passed for k in new)}

    def _key(self, obj) -> str:
        # The round's structures were matched once while deduplicating; the oracle reuses those keys.
        key = self._round_keys.get(id(obj))
        return key if key is not None else self.index.add(obj)

    def _persist(self, store: CandidateStore, keys: list[str], table) -> None:
        self._tables.append((keys, table))
        for key in keys:
            self._first_round.setdefault(key, self.round)
        store.add_scored(self.round, keys, [self._texts.get(k, k) for k in keys], table)

    # -- the expensive stage -----------------------------------------------------
    def _build_hull(self):
        """The convex hull of ``config.relax.hull`` under the relaxation's potential
        (computed once, then read from the ``MOLGEN_HOME`` cache)."""
        from molgen.core.config import validate
        from molgen.physics.hull import ConvexHull
        from molgen.physics.relaxation import RelaxSettings

        sources = self.config.relax.hull
        self.log(f"convex hull of the known phases of {', '.join(sources)} (CHGNet energies; computed once, then cached)")
        start = time.perf_counter()
        settings = validate(RelaxSettings, dict(self.config.relax.settings), where="[discovery.relax.settings]")
        hull = ConvexHull.from_sources(sources, settings)
        self.log(f"hull: {len(hull.phases)} known phases, {len(hull.references)} elements ({time.perf_counter() - start:.0f} s)")
        return hull

    def _e_above_hull(self, result: dict) -> float | None:
        """The relaxed structure's energy above the hull (None without a hull or an energy)."""
        if self.hull is None or not result.get("final_structure") or result.get("energy_per_atom") is None:
            return None
        from pymatgen.core import Structure

        raw = result["final_structure"]
        structure = Structure.from_dict(raw) if isinstance(raw, dict) else Structure.from_str(raw, fmt="cif")
        return self.hull.e_above_hull(structure.composition, float(result["energy_per_atom"]))

    def _stable(self, followup: dict) -> bool:
        """Usable relaxation and within the gate: the hull distance when the run has a
        hull, else the formation-energy proxy."""
        if followup["status"] not in USABLE:
            return False
        rc = self.config.relax
        if rc.hull:
            value, limit = followup["result"].get("e_above_hull"), rc.max_e_above_hull
        else:
            value, limit = followup["result"].get("formation_energy_per_atom"), rc.max_formation_energy
        return limit is None or (value is not None and value <= limit)

    def _relax_round(self, store: CandidateStore, executor) -> int:
        """Relax the round's best new candidates that passed every filter; return how many."""
        rc = self.config.relax
        done = store.followups(FOLLOWUP)
        left = rc.budget - len(done)
        if rc.per_round == 0 or left <= 0 or executor is None:
            return 0
        best = store.passed_of_step(self.round, rc.min_score)
        # The round's top-k is fixed by its scores; a resumed round relaxes only what is missing.
        chosen = [(c.key, c.text, c.total) for c in best[: rc.per_round] if c.key not in done][:left]
        if not chosen:
            return 0
        from molgen.physics.relaxation import relax_structure

        fn = self.relax_fn or relax_structure
        payloads = [{"structure": self.domain.parse(text).as_dict(), "settings": rc.settings} for _, text, _ in chosen]
        db = self._ase_db()
        for i, result in executor.map(fn, payloads):
            key, _, total = chosen[i]
            if not isinstance(result, dict):  # a TaskFailure: the worker raised or died
                result = {"status": "failed", "error": getattr(result, "error", str(result))}
            status = str(result.get("status", "failed"))
            if status in USABLE and rc.hull:
                try:
                    result["e_above_hull"] = self._e_above_hull(result)
                except Exception as exc:  # no hull distance is recorded as None: the candidate then counts as unstable
                    result["e_above_hull"] = None
                    self.log(f"no hull distance for {key}: {type(exc).__name__}: {exc}")
            store.add_followup(key, FOLLOWUP, self.round, status, result.get("error"), result, result.get("seconds"))
            if status in USABLE and result.get("final_structure"):
                try:
                    self._export_relaxed(db, key, total, result)
                except Exception as exc:  # the result is stored; a failed export must not end the run
                    self.log(f"could not export the relaxed {key}: {type(exc).__name__}: {exc}")
        return len(chosen)

    def _ase_db(self):
        import ase.db

        return ase.db.connect(str(self.out_dir / ASE_DB_NAME))

    def _export_relaxed(self, db, key: str, total: float, result: dict) -> None:
        """Write the relaxed structure as CIF and as a row of the ASE database
        (skipped when the row exists: a resumed round)."""
        from pymatgen.core import Structure
        from pymatgen.io.ase import AseAtomsAdaptor

        structure = Structure.from_dict(result["final_structure"]) if isinstance(result["final_structure"], dict) \
            else Structure.from_str(result["final_structure"], fmt="cif")
        folder = self.out_dir / RELAXED_DIR
        folder.mkdir(exist_ok=True)
        structure.to(filename=str(folder / f"{_safe_name(key)}.cif"))
        if db.count(candidate_key=key) == 0:
            pairs = {"candidate_key": key, "reduced_formula": structure.composition.reduced_formula, "discovery_round": self.round,
                     "score": float(total), "status": str(result["status"])}
            for name in ("energy_per_atom", "formation_energy_per_atom", "e_above_hull"):
                if result.get(name) is not None and math.isfinite(result[name]):
                    pairs[name] = float(result[name])
            db.write(AseAtomsAdaptor.get_atoms(structure), **pairs)

    def _stability_rule(self) -> str:
        """What "stable" meant in this run (for summary.json)."""
        rc = self.config.relax
        if not rc.active:
            return "not checked: no relaxations"
        if rc.hull:
            return f"CHGNet-relaxed energy above the hull of {', '.join(rc.hull)} <= {rc.max_e_above_hull} eV/atom"
        return f"CHGNet formation-energy proxy against elemental references <= {rc.max_formation_energy} eV/atom"

    # -- resume -------------------------------------------------------------
    def _restore(self, run: RunDirectory, oracle: Oracle) -> None:
        self.round = run.load_checkpoint(self.strategy) or 0
        # Re-adding stored structures in call order rebuilds the same keys.
        for cand in run.store.candidates():
            self.index.add(self.domain.parse(cand.text), key=cand.key)
            self._first_round[cand.key] = cand.step
        oracle.restore(run.store.evaluations())

    # -- reporting ------------------------------------------------------------
    def _passes(self, components: dict, name: str) -> bool:
        """Whether stored component values pass the objective's filter ``name``
        (a name that is no filter passes when its value is known)."""
        value = component_value(components, name)
        for f in self.objective.filters:
            if f.component.name == name:
                return bool(f.passes(np.array([value]))[0])
        return not math.isnan(value)

    def _round_stats(self, store, texts, objs, keys, all_followups: dict[str, dict]) -> dict[str, Any]:
        new = [c for c in store.candidates_of_step(self.round) if c.key not in self._polymorph_keys]
        row: dict[str, Any] = {
            "round": self.round,
            "sampled": len(texts),
            "decoded": sum(o is not None for o in objs),
            "distinct": len({k for k in keys if k is not None}),
            "new": len(new),
        }
        for f in self.objective.filters:
            row[f"pass_{f.component.name}"] = sum(self._passes(c.components, f.component.name) for c in new)
        passed = [c for c in new if c.rejected_by is None and not math.isnan(c.total)]
        row["pass_all"] = len(passed)
        row.update(self.report.round_stats(new, self._passes))
        followups = {k: f for k, f in all_followups.items() if f["step"] == self.round}
        energies = [f["result"].get("energy_per_atom") for f in followups.values() if f["status"] in USABLE]
        formation = [f["result"].get("formation_energy_per_atom") for f in followups.values() if f["status"] in USABLE]
        energies = np.array([e for e in energies if e is not None], dtype=float)
        formation = np.array([e for e in formation if e is not None], dtype=float)
        hull = np.array([f["result"].get("e_above_hull") for f in followups.values() if f["status"] in USABLE
                         and f["result"].get("e_above_hull") is not None], dtype=float)
        row.update({
            "relaxed": len(followups),
            "relax_ok": sum(f["status"] == "ok" for f in followups.values()),
            "relax_unconverged": sum(f["status"] == "unconverged" for f in followups.values()),
            "relax_failed": sum(f["status"] not in USABLE for f in followups.values()),
            "stable": sum(self._stable(f) for f in followups.values()),
            "energy_per_atom_median": float(np.median(energies)) if len(energies) else float("nan"),
            "energy_per_atom_min": float(energies.min()) if len(energies) else float("nan"),
            "energy_per_atom_max": float(energies.max()) if len(energies) else float("nan"),
            "formation_proxy_median": float(np.median(formation)) if len(formation) else float("nan"),
            "e_above_hull_median": float(np.median(hull)) if len(hull) else float("nan"),
        })
        return row

    def _round_line(self, row: dict) -> str:
        parts = [f"round {row['round']}: {row['sampled']} sampled", f"{row['new']} new", f"{row['pass_all']} pass filters",
                 self.report.line(row), f"relaxed {row['relaxed']} ({row['stable']} stable)"]
        return ", ".join(p for p in parts if p)

    def _finish(self, run: RunDirectory, rows: list[dict[str, Any]]) -> dict[str, Any]:
        store = run.store
        followups = store.followups(FOLLOWUP)
        selected = []
        by_key = {c.key: c for c in store.candidates()}
        for key, f in followups.items():
            cand = by_key.get(key)
            if cand is None:
                continue
            entry = {"key": key, "round": f["step"], "score": cand.total, "status": f["status"], "stable": self._stable(f),
                     "energy_per_atom": f["result"].get("energy_per_atom"),
                     "formation_energy_per_atom": f["result"].get("formation_energy_per_atom"),
                     "e_above_hull": f["result"].get("e_above_hull"),
                     "error": f["error"] or "", "cif": f"{RELAXED_DIR}/{_safe_name(key)}.cif" if f["status"] in USABLE else ""}
            entry.update(self.report.candidate_fields(cand.components))
            for name, values in cand.components.items():
                entry[name] = values.get("raw")
            selected.append(entry)
        selected.sort(key=lambda e: (not e["stable"], -np.nan_to_num(e["score"], nan=-np.inf)))
        if selected:
            run.write_records(SELECTED_NAME, selected)
        last = rows[-1] if rows else {}
        summary = {
            "objective": getattr(self.objective, "name", "objective"),
            "rounds": self.round,
            "candidates": store.count(),
            "relaxations": len(followups),
            "relaxation_status": {s: sum(f["status"] == s for f in followups.values()) for s in sorted({f["status"] for f in followups.values()})},
            "stable": sum(e["stable"] for e in selected),
            "stability": self._stability_rule(),
            "last_round": last,
            "top": selected[:10],
            "matcher": self.domain.matcher.to_dict(),
            **self.report.summary(rows),
        }
        run.write_summary(summary)
        return summary


def component_value(components: dict, name: str) -> float:
    """The raw value of component ``name`` in a stored candidate's components (NaN when missing)."""
    value = (components.get(name) or {}).get("raw")
    return math.nan if value is None else float(value)
