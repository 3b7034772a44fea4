"""Reference MOSES metrics: run molsets 0.3.1 (``moses.get_all_metrics``) on a file.

Runs in the separate venv that ``benchmarks/molsets_env.sh`` builds, never in
molgen's own .venv::

    bash benchmarks/molsets_env.sh
    benchmarks/out/molsets-venv/bin/python benchmarks/molsets_reference.py GEN.smi \
        --test ../shared/data/moses/test.csv.gz --train ../shared/data/moses/train.csv.gz \
        --n-jobs 2 --device cpu --batch-size 512 -o out.json

GEN.smi holds one SMILES per line (blank lines are ignored; every other line is
passed on as it is, stripped). --test/--train are CSV files, optionally gzipped,
with a ``SMILES`` column.

Scaffold test set (``--test-scaffolds``). molsets never downloads anything: when
``test_scaffolds`` is None it loads the scaffold test set and its precomputed
statistics shipped inside the molsets wheel. ``get_all_metrics`` always
evaluates the */TestSF metrics, so:

* ``none`` (default): no TestSF. The test statistics are precomputed with
  ``moses.metrics.compute_intermediate_statistics`` (timed, part of
  ``seconds``) and passed as ``ptest``; ``test_scaffolds`` is given a
  placeholder whose statistics reuse ``ptest`` with a single SNN reference
  fingerprint, so the unavoidable TestSF pass costs only the gen-side work
  (ChemNet activations, fingerprints, BRICS fragments and scaffolds of the
  generated set once more). The */TestSF values are dropped from the output.
* ``bundled``: molsets' default: its packaged scaffold test set with its
  packaged precomputed statistics.
* a path: a CSV(.gz) with a ``SMILES`` column; its statistics are computed in
  the call.

The JSON written to -o has ``metrics`` (NaN becomes null), ``seconds`` (the
metric computation: test statistics, if precomputed, plus the
``get_all_metrics`` call), ``setup_seconds`` (imports and reading the files),
``peak_rss_mb`` (this process plus the largest waited-for child, from
``resource.getrusage``; the two parts are given too), ``versions`` and
``n_gen``.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse
import csv
import gzip
import json
import math
import os
import platform
import resource
import sys
from importlib import metadata

os.environ.setdefault("MPLBACKEND", "Agg")  # moses/utils.py imports pyplot


def read_smi(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def read_csv_smiles(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "SMILES" not in reader.fieldnames:
            raise SystemExit(f"{path}: no SMILES column (columns: {reader.fieldnames})")
        return [row["SMILES"] for row in reader]


def jsonable(value):
    """Plain JSON types; NaN and infinities become None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def peak_rss_mb() -> dict:
    # ru_maxrss is in KiB on Linux. RUSAGE_CHILDREN is the largest terminated,
    # waited-for descendant (pool and DataLoader workers), not a sum.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(own, 1), "children": round(children, 1)}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("molsets", "fcd_torch", "rdkit", "torch", "numpy", "scipy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("gen", help="generated SMILES, one per line")
    parser.add_argument(
        "--test", required=True, help="test CSV(.gz) with a SMILES column"
    )
    parser.add_argument(
        "--train", required=True, help="train CSV(.gz) with a SMILES column"
    )
    parser.add_argument(
        "--test-scaffolds",
        default="none",
        help="'none' (default, no TestSF), 'bundled' (molsets' packaged set and stats) or a CSV(.gz)",
    )
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--k", default="1000,10000", help="comma-separated unique@k values"
    )
    parser.add_argument("-o", "--out", required=True, help="output JSON")
    args = parser.parse_args()
    k = tuple(int(x) for x in args.k.split(","))

    import moses
    from moses.metrics import compute_intermediate_statistics
    from moses.utils import disable_rdkit_log

    t_imported = time.perf_counter()
    gen = read_smi(args.gen)
    test = read_csv_smiles(args.test)
    train = read_csv_smiles(args.train)
    if not gen or not test or not train:
        # An empty train list would make molsets fall back to its packaged set.
        raise SystemExit("gen, test and train must all be non-empty")
    mode = args.test_scaffolds
    test_scaffolds = None if mode in ("none", "bundled") else read_csv_smiles(mode)
    t_read = time.perf_counter()

    kwargs = {
        "n_jobs": args.n_jobs,
        "device": args.device,
        "batch_size": args.batch_size,
    }
    test_stats_seconds = None
    ptest = ptest_scaffolds = None
    t_start = time.perf_counter()
    if mode == "none":
        # get_all_metrics silences RDKit's log before computing the test stats
        # itself (and re-enables it at its end); do the same here.
        disable_rdkit_log()
        ptest = compute_intermediate_statistics(test, **kwargs)
        test_stats_seconds = time.perf_counter() - t_start
        test_scaffolds = test[:1]  # any non-None list; its stats are given below
        ptest_scaffolds = dict(ptest, SNN={"fps": ptest["SNN"]["fps"][:1]})
    t_call = time.perf_counter()
    metrics = moses.get_all_metrics(
        gen,
        k=k,
        test=test,
        ptest=ptest,
        test_scaffolds=test_scaffolds,
        ptest_scaffolds=ptest_scaffolds,
        train=train,
        **kwargs,
    )
    t_end = time.perf_counter()
    if mode == "none":
        metrics = {
            name: v for name, v in metrics.items() if not name.endswith("/TestSF")
        }

    rss = peak_rss_mb()
    result = {
        "metrics": jsonable(metrics),
        "seconds": round(t_end - t_start, 3),
        "call_seconds": round(t_end - t_call, 3),
        "test_stats_seconds": None
        if test_stats_seconds is None
        else round(test_stats_seconds, 3),
        "setup_seconds": round(t_read - _T0, 3),
        "import_seconds": round(t_imported - _T0, 3),
        "read_seconds": round(t_read - t_imported, 3),
        "peak_rss_mb": round(rss["self"] + rss["children"], 1),
        "peak_rss_self_mb": rss["self"],
        "peak_rss_children_mb": rss["children"],
        "versions": versions(),
        "n_gen": len(gen),
        "n_test": len(test),
        "n_train": len(train),
        "test_scaffolds": mode
        if mode in ("none", "bundled")
        else os.path.abspath(mode),
        "k": list(k),
        **kwargs,
        "gen_path": os.path.abspath(args.gen),
        "test_path": os.path.abspath(args.test),
        "train_path": os.path.abspath(args.train),
        "argv": sys.argv,
    }
    text = json.dumps(result, indent=2, allow_nan=False)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
