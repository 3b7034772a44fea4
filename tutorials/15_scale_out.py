"""Tutorial 15: outgrow one process. Score a library that does not fit in
memory through a pool of workers (or a Ray cluster), run an expensive oracle
in parallel inside an optimisation, and train and sample with several
processes: the results are the ones one process gives.

Runs without the data mirror, on the CPU (about a minute; the parallel parts
start worker processes, so they gain only where there are cores to spare).

    .venv/bin/python tutorials/15_scale_out.py

The same from the command line:

    molgen sample zinc250k -n 100000 --nproc 4 -o library.smi             # 4 processes, one merged file
    molgen score library.smi --objective qed -o scores.csv --executor process --workers 4
    RAY_ADDRESS=auto molgen score library.smi --objective dock.toml -o scores.csv --executor ray
    molgen optimize --objective pmo/qed --budget 1000 --executor process --workers 4 --out runs/opt
    molgen train --data zinc250k --nproc 2 --out runs/ddp                  # DistributedDataParallel (gloo / NCCL)
    molgen sample runs/ddp -n 10000 --device cuda --precision bf16 -o big.smi

Environment knobs (the test suite uses tiny values):
    MOLGEN_TUTORIAL_SAMPLES  molecules in the library (default 5000; at least 200)
    MOLGEN_TUTORIAL_OUT      output directory (default runs/tutorial-15)
"""

import csv
import os
import time
from pathlib import Path

from molgen.backbones.base import load_generator
from molgen.core.device import autocast
from molgen.core.executors import make_executor
from molgen.domains import SmilesDomain
from molgen.pretrained import resolve_model_path
from molgen.scoring import get_objective
from molgen.scoring.parallel import ExecutorObjective, ObjectiveSource
from molgen.workflows.scoring import score_file

n = max(int(os.environ.get("MOLGEN_TUTORIAL_SAMPLES", 5000)), 200)
out = Path(os.environ.get("MOLGEN_TUTORIAL_OUT", "runs/tutorial-15"))
out.mkdir(parents=True, exist_ok=True)

if __name__ == "__main__":  # pool workers are spawned: they import this file without running it
    # 1. A library from the shipped prior (bf16 autocast on request; on a GPU "auto" already means bf16).
    prior = load_generator(resolve_model_path("zinc250k"))
    with autocast("cpu", "fp32"):
        texts = prior.sample_texts(n, seed=0, batch_size=512)
    library = out / "library.smi"
    library.write_text("".join(f"{t} lib{i}\n" for i, t in enumerate(texts)))
    print(f"library: {n} SMILES from the prior")

    # 2. Score it streamed: one process, then a pool of two; the tables are identical, in input order.
    timings = {}
    for executor in ("serial", "process"):
        start = time.perf_counter()
        summary = score_file(library, "qed", out / f"qed_{executor}.csv", executor=executor, workers=2, chunk_size=256)
        timings[executor] = time.perf_counter() - start
        print(f"{executor:8s}: scored {summary.n_scored} of {summary.n} in {timings[executor]:.1f} s, best QED {summary.best:.3f}")
    same = (out / "qed_serial.csv").read_text() == (out / "qed_process.csv").read_text()
    print(f"identical tables: {same}")
    assert same
    with open(out / "qed_serial.csv") as handle:
        first = next(csv.DictReader(handle))
    print(f"first row: {first['id']} {first['smiles']} score {first['score']}")

    # 3. An oracle behind an executor: what optimize --executor does with every batch.
    domain = SmilesDomain()
    mols = [domain.try_parse(t) for t in texts[:128]]
    with make_executor("process", 2) as pool:
        pooled = ExecutorObjective(ObjectiveSource.of("pmo/qed"), pool, chunk_size=32, workers=2)(mols)
    direct = get_objective("pmo/qed")(mols)
    agree = all((a == b) or (a != a and b != b) for a, b in zip(pooled.total, direct.total))
    print(f"pooled oracle agrees with the in-process one on 128 molecules: {agree}")
    assert agree
