"""Materials discovery in rounds: sample -> decode -> dedupe -> cheap filters
and learned predictors -> an expensive oracle (relaxation with a universal
potential) on the best few -> store -> update the generator -> repeat.

Differences from :class:`~molgen.loops.campaign.Campaign` (the molecule
engine) that call for a round structure: crystals are deduplicated with
``StructureMatcher`` (their domain key, the formula, does not tell polymorphs
apart); the expensive stage ranks a whole round before choosing what to
relax, and has its own budget; relaxations run through an executor (process
pool or Ray) and each is stored the moment it finishes.

Run directory::

    candidates.sqlite   every scored structure (table candidates) and every
                        relaxation (table followups), committed as they come
    checkpoint.json     newest complete generator checkpoint (end of a round)
    rounds.csv          per-round funnel, rates, energies and timings
    relaxed/*.cif       relaxed structures; relaxed.db the same as an ASE database
    selected.csv        relaxed candidates with predicted and relaxed properties
    summary.json        final figures

A killed run restarts (``resume=True``) at the round after its last
checkpoint; the generator's random state is restored, so the repeated round
proposes the same structures, which come back from the store without being
re-scored or re-relaxed.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
from pydantic import Field

from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError
from molgen.core.serialization import write_json
from molgen.loops.campaign import load_checkpoint, save_checkpoint
from molgen.loops.reinforce import ReinforceConfig
from molgen.loops.store import CandidateStore
from molgen.scoring.oracle import Oracle

STORE_NAME = "candidates.sqlite"
ROUNDS_NAME = "rounds.csv"
SELECTED_NAME = "selected.csv"
SUMMARY_NAME = "summary.json"
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
        0.0, description="eV/atom: a relaxed candidate above this formation-energy proxy counts as unstable (None: no gate)")
    unstable_reward: float = Field(0.0, ge=0, le=1, description="reward factor of relaxed candidates that failed or are unstable")
    settings: dict[str, Any] = Field(default_factory=dict, description="RelaxSettings of the potential (steps, fmax, ...)")
    executor: Literal["serial", "process", "ray"] = "process"
    workers: int = Field(2, gt=0)


class ReportConfig(StrictModel):
    """Which score-table columns the per-round report reads."""

    valid: list[str] = Field(default_factory=lambda: ["structure_valid", "composition_valid"], description="filters meaning 'valid'")
    novel: str | None = Field("novelty", description="filter meaning 'novel' (None or \"\": no novelty column)")
    gap: str = Field("gap_if_nonmetal", description="component whose raw value is the (predicted) gap")
    nonmetal: str | None = Field(
        "p_nonmetal", description="component holding P(non-metal): the predicted gap is the gap column where it "
        "reaches `decision`, else 0 (None or \"\": the gap column is the gap)")
    decision: float | None = Field(
        None, ge=0, le=1, description="P(non-metal) threshold (None: the decision threshold of the gap model behind "
        "the `nonmetal` component, else 0.5)")
    window: tuple[float, float] = (1.1, 1.8)


class DiscoveryConfig(StrictModel):
    """Settings of a discovery run (the preset's ``[discovery]`` table)."""

    rounds: int = Field(10, gt=0)
    per_round: int = Field(512, gt=0, description="structures sampled per round")
    repeat_reward: float = Field(
        0.0, ge=0, le=1, description="reward factor of a structure first proposed in an earlier round (pushes toward new ones)")
    formula_bucket: int | None = Field(
        None, gt=0, description="distinct crystals per reduced formula that earn a reward; later polymorphs get 0, "
        "as REINVENT's scaffold buckets do for molecules (None: no limit)")
    relax: RelaxStageConfig = RelaxStageConfig()
    report: ReportConfig = ReportConfig()
    strategy: ReinforceConfig = Field(default_factory=lambda: ReinforceConfig(update_batch=64))


def require_relaxation_support(config: DiscoveryConfig) -> None:
    """Fail before a run starts when it asks for relaxations (``relax.per_round``
    and ``relax.budget`` above 0) but the interatomic potential is not
    installed: otherwise every relaxation would fail in its worker and the
    run would still end as a "success".

    Raises:
        MolgenError: chgnet cannot be imported (with the install hint).
    """
    if not (config.relax.per_round and config.relax.budget):
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
        config: Loop settings.
        relax_fn: ``payload -> result dict`` of the expensive oracle (default
            :func:`molgen.physics.relaxation.relax_structure`); it must be a
            top-level function so that process pools and Ray can ship it.
        executor: An executor from :mod:`molgen.loops.executors` (default:
            built from ``config.relax``).
        log: Called with one line per round (e.g. ``print``).
        progress: Show a bar over the rounds (on a terminal).
    """

    def __init__(self, strategy, objective, out_dir: str | Path, config: DiscoveryConfig,
                 relax_fn: Callable[[dict], dict] | None = None, executor=None, log: Callable[[str], None] | None = None,
                 progress: bool = False):
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
        self.index = StructureIndex(self.domain.matcher)
        self.round = 0
        self._texts: dict[str, str] = {}
        self._round_keys: dict[int, str] = {}
        self._first_round: dict[str, int] = {}
        self._tables: list[tuple[list[str], Any]] = []

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
        self.out_dir.mkdir(parents=True, exist_ok=True)
        store = CandidateStore(self.out_dir / STORE_NAME)
        executor = self.executor
        try:
            if not resume and store.count() > 0:
                raise MolgenError(f"{self.out_dir} already holds a discovery run ({store.count()} candidates); resume it or choose another output")
            oracle = Oracle(self.objective, self.domain, None, listener=lambda keys, objs, table: self._persist(store, keys, table),
                            key=self._key)
            if resume:
                self._restore(store, oracle)
            if executor is None and self.config.relax.per_round and self.config.relax.budget:
                from molgen.loops.executors import make_executor

                if self.relax_fn is None:
                    require_relaxation_support(self.config)

                executor = make_executor(self.config.relax.executor, self.config.relax.workers)
            rows = self._read_rounds()
            from molgen.core.progress import progress_bar

            with progress_bar(self.config.rounds, desc="rounds", unit="round", enabled=self.progress, initial=self.round) as bar:
                for r in range(self.round + 1, self.config.rounds + 1):
                    self.round = r
                    row = self._one_round(store, oracle, executor)
                    rows = [x for x in rows if int(x["round"]) < r] + [row]
                    self._write_rounds(rows)
                    save_checkpoint(self.out_dir, self.strategy, r)
                    bar.update(1)
                    self.log(self._round_line(row))
            summary = self._finish(store, rows)
        finally:
            if executor is not None and self.executor is None:
                executor.close()
            store.close()
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
        times["update"] = time.perf_counter() - t
        row = self._round_stats(store, texts, objs, keys, followups)
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
    def _stable(self, followup: dict) -> bool:
        if followup["status"] not in USABLE:
            return False
        limit = self.config.relax.max_formation_energy
        value = followup["result"].get("formation_energy_per_atom")
        return limit is None or (value is not None and value <= limit)

    def _relax_round(self, store: CandidateStore, executor) -> int:
        """Relax the round's best new candidates that passed every filter; return how many."""
        rc = self.config.relax
        done = store.followups(FOLLOWUP)
        left = rc.budget - len(done)
        if rc.per_round == 0 or left <= 0 or executor is None:
            return 0
        rows = store.connection.execute(
            "SELECT key, text, total FROM candidates WHERE step = ? AND rejected_by IS NULL AND total IS NOT NULL "
            "AND total > ? ORDER BY total DESC, call", (self.round, rc.min_score)).fetchall()
        # The round's top-k is fixed by its scores; a resumed round relaxes only what is missing.
        chosen = [(k, text, total) for k, text, total in rows[: rc.per_round] if k not in done][:left]
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
            for name in ("energy_per_atom", "formation_energy_per_atom"):
                if result.get(name) is not None and math.isfinite(result[name]):
                    pairs[name] = float(result[name])
            db.write(AseAtomsAdaptor.get_atoms(structure), **pairs)

    # -- resume -------------------------------------------------------------
    def _restore(self, store: CandidateStore, oracle: Oracle) -> None:
        step = load_checkpoint(self.out_dir, self.strategy)
        if step is None and store.count() == 0:
            raise MolgenError(f"{self.out_dir} holds no discovery run to resume")
        self.round = step or 0
        # Re-adding stored structures in call order rebuilds the same keys.
        for cand in store.candidates():
            self.index.add(self.domain.parse(cand.text), key=cand.key)
            self._first_round[cand.key] = cand.step
        oracle.restore(store.evaluations())

    # -- reporting ------------------------------------------------------------
    def _filter_values(self, components: dict, name: str) -> float:
        value = (components.get(name) or {}).get("raw")
        return math.nan if value is None else float(value)

    def _passes(self, components: dict, name: str) -> bool:
        for f in self.objective.filters:
            if f.component.name == name:
                return bool(f.passes(np.array([self._filter_values(components, name)]))[0])
        return not math.isnan(self._filter_values(components, name))

    def decision_threshold(self) -> float:
        """P(non-metal) from which the report calls a candidate a non-metal."""
        rep = self.config.report
        if rep.decision is not None:
            return rep.decision
        for term in self.objective.terms:
            if term.component.name == rep.nonmetal:
                decision = getattr(term.component, "decision", None)
                return 0.5 if decision is None else float(decision)
        return 0.5

    def predicted_gap(self, components: dict) -> float:
        """The gap the report counts: the gap column, zeroed where P(non-metal) is below the decision."""
        rep = self.config.report
        gap = self._filter_values(components, rep.gap)
        if rep.nonmetal and not self._filter_values(components, rep.nonmetal) >= self.decision_threshold():
            return 0.0
        return gap

    def _round_stats(self, store, texts, objs, keys, all_followups: dict[str, dict]) -> dict[str, Any]:
        rep = self.config.report
        lo, hi = rep.window
        new = list(store.candidates_of_step(self.round))
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
        valid = [c for c in new if all(self._passes(c.components, v) for v in rep.valid)]
        valid_novel = [c for c in valid if not rep.novel or self._passes(c.components, rep.novel)]
        gaps = np.array([self.predicted_gap(c.components) for c in valid_novel], dtype=float)
        in_window = int(np.sum((gaps >= lo) & (gaps <= hi)))
        row.update({
            "valid": len(valid), "valid_novel": len(valid_novel), "in_window": in_window,
            "validity": len(valid) / max(1, len(new)), "novelty_of_valid": len(valid_novel) / max(1, len(valid)),
            "in_window_fraction": in_window / max(1, len(valid_novel)),
        })
        followups = {k: f for k, f in all_followups.items() if f["step"] == self.round}
        energies = [f["result"].get("energy_per_atom") for f in followups.values() if f["status"] in USABLE]
        formation = [f["result"].get("formation_energy_per_atom") for f in followups.values() if f["status"] in USABLE]
        energies = np.array([e for e in energies if e is not None], dtype=float)
        formation = np.array([e for e in formation if e is not None], dtype=float)
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
        })
        return row

    @staticmethod
    def _round_line(row: dict) -> str:
        return (f"round {row['round']}: {row['sampled']} sampled, {row['new']} new, {row['pass_all']} pass filters, "
                f"in-window {row['in_window']}/{row['valid_novel']} valid novel ({100 * row['in_window_fraction']:.1f} %), "
                f"relaxed {row['relaxed']} ({row['stable']} stable)")

    def _read_rounds(self) -> list[dict[str, Any]]:
        path = self.out_dir / ROUNDS_NAME
        if not path.is_file():
            return []
        with path.open() as handle:
            return list(csv.DictReader(handle))

    def _write_rounds(self, rows: list[dict[str, Any]]) -> None:
        names: list[str] = []
        for row in rows:
            names += [k for k in row if k not in names]
        path = self.out_dir / ROUNDS_NAME
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(path)

    def _finish(self, store: CandidateStore, rows: list[dict[str, Any]]) -> dict[str, Any]:
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
                     "error": f["error"] or "", "cif": f"{RELAXED_DIR}/{_safe_name(key)}.cif" if f["status"] in USABLE else ""}
            entry["predicted_gap"] = self.predicted_gap(cand.components)
            for name, values in cand.components.items():
                entry[name] = values.get("raw")
            selected.append(entry)
        selected.sort(key=lambda e: (not e["stable"], -np.nan_to_num(e["score"], nan=-np.inf)))
        if selected:
            names: list[str] = []
            for e in selected:
                names += [k for k in e if k not in names]
            with (self.out_dir / SELECTED_NAME).open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=names)
                writer.writeheader()
                writer.writerows(selected)
        last = rows[-1] if rows else {}
        summary = {
            "objective": getattr(self.objective, "name", "objective"),
            "rounds": self.round,
            "candidates": store.count(),
            "relaxations": len(followups),
            "relaxation_status": {s: sum(f["status"] == s for f in followups.values()) for s in sorted({f["status"] for f in followups.values()})},
            "stable": sum(e["stable"] for e in selected),
            "in_window_fraction_by_round": [float(r["in_window_fraction"]) for r in rows],
            "last_round": last,
            "top": selected[:10],
            "matcher": self.domain.matcher.to_dict(),
            "report": {**self.config.report.model_dump(mode="json"), "decision_used": self.decision_threshold()},
        }
        write_json(self.out_dir / SUMMARY_NAME, summary)
        return summary
