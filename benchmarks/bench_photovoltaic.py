"""The photovoltaic discovery loop on Perov-5 (issue 9) and on MP-20 chemistry (issue 32, ``--chemistry mp20``).

Parts (``--parts``, comma-separated):

* ``base``: the base rate of the training data: the fraction of
  ``perov-5-train`` whose GLLB-SC direct (and indirect) gap lies in the window.
* ``loop``: ``molgen discover --preset photovoltaic`` with the shipped Perov-5
  generator (trained on ``perov-5-train`` only) and the shipped predictors;
  per round the funnel, the in-window fraction among valid novel candidates,
  the CHGNet energies and the time split; the best candidates.
* ``sanity``: the same loop with the gap predictor swapped for the true gap
  of known structures (``--preset photovoltaic-known-gap``): how many of the
  in-window structures of the validation and test splits (held out of the
  generator's training data) it rediscovers.
* ``throughput``: CHGNet relaxations of Perov-5 test cells (5 atoms) per
  minute, in one process and through the process-pool executor.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python \\
        benchmarks/bench_photovoltaic.py --parts base,loop,sanity,throughput --out benchmarks/out/pv
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import math
import os
import time
from pathlib import Path

import numpy as np
from bench_crystal_predictors import cpu_model  # benchmarks/ is the script's directory


#: Per chemistry: data set, gap columns (the first is the sanity oracle's), presets.
CHEMISTRIES = {
    "perov5": {"data": "perov-5", "columns": ("dir_gap", "ind_gap"), "loop": "photovoltaic",
               "sanity": "photovoltaic-known-gap"},
    "mp20": {"data": "mp20-biternary", "columns": ("band_gap",), "loop": "photovoltaic-mp20",
             "sanity": "photovoltaic-mp20-known-gap"},
}


def base_rate(window: tuple[float, float], chemistry: str = "perov5") -> dict:
    """In-window fractions of the chemistry's splits (true gaps: GLLB-SC for
    Perov-5, PBE for MP-20)."""
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain

    domain = CrystalDomain()
    spec = CHEMISTRIES[chemistry]
    out = {}
    for split in ("train", "val", "test"):
        loaded = load_texts(f"{spec['data']}-{split}", domain, on_invalid="skip")
        row = {"n": len(loaded.texts)}
        for column in spec["columns"]:
            gaps = np.asarray(loaded.targets[column], dtype=float)
            inside = (gaps >= window[0]) & (gaps <= window[1])
            row[f"{column}_in_window"] = int(inside.sum())
            row[f"{column}_in_window_fraction"] = float(inside.mean())
            row[f"{column}_nonmetal_fraction"] = float((gaps > 1e-3).mean())
        out[split] = row
    return out


def run_loop(preset: str, out_dir: Path, args, relax_per_round: int) -> dict:
    """One discovery run through the workflow API (what ``molgen discover`` calls)."""
    from molgen.core.config import validate
    from molgen.core.seeding import seed_everything
    from molgen.workflows.discovery import DiscoverSettings, discover, load_preset
    from molgen.workflows.training import apply_overrides

    spec = apply_overrides(load_preset(preset).model_dump(mode="json"), {
        "discovery.rounds": args.rounds,
        "discovery.per_round": args.per_round,
        "discovery.relax.per_round": relax_per_round,
        "discovery.relax.workers": args.workers,
        "discovery.formula_bucket": args.formula_bucket,
    })
    if args.formula_bucket == 0:  # 0: no buckets
        spec["discovery"]["formula_bucket"] = None
    if args.condition is not None:  # the generator's band-gap condition (a conditional prior)
        spec["discovery"]["strategy"]["condition"] = {"band_gap": args.condition}
    settings = validate(DiscoverSettings, {"preset": spec, "seed": args.seed, "device": "cpu"})
    seed_everything(args.seed)
    resume = (out_dir / "discover.json").is_file()
    start = time.perf_counter()
    result = discover(settings, out_dir, resume=resume, rounds=args.rounds if resume else None, log=print)
    seconds = time.perf_counter() - start
    with (out_dir / "rounds.csv").open() as handle:
        rounds = list(csv.DictReader(handle))
    return {"preset": preset, "run_dir": str(out_dir), "seconds_this_call": round(seconds, 1), "resumed": resume,
            "rounds": rounds, "relaxed_energies": relaxed_energies(out_dir), "top": top_candidates(out_dir),
            "summary": result.summary}


def relaxed_energies(run_dir: Path) -> list[dict]:
    """Per round: the CHGNet-relaxed energy per atom and formation-energy proxy
    of the relaxed candidates (10th / 50th / 90th percentiles) and outcomes."""
    import sqlite3

    with sqlite3.connect(run_dir / "candidates.sqlite") as db:
        rows = db.execute("SELECT step, status, result FROM followups ORDER BY step").fetchall()
    by_round: dict[int, list] = {}
    for step, status, result in rows:
        by_round.setdefault(step, []).append((status, json.loads(result)))
    table = []
    for step, items in sorted(by_round.items()):
        row = {"round": step, "relaxed": len(items), "status": {}}
        for status, _ in items:
            row["status"][status] = row["status"].get(status, 0) + 1
        for name in ("energy_per_atom", "formation_energy_per_atom"):
            values = np.array([r.get(name) for st, r in items if st in ("ok", "unconverged") and r.get(name) is not None], dtype=float)
            row[name] = [round(float(q), 3) for q in np.quantile(values, [0.1, 0.5, 0.9])] if len(values) else None
        table.append(row)
    return table


def top_candidates(run_dir: Path, k: int = 10) -> list[dict]:
    """The first ``k`` rows of selected.csv (stable first, best score first)."""
    path = run_dir / "selected.csv"
    if not path.is_file():
        return []
    with path.open() as handle:
        rows = list(csv.DictReader(handle))[:k]
    keep = ("key", "round", "score", "predicted_gap", "p_nonmetal", "gap_if_nonmetal", "band_gap", "formation_energy",
            "status", "energy_per_atom", "formation_energy_per_atom", "cif")
    return [{name: row[name] for name in keep if name in row} for row in rows]


class HeldOut:
    """The validation and test structures of a chemistry (held out of the
    generator's training data), indexed to recognise a candidate that
    rediscovers one: by structure (``StructureMatcher``, independent of how the
    objective scored it) and, for compositions the training split lacks, by
    reduced formula."""

    def __init__(self, window: tuple[float, float], chemistry: str):
        from molgen.datasets import load_texts
        from molgen.domains.crystal import CrystalDomain
        from molgen.domains.crystal.matching import StructureIndex

        spec = CHEMISTRIES[chemistry]
        column = spec["columns"][0]
        self.domain = CrystalDomain()
        self.index = StructureIndex(self.domain.matcher)
        self.gaps: dict[str, float] = {}
        train = load_texts(f"{spec['data']}-train", self.domain, on_invalid="skip")
        self.train_formulas = {self.domain.parse(t).composition.reduced_formula for t in train.texts}
        self.window_formulas: set[str] = set()  # in-window held-out compositions absent from training
        for split in ("val", "test"):
            loaded = load_texts(f"{spec['data']}-{split}", self.domain, on_invalid="skip")
            for text, gap in zip(loaded.texts, loaded.targets[column]):
                structure = self.domain.parse(text)
                self.gaps.setdefault(self.index.add(structure), float(gap))
                formula = structure.composition.reduced_formula
                if window[0] <= gap <= window[1] and formula not in self.train_formulas:
                    self.window_formulas.add(formula)
        self.window = window
        self.in_window_total = sum(window[0] <= g <= window[1] for g in self.gaps.values())

    def count(self, rows) -> dict:
        """Rediscoveries among ``(round, structure or text, rejected_by)`` rows.

        Returns:
            ``held_out_known_proposed`` (held-out structures written exactly),
            ``rediscovered`` (those in the window: distinct, with the round and
            whether the objective's filters admitted them), and
            ``window_formulas_found`` (distinct in-window held-out compositions
            the training split lacks, whatever the structure).
        """
        from molgen.loops.discovery import decode

        known, found, formulas = set(), {}, {}
        for step, obj, rejected_by in rows:
            structure = decode(self.domain, obj) if isinstance(obj, str) else obj  # None: a text that does not parse
            if structure is None:
                continue
            formula = structure.composition.reduced_formula
            if formula in self.window_formulas:
                formulas.setdefault(formula, step)
            try:
                key = self.index.find(structure)
            except Exception:  # a degenerate cell the matcher refuses: not a rediscovery
                continue
            if key is None:
                continue
            known.add(key)
            gap = self.gaps[key]
            if self.window[0] <= gap <= self.window[1] and key not in found:
                found[key] = {"formula": formula, "round": step, "gap": gap, "rejected_by": rejected_by}
        rediscovered = sorted(found.values(), key=lambda f: f["round"])
        return {"held_out_known_proposed": len(known), "held_out_in_window_total": self.in_window_total,
                "rediscovered_in_window": len(rediscovered),
                "admissible_rediscovered": sum(f["rejected_by"] is None for f in rediscovered), "rediscovered": rediscovered,
                "window_formulas_total": len(self.window_formulas), "window_formulas_found": len(formulas),
                "window_formulas": sorted(formulas.items(), key=lambda kv: kv[1])}


def sanity_rediscoveries(run_dir: Path, held_out: HeldOut) -> dict:
    """Held-out in-window structures the sanity run proposed (see :meth:`HeldOut.count`)."""
    import sqlite3

    with sqlite3.connect(run_dir / "candidates.sqlite") as db:
        rows = db.execute("SELECT step, text, rejected_by FROM candidates ORDER BY call").fetchall()
    return held_out.count(rows)


def prior_by_chance(preset: str, held_out: HeldOut, args, stage: bool = True, per_round: int | None = None) -> dict:
    """What the sanity loop's count is worth: the same number of samples
    (rounds x per-round) from the prior, never updated, scored by the sanity
    objective, deduplicated across the run the way the loop does.

    Args:
        stage: Also run the preset's polymorph stage (the same plan of formulas
            and neighbours as the loop, on the prior's candidates).
        per_round: Samples per round (default ``args.per_round``); the stage-free
            prior at the loop's whole candidate budget takes more.
    """
    from molgen.backbones.base import load_generator
    from molgen.core.seeding import seed_everything
    from molgen.domains.crystal.matching import StructureIndex
    from molgen.loops.discovery import decode
    from molgen.loops.polymorphs import element_pool, plan_cells, resample
    from molgen.loops.reinforce import PriorRegularizedRL
    from molgen.scoring.objective import Objective
    from molgen.workflows.discovery import load_preset
    from molgen.workflows.optimization import resolve_prior
    from molgen.workflows.structure_prediction import predict_structures

    spec = load_preset(preset)
    objective = Objective.from_spec(spec.objective)
    polymorphs = spec.discovery.polymorphs
    stage = stage and polymorphs.active
    per_round = per_round or args.per_round
    pool = element_pool(polymorphs) if stage and polymorphs.neighbours else ()
    seed_everything(args.seed)
    config = spec.discovery.strategy
    if args.condition is not None:
        config = config.model_copy(update={"condition": {"band_gap": args.condition}})
    strategy = PriorRegularizedRL(load_generator(resolve_prior(spec.generator or "perov5"), "cpu"), config, seed=args.seed)
    index = StructureIndex(strategy.domain.matcher)
    rows, rejected, start = [], {}, time.perf_counter()
    ranked: list[tuple[float, int, object]] = []  # every passed candidate of the run: (-score, order, structure)
    times_resampled: dict[str, int] = {}  # reduced formula -> rounds that resampled it

    def score(objs: list) -> list:
        table = objective(objs)
        for i, obj in enumerate(objs):
            if table.rejected_by[i] is None and np.isfinite(table.total[i]) and table.total[i] > polymorphs.min_score:
                ranked.append((-float(table.total[i]), len(ranked), obj))
        return table.rejected_by

    for r in range(1, args.rounds + 1):
        objs = [decode(strategy.domain, t) for t in strategy.propose(per_round)]
        new = []
        for obj in objs:
            try:
                key = None if obj is None else index.add(obj)
            except Exception:
                key = None
            if key is not None and key not in rejected:  # new to the run
                rejected[key] = None
                new.append((key, obj))
        first = len(ranked)
        for (key, obj), why in zip(new, score([o for _, o in new])):
            rejected[key] = why
            rows.append((r, obj, why))
        resampled = 0
        if stage:  # the loop's polymorph stage on the prior's best formulas: the same plan, no learning
            ranked.sort()
            pool_now = ranked if polymorphs.frontier == "run" else [x for x in ranked if x[1] >= first]  # this round's own
            plan = plan_cells((obj for _, _, obj in pool_now), polymorphs, times_resampled, pool)
            extra = []
            for obj in resample(strategy.prior, [c for c, _, _ in plan], polymorphs, r, predict_structures, [o for _, _, o in plan]):
                try:
                    key = None if obj is None else index.add(obj)
                except Exception:
                    key = None
                if key is not None and key not in rejected:
                    rejected[key] = None
                    extra.append(obj)
            if extra:
                rows += [(r, obj, why) for obj, why in zip(extra, score(extra))]
            resampled = len(extra)
        print(f"[chance] round {r}: {len(new)} new structures" + (f", {resampled} new polymorphs" if stage else ""))
    return {"samples": args.rounds * per_round, "distinct": len(rows), **held_out.count(rows),
            "polymorph_stage": polymorphs.model_dump() if stage else None,
            "seconds": round(time.perf_counter() - start, 1)}


def rediscovery_line(r: dict) -> str:
    return (f"rediscovered {r['rediscovered_in_window']} of {r['held_out_in_window_total']} held-out in-window structures "
            f"({r['admissible_rediscovered']} admissible; {r['held_out_known_proposed']} held-out known structures proposed); "
            f"{r['window_formulas_found']} of {r['window_formulas_total']} in-window held-out compositions new to training")


def throughput(n: int, workers: int) -> dict:
    """CHGNet relaxations per minute on Perov-5 test cells, serial and through a process pool."""
    from molgen.datasets import load_texts
    from molgen.domains.crystal import CrystalDomain
    from molgen.core.executors import ProcessPoolExecutor, SerialExecutor
    from molgen.physics.relaxation import elemental_references, relax_structure

    domain = CrystalDomain()
    loaded = load_texts("perov-5-test", domain, limit=n, seed=0)
    structures = [domain.parse(t) for t in loaded.texts]
    elements = sorted({el.symbol for s in structures for el in s.composition.elements})
    start = time.perf_counter()
    elemental_references(elements)  # cached under MOLGEN_HOME: paid once per element
    ref_seconds = time.perf_counter() - start
    payloads = [{"structure": s.as_dict(), "settings": {"steps": 200, "fmax": 0.05}} for s in structures]
    out = {"structures": n, "atoms_per_cell": 5, "reference_seconds": round(ref_seconds, 1), "elements": len(elements)}
    for name, executor in (("serial_1_thread", SerialExecutor()), (f"process_pool_{workers}", ProcessPoolExecutor(workers))):
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        with executor:
            if name.startswith("process"):  # start the workers and load the model before timing
                list(executor.map(relax_structure, payloads[:workers]))
            start = time.perf_counter()
            results = [r for _, r in executor.map(relax_structure, payloads)]
            seconds = time.perf_counter() - start
        torch.set_num_threads(threads)
        statuses = [r.get("status", "failed") if isinstance(r, dict) else "failed" for r in results]
        steps = [r.get("steps", 0) for r in results if isinstance(r, dict)]
        out[name] = {"seconds": round(seconds, 1), "per_minute": round(60 * n / seconds, 1),
                     "status": {s: statuses.count(s) for s in sorted(set(statuses))}, "mean_steps": float(np.mean(steps))}
        print(f"[throughput] {name}: {n} relaxations in {seconds:.1f} s = {60 * n / seconds:.1f}/min; {out[name]['status']}")
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="base,loop,sanity,throughput", help="also: chance (the prior's count, no updates, "
                        "with the preset's polymorph stage), prior (the prior alone, no stage)")
    parser.add_argument("--prior-per-round", type=int, default=None,
                        help="samples per round of the stage-free prior (set it to the loop's per-round candidate "
                        "count, proposals plus resampled structures, to compare at the same oracle budget)")
    parser.add_argument("--chemistry", choices=sorted(CHEMISTRIES), default="perov5")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=512)
    parser.add_argument("--relax-per-round", type=int, default=16)
    parser.add_argument("--sanity-relax-per-round", type=int, default=0, help="relaxations per round in the sanity run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--formula-bucket", type=int, default=None, help="rewarded crystals per reduced formula (preset default if unset; 0: no buckets)")
    parser.add_argument("--sanity-preset", default=None, help="preset name or TOML of the sanity run (default: the chemistry's)")
    parser.add_argument("--condition", type=float, default=None,
                        help="sample and score the generator at this band_gap condition (eV; the mp20 prior is conditional)")
    parser.add_argument("--throughput-n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/out/pv")
    parser.add_argument("--results", default="benchmarks/results/photovoltaic.json")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    results_path = Path(args.results)
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.update({
        "date": datetime.date.today().isoformat(),
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": 1, "torch": torch.__version__},
        "settings": {k: v for k, v in vars(args).items() if k not in ("parts", "out", "results")},
    })
    window = (1.1, 1.8)
    chem = CHEMISTRIES[args.chemistry]
    column = chem["columns"][0]
    if "base" in parts:
        results["base_rate"] = base_rate(window, args.chemistry)
        print(f"[base] {chem['data']}-train in-window fraction ({column}) {results['base_rate']['train'][f'{column}_in_window_fraction']:.4f}")
    if "loop" in parts:
        results["loop"] = run_loop(chem["loop"], out / "loop", args, args.relax_per_round)
    held_out = HeldOut(window, args.chemistry) if parts & {"sanity", "chance", "prior"} else None
    if "sanity" in parts:
        results["sanity"] = run_loop(args.sanity_preset or chem["sanity"], out / "sanity", args, args.sanity_relax_per_round)
        results["sanity"]["rediscovery"] = r = sanity_rediscoveries(out / "sanity", held_out)
        print(f"[sanity] {rediscovery_line(r)}")
    if "chance" in parts:
        results["chance"] = r = prior_by_chance(args.sanity_preset or chem["sanity"], held_out, args)
        print(f"[chance] the prior, {r['samples']} samples: {rediscovery_line(r)}")
    if "prior" in parts:
        results["prior"] = r = prior_by_chance(args.sanity_preset or chem["sanity"], held_out, args, stage=False,
                                               per_round=args.prior_per_round)
        print(f"[prior] the prior alone, {r['samples']} samples: {rediscovery_line(r)}")
    if "throughput" in parts:
        results["throughput"] = throughput(args.throughput_n, args.workers)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)) + "\n")
    print(f"-> {results_path}")
    return results


if __name__ == "__main__":
    main()
