"""Benchmark `molgen evaluate` on MOSES: 30,000 molecules drawn (seeded) from
moses-train, evaluated against moses-test with moses-train for novelty, cold
cache and warm cache; optionally the reference implementation (molsets 0.3.1)
on the same file, with per-metric differences.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_metrics.py \
        --n 30000 --jobs 2 --out benchmarks/out/metrics [--molsets]

Each phase runs in a fresh process so its wall time and peak RSS are its own
(peak RSS: the evaluating process and, separately, its largest worker).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

MOSES_TRAIN_ROW = {  # MOSES paper, Table 2, "Train" row (full sets)
    "FCD/Test": 0.008, "SNN/Test": 0.6419, "Frag/Test": 1.000, "Scaf/Test": 0.9907,
    "IntDiv": 0.8567, "IntDiv2": 0.8508, "Filters": 1.0,
}


def _phase(args: argparse.Namespace) -> None:
    """Evaluate once in this process and write timings + RSS as JSON."""
    from molgen.workflows.evaluation import evaluate_file

    tic = time.perf_counter()
    report = evaluate_file(args.gen, reference=args.ref, training="moses-train", reference_required=True,
                           training_required=True, n_jobs=args.jobs, seed=42)
    seconds = time.perf_counter() - tic
    result = report.to_dict()
    result["wall_seconds"] = round(seconds, 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["peak_rss_largest_worker_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    Path(args.result).write_text(json.dumps(result, indent=2))


def _make_generated(n: int, seed: int, path: Path) -> None:
    from molgen.datasets.loading import resolve_source
    from molgen.datasets.readers import read_records

    source, spec = resolve_source("moses-train")
    records = read_records(source, fmt=spec.fmt, column=spec.column, limit=n, seed=seed)
    path.write_text("".join(f"{r.text}\n" for r in records))


def _make_reference(limit: int, seed: int, path: Path) -> None:
    from molgen.datasets.loading import resolve_source
    from molgen.datasets.readers import read_records

    source, spec = resolve_source("moses-test")
    records = read_records(source, fmt=spec.fmt, column=spec.column, limit=limit, seed=seed)
    path.write_text("SMILES\n" + "".join(f"{r.text}\n" for r in records))


def _run_phase(out: Path, name: str, gen: Path, ref: str, jobs: int, home: Path) -> dict:
    result = out / f"{name}.json"
    env = dict(os.environ, MOLGEN_HOME=str(home))
    cmd = [sys.executable, __file__, "--phase", "--gen", str(gen), "--ref", ref, "--jobs", str(jobs), "--result", str(result)]
    subprocess.run(cmd, check=True, env=env)
    return json.loads(result.read_text())


def _run_molsets(out: Path, gen: Path, ref: str, jobs: int) -> dict:
    from molgen.datasets.loading import resolve_source

    subprocess.run(["bash", str(Path(__file__).with_name("molsets_env.sh"))], check=True)
    python = Path(__file__).parent / "out" / "molsets-venv" / "bin" / "python"
    result = out / "molsets.json"
    cmd = [str(python), str(Path(__file__).with_name("molsets_reference.py")), str(gen),
           "--test", str(resolve_source(ref)[0]), "--train", str(resolve_source("moses-train")[0]),
           "--n-jobs", str(jobs), "--device", "cpu", "-o", str(result)]
    subprocess.run(cmd, check=True)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30_000, help="molecules drawn from moses-train")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/metrics")
    parser.add_argument("--ref-limit", type=int, help="use a seeded subset of moses-test of this size as reference")
    parser.add_argument("--ref", default="moses-test", help=argparse.SUPPRESS)
    parser.add_argument("--molsets", action="store_true", help="also run molsets 0.3.1 side by side")
    parser.add_argument("--skip-molgen", action="store_true",
                        help="reuse the cold/warm (and molsets) JSON already in --out; only rebuild the summary")
    parser.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--gen", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _phase(args)
        return

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen = out / f"moses_train_{args.n}_seed{args.seed}.smi"
    if not gen.exists():
        _make_generated(args.n, args.seed, gen)
    ref = "moses-test"
    if args.ref_limit:
        ref_path = out / f"moses_test_{args.ref_limit}_seed{args.seed}.csv"
        if not ref_path.exists():
            _make_reference(args.ref_limit, args.seed, ref_path)
        ref = str(ref_path)
    home = out / "molgen-home"
    if args.skip_molgen:
        cold, warm = (json.loads((out / f"{p}.json").read_text()) for p in ("cold", "warm"))
    else:
        shutil.rmtree(home, ignore_errors=True)  # cold: no cached reference statistics
        cold = _run_phase(out, "cold", gen, ref, args.jobs, home)
        warm = _run_phase(out, "warm", gen, ref, args.jobs, home)
    molsets = None
    if args.molsets:
        molsets = _run_molsets(out, gen, ref, args.jobs)
    elif args.skip_molgen and (out / "molsets.json").exists():
        molsets = json.loads((out / "molsets.json").read_text())

    rows = []
    for name, value in warm["metrics"].items():
        theirs = None if molsets is None else molsets["metrics"].get(name)
        diff = None if (theirs is None or value is None) else value - theirs
        rows.append({"metric": name, "molgen": value, "molsets": theirs, "difference": diff,
                     "relative": None if diff is None or not theirs else diff / abs(theirs),
                     "moses_paper_train_row": MOSES_TRAIN_ROW.get(name)})
    summary = {
        "date": date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "n_generated": args.n, "seed": args.seed, "jobs": args.jobs, "reference": ref,
        "molgen_cold_seconds": cold["wall_seconds"], "molgen_warm_seconds": warm["wall_seconds"],
        "molgen_cold_per_metric_seconds": cold["metadata"]["seconds"],
        "molgen_warm_per_metric_seconds": warm["metadata"]["seconds"],
        "molgen_peak_rss_mb": {"cold": cold["peak_rss_mb"], "warm": warm["peak_rss_mb"],
                               "largest_worker_cold": cold["peak_rss_largest_worker_mb"],
                               "largest_worker_warm": warm["peak_rss_largest_worker_mb"]},
        "molsets_seconds": None if molsets is None else molsets.get("seconds"),
        "molsets_peak_rss_mb": None if molsets is None else molsets.get("peak_rss_mb"),
        "versions": warm["metadata"]["versions"], "molsets_versions": None if molsets is None else molsets.get("versions"),
        "rows": rows,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
