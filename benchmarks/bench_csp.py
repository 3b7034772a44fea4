"""Crystal structure prediction: composition -> structure (Perov-5 by default; ``--data
mp20-biternary --ar-model mp20`` for MP-20 binaries and ternaries).

For every composition of ``{data}-test`` (Perov-5: 758 crystals), each method
proposes ``k`` structures; scored the CDVAE/DiffCSP way
(:func:`molgen.metrics.structure_prediction.csp_report`: StructureMatcher
stol 0.5, angle_tol 10, ltol 0.3; match rate and RMSE at k = 1 and k = 20).

Methods (``--parts``):

* ``ar``: the shipped ``perov5`` autoregressive model, site lines fixed by the
  composition, grammar and site exclusion on (``molgen generate --composition``).
  Also ``autoregressive_ranked``: the same k samples with the most often
  sampled structure first, so k = 1 scores one proposal drawn from k samples.
* ``gd``: a graph-diffusion model (``--gd-model``), atom types fixed.
* ``sub``: ion substitution of the nearest-composition ``{data}-train``
  structures (:class:`SubstitutionTemplates`), as is.
* ``sub-relaxed``: the cheapest substitution relaxed with CHGNet (k = 1), on
  ``--relax-limit`` targets (seeded subset; CHGNet costs ~5 s per cell here).

Usage::

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_csp.py \\
        --parts ar,sub,sub-relaxed,gd --gd-model runs/perov5_gd --out benchmarks/results/csp_perov5.json

``--window 1.1 1.8`` keeps the targets whose ``band_gap`` lies in the window (with
``--data mp20-biternary``: how often the generator writes a held-out absorber
once it has its composition, the step a photovoltaic loop needs after it
finds a composition).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from molgen.backbones.base import Generator
from molgen.datasets.loading import load_texts
from molgen.domains.crystal import CrystalDomain
from molgen.domains.crystal.substitution import SubstitutionTemplates
from molgen.loops.polymorphs import cell_formula
from molgen.metrics.structure_prediction import csp_report
from molgen.workflows.structure_prediction import predict_structures, rank_structures


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def generated(model, targets, k: int, seed: int, temperature: float, steps: int | None) -> tuple[list, float]:
    start = time.perf_counter()
    proposals = []
    for i, target in enumerate(targets):
        proposals.append(predict_structures(model, cell_formula(target), k, seed=seed + i, temperature=temperature,
                                            batch_size=k, steps=steps))
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(targets)} targets, {time.perf_counter() - start:.0f} s", flush=True)
    return proposals, time.perf_counter() - start


def substituted(train, targets, k: int) -> tuple[list, float]:
    start = time.perf_counter()
    templates = SubstitutionTemplates(train)
    proposals = []
    for target in targets:
        counts = {el.symbol: int(round(n)) for el, n in target.composition.element_composition.items()}
        proposals.append(templates.propose(counts, k))
    return proposals, time.perf_counter() - start


def relaxed(proposals, jobs: int) -> tuple[list, float, dict]:
    """CHGNet-relax the first proposal of each list (a failed relaxation keeps the substitution)."""
    from pymatgen.core import Structure

    from molgen.metrics.parallel import run_chunks

    start = time.perf_counter()
    payloads = [{"structure": p[0].as_dict(), "settings": {"formation_energy": False}} if p else None for p in proposals]
    results = list(run_chunks(_relax_or_none, payloads, jobs))
    out, statuses = [], {}
    for p, r in zip(proposals, results):
        if r is None:
            out.append([])
            continue
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        final = r.get("final_structure")
        out.append([Structure.from_dict(final) if final else p[0]])
    return out, time.perf_counter() - start, statuses


def _relax_or_none(payload):
    if payload is None:
        return None
    torch.set_num_threads(1)
    from molgen.physics.relaxation import relax_structure

    return relax_structure(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="ar,sub,sub-relaxed")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--limit", type=int, default=None, help="score a seeded subset of the test compositions")
    parser.add_argument("--relax-limit", type=int, default=150)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for matching and relaxing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--ar-model", default="perov5")
    parser.add_argument("--gd-model", default=None)
    parser.add_argument("--steps", type=int, default=None, help="graph diffusion denoising steps")
    parser.add_argument("--data", default="perov-5", help="registered data set with -train and -test splits")
    parser.add_argument("--window", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="only targets with band_gap in [LOW, HIGH] eV")
    parser.add_argument("--out", default="benchmarks/results/csp_perov5.json")
    args = parser.parse_args()

    domain = CrystalDomain()
    loaded = load_texts(f"{args.data}-test", domain, keep_objects=True, targets=("band_gap",) if args.window else None)
    targets = loaded.objects
    if args.window:
        gaps = loaded.targets["band_gap"]
        targets = [t for t, g in zip(targets, gaps) if args.window[0] <= g <= args.window[1]]
    train = load_texts(f"{args.data}-train", domain, keep_objects=True).objects
    order = np.random.default_rng(args.seed).permutation(len(targets))
    if args.limit:
        targets = [targets[i] for i in order[: args.limit]]
    print(f"{len(targets)} targets, {len(train)} training structures", flush=True)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["setup"] = {"machine": machine(), "date": str(date.today()), "seed": args.seed, "targets": len(targets),
                        "k": args.k, "window_band_gap": args.window,
                        "data": f"{args.data}-test compositions; templates and training: {args.data}-train"}

    def record(name: str, proposals, seconds: float, **extra) -> None:
        report = csp_report(proposals, targets, ks=(1, args.k), n_jobs=args.jobs)
        report.pop("rms")
        results[name] = {**report, "seconds": round(seconds, 1), **extra}
        print(name, json.dumps(results[name]), flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1))

    parts = args.parts.split(",")
    if "ar" in parts:
        model = Generator.from_pretrained(args.ar_model)
        proposals, seconds = generated(model, targets, args.k, args.seed, args.temperature, None)
        record("autoregressive", proposals, seconds, model=args.ar_model, temperature=args.temperature)
        # One proposal from k samples: the structure sampled most often (the CLI's ranking).
        start = time.perf_counter()
        ranked = [[p[i] for i in rank_structures(p)] for p in proposals]
        record("autoregressive_ranked", ranked, seconds + time.perf_counter() - start, model=args.ar_model,
               temperature=args.temperature, ranking="most often sampled of k first")
    if "gd" in parts:
        model = Generator.from_pretrained(args.gd_model)
        proposals, seconds = generated(model, targets, args.k, args.seed, args.temperature, args.steps)
        record("graph_diffusion", proposals, seconds, model=str(args.gd_model), steps=args.steps or model.config.sampling_steps)
    if "sub" in parts or "sub-relaxed" in parts:
        proposals, seconds = substituted(train, targets, args.k)
        if "sub" in parts:
            record("substitution", proposals, seconds)
        if "sub-relaxed" in parts:
            chosen = sorted(order[: args.relax_limit].tolist()) if not args.limit else list(range(min(args.relax_limit, len(targets))))
            subset_targets = [targets[i] for i in chosen]
            firsts, relax_seconds, statuses = relaxed([proposals[i][:1] for i in chosen], args.jobs)
            as_is = csp_report([proposals[i][:1] for i in chosen], subset_targets, ks=(1,), n_jobs=args.jobs)
            report = csp_report(firsts, subset_targets, ks=(1,), n_jobs=args.jobs)
            report.pop("rms")
            as_is.pop("rms")
            results["substitution_chgnet"] = {**report, "same_targets_unrelaxed": as_is["k1"], "seconds": round(relax_seconds, 1),
                                              "relaxation_status": statuses, "workers": args.jobs}
            print("substitution_chgnet", json.dumps(results["substitution_chgnet"]), flush=True)
            out_path.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
