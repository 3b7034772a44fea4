"""Benchmark: what a new user gets from `molgen train` with default settings.

For each backbone, runs exactly the commands a user would type (one torch
thread, one run at a time):

    OMP_NUM_THREADS=1 molgen train --domain smiles --data nci-5k --max-minutes 4 \\
        --seed 0 --backbone B --no-progress --out OUT/B
    OMP_NUM_THREADS=1 molgen sample OUT/B -n 1000 --seed 0 -o OUT/B/samples.csv

and reads the RDKit validity of the 1,000 samples, the steps reached and the
size the auto-size rule chose (``run.json`` -> ``auto_size``). Prints a
Markdown table and appends the row set to ``OUT/results.json`` (a list, one
entry per invocation), with the machine, its load average and the date.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_train_defaults.py \\
        --out benchmarks/out/train_defaults
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BACKBONES = ("autoregressive", "vae", "masked-diffusion")


def _molgen() -> list[str]:
    """The molgen console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("molgen")
    return [str(script)] if script.exists() else [sys.executable, "-m", "molgen.cli.main"]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _run(cmd: list[str], env: dict[str, str], log: Path) -> str:
    """Run a command, tee its output to ``log``, fail loudly on a non-zero exit."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


def rdkit_validity(samples_csv: Path) -> tuple[float, int]:
    """Fraction of rows of a `molgen sample` CSV whose SMILES RDKit parses."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    with samples_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    valid = sum(1 for r in rows if r["smiles"] and Chem.MolFromSmiles(r["smiles"]) is not None)
    return valid / max(len(rows), 1), len(rows)


def bench_backbone(backbone: str, args: argparse.Namespace, env: dict[str, str]) -> dict:
    run = Path(args.out) / backbone
    train_cmd = [*_molgen(), "train", "--domain", "smiles", "--data", args.data, "--max-minutes", str(args.minutes),
                 "--seed", str(args.seed), "--backbone", backbone, "--no-progress", "--out", str(run)]
    load_before = os.getloadavg()
    start = time.perf_counter()
    train_out = _run(train_cmd, env, Path(args.out) / f"{backbone}_train.log")
    wall = time.perf_counter() - start
    samples = run / "samples.csv"
    sample_cmd = [*_molgen(), "sample", str(run), "-n", str(args.samples), "--seed", str(args.seed), "-o", str(samples)]
    sample_out = _run(sample_cmd, env, Path(args.out) / f"{backbone}_sample.log")
    validity, n = rdkit_validity(samples)
    run_json = json.loads((run / "run.json").read_text())
    model_cfg = json.loads((run / "model" / "config.json").read_text())
    training = model_cfg.get("extra", {}).get("training", {})
    auto = run_json.get("auto_size") or {}
    reported = re.search(r"validity ([0-9.]+)", sample_out)
    return {
        "backbone": backbone,
        "size": auto.get("size", "explicit"),
        "n_params": auto.get("n_params"),
        "reason": auto.get("reason"),
        "probe_seconds": auto.get("probe_seconds"),
        "predicted_steps": auto.get("steps"),
        "steps": training.get("steps"),
        "tokens_per_s": round(training.get("tokens_per_s", 0.0)),
        "val_loss": training.get("val_loss"),
        "lr": run_json["train"]["lr"],
        "warmup_steps": run_json["train"]["warmup_steps"],
        "batch_size": run_json["train"]["batch_size"],
        "model": run_json["model"],
        "n_train": model_cfg.get("extra", {}).get("data", {}).get("n_train"),
        "samples": n,
        "validity_rdkit": round(validity, 4),
        "validity_reported": float(reported.group(1)) if reported else None,
        "train_wall_s": round(wall, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "train_stdout": train_out.strip().splitlines(),
    }


def markdown(rows: list[dict]) -> str:
    head = ("| backbone | chosen size | parameters | steps reached (predicted) | train tokens/s | validation loss "
            "| RDKit validity (1,000 samples) | load avg before -> after |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        val = f"{r['val_loss']:.3f}" if r["val_loss"] is not None else "n/a"
        params = f"{r['n_params']:,}" if r["n_params"] else "?"
        lines.append(
            f"| {r['backbone']} | {r['size']} | {params} | {r['steps']:,} ({r['predicted_steps']}) | {r['tokens_per_s']:,} "
            f"| {val} | **{r['validity_rdkit']:.3f}** | {r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default=",".join(BACKBONES), help="comma-separated (default: all three)")
    parser.add_argument("--data", default="nci-5k")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs (default 1)")
    parser.add_argument("--out", default="benchmarks/out/train_defaults")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    rows = []
    for backbone in [b.strip() for b in args.backbones.split(",") if b.strip()]:
        rows.append(bench_backbone(backbone, args, env))  # one at a time: runs share no cores with each other
        print(markdown(rows[-1:]).splitlines()[-1], flush=True)
    import torch

    entry = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{_cpu_model()}, nproc {os.cpu_count()}, torch {torch.__version__}",
        "threads": args.threads, "data": args.data, "minutes": args.minutes, "seed": args.seed, "rows": rows,
    }
    results = out / "results.json"
    history = json.loads(results.read_text()) if results.exists() else []
    history.append(entry)
    results.write_text(json.dumps(history, indent=2))
    print(f"\n{entry['date']}, {entry['machine']}, {args.threads} thread(s), {args.data}, {args.minutes:g} min, seed {args.seed}")
    print(markdown(rows))
    print(f"results: {results}")


if __name__ == "__main__":
    main()
