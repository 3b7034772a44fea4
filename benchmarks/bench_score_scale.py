"""Scoring a large file (issue 33, item 3): molecules/s and peak memory of
``molgen score`` in one process, in a local process pool and through Ray, and
whether memory stays flat with the file's length.

Runs each configuration as its own ``molgen score`` process and samples the
memory (RSS and PSS) of that process and all of its descendants (pool
workers, and for Ray the local instance it starts: GCS, raylet, workers)
every 0.2 s.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_score_scale.py /tmp/zinc1m.smi \\
        --objective qed --sizes 100000,1000000 --configs serial,process,ray --workers 2

The input is SMILES sampled from the shipped prior (``molgen sample zinc250k
-n 1000000 --nproc 2 --seed 0``); shorter inputs are its first lines.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


def tree_memory(root: psutil.Process) -> tuple[int, int]:
    """``(RSS, PSS)`` bytes of ``root`` and its descendants (gone ones count 0).
    RSS counts shared pages (torch's and RDKit's libraries) once per process;
    PSS splits them among the processes sharing them, so its sum is what
    the tree really holds."""
    rss = pss = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        rss, pss = rss + info.rss, pss + getattr(info, "pss", info.rss)
    return rss, pss


def run_one(command: list[str], env: dict) -> dict:
    """Run ``command``; its wall time, peak tree RSS and output."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    root, peak, done = psutil.Process(proc.pid), [0, 0], threading.Event()

    def watch():
        while not done.is_set():
            rss, pss = tree_memory(root)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    output, _ = proc.communicate()
    done.set()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output[-3000:]}")
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak[0] / 2**20, "peak_pss_mb": peak[1] / 2**20,
            "output": output.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("smiles", help="a .smi file of at least max(--sizes) lines")
    parser.add_argument("--objective", default="qed")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--configs", default="serial,process,ray", help="executors; serial runs at every size, the others at the largest")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--out", default=str(HERE / "results" / "score_scale.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    configs = args.configs.split(",")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        with open(args.smiles) as source:
            lines = source.readlines()
        for size in sizes:
            if size > len(lines):
                raise SystemExit(f"{args.smiles} has {len(lines)} lines, fewer than {size}")
            inputs[size] = Path(tmp) / f"in{size}.smi"
            inputs[size].write_text("".join(lines[:size]))
        del lines
        plan = [("serial", size) for size in sizes] + [(c, max(sizes)) for c in configs if c != "serial"]
        for executor, size in plan:
            out = Path(tmp) / f"{executor}{size}.csv"
            command = [sys.executable, "-m", "molgen", "score", str(inputs[size]), "--objective", args.objective,
                       "-o", str(out), "-q", "--executor", executor, "--workers", str(args.workers),
                       "--chunk-size", str(args.chunk_size)]
            row = run_one(command, env)
            row.update(executor=executor, workers=1 if executor == "serial" else args.workers, molecules=size,
                       molecules_per_s=size / row["seconds"], output_mb=out.stat().st_size / 2**20)
            print(json.dumps(row), flush=True)
            results.append(row)
            out.unlink()
    report = {
        "date": datetime.date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB", "objective": args.objective,
        "chunk_size": args.chunk_size, "input": args.smiles, "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
