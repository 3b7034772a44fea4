"""Crystal benchmarks on Perov-5 (issue: crystal domain and CDVAE metrics).

Three parts, each writing ``<out>/<part>.json``:

* ``roundtrip``: every CIF of the perov-5 (and carbon-24, mp20-biternary)
  test split -> Structure -> compact text -> Structure, matched to the
  original with ``StructureMatcher`` (pymatgen defaults); fraction matched,
  worst normalised RMS and worst site displacement in A.
* ``realdata``: the perov-5 validation split scored as if generated against
  the test split (validity, coverage, distances), with timings.
* ``generate``: train the autoregressive backbone on perov-5-train for
  ``--minutes`` on this machine, sample ``--samples`` structures, score them
  against the test split (novelty against the training split).

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_crystals.py \\
        --parts roundtrip,realdata,generate --minutes 15 --samples 10000 --jobs 2 --out benchmarks/out/crystals
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import time
import warnings
from pathlib import Path

import torch

from molgen.backbones.base import Generator
from molgen.datasets import load_texts, read_records, resolve_source
from molgen.datasets.loading import split_positions
from molgen.domains.crystal import CrystalDomain, MatcherSettings
from molgen.metrics.crystals import (
    COVERAGE_PRESETS,
    CrystalEvalOptions,
    evaluate_crystals,
)
from molgen.workflows.training import RunConfig, run_training


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def roundtrip(domain: CrystalDomain, source: str = "perov-5-test") -> dict:
    # The raw CIFs of the split (load_texts would hand back compact texts).
    path, spec = resolve_source(source)
    records = read_records(path, fmt=spec.fmt, column=spec.column, keep=split_positions(spec, path))
    originals = [r.text for r in records]
    matcher = MatcherSettings().matcher()
    matched, worst, worst_angstrom, failures = 0, 0.0, 0.0, []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, cif in enumerate(originals):
            original = domain.parse(cif)
            back = domain.parse(domain.format(original))
            rms = matcher.get_rms_dist(original, back)
            if rms is None:
                failures.append(i)
                continue
            matched += 1
            worst = max(worst, float(rms[0]))
            # Largest site displacement in A (rounding of coordinates and lengths).
            worst_angstrom = max(worst_angstrom, float(rms[1]) * (original.volume / len(original)) ** (1 / 3))
    return {
        "source": source,
        "n": len(originals),
        "matched_fraction": matched / len(originals),
        "worst_rms": worst,
        "worst_max_displacement_angstrom": worst_angstrom,
        "unmatched_rows": failures[:20],
        "codec": domain.codec.to_config(),
        "matcher": MatcherSettings().to_dict(),
        "seconds": round(time.perf_counter() - start, 1),
    }


def score(generated, reference, training, jobs: int, cache: bool = True) -> dict:
    start = time.perf_counter()
    report = evaluate_crystals(
        generated,
        reference,
        training,
        options=CrystalEvalOptions(cutoffs=COVERAGE_PRESETS["perov-5"]),
        n_jobs=jobs,
        cache_root="default" if cache else None,
    )
    out = report.to_dict()
    out["wall_seconds"] = round(time.perf_counter() - start, 1)
    return out


def generate(domain: CrystalDomain, args) -> dict:
    run_dir = Path(args.out) / "run"
    config = RunConfig.model_validate(
        dict(
            domain="crystal",
            backbone=args.backbone,
            seed=args.seed,
            device=args.device,
            data=dict(source="perov-5-train", val_fraction=0.05, augment=args.augment),
            model=dict(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, dropout=args.dropout),
            train=dict(
                batch_size=args.batch_size, lr=args.lr, warmup_steps=100,
                max_minutes=None if args.max_steps else args.minutes, max_steps=args.max_steps,
                ema_decay=args.ema_decay, keep_best=args.keep_best, val_every=250, checkpoint_every=500, progress=False,
            ),
        )
    )
    if args.reuse:  # sample and score the model trained by an earlier run
        saved = json.loads((Path(args.out) / "generate.json").read_text())
        model = Generator.from_pretrained(run_dir / "model")
    else:
        summary = run_training(config, run_dir)
        model = Generator.from_pretrained(summary.model_dir)
    start = time.perf_counter()
    texts = model.sample_texts(args.samples, seed=args.seed, batch_size=512, **sampling_options(args))
    sample_seconds = time.perf_counter() - start
    (Path(args.out) / f"samples_{sampling_tag(args)}.txt").write_text("\n\n".join(texts) + "\n")
    result = {"training": saved["training"]} if args.reuse else {"training": _training_summary(summary, model, args)}
    result.update({
        "backbone": model.name,
        "sampling": {"n": args.samples, "seconds": round(sample_seconds, 1), "per_second": round(args.samples / sample_seconds, 1),
                     **sampling_options(args)},
    })
    reference = load_texts("perov-5-test", domain).texts
    training = load_texts("perov-5-train", domain).texts
    result["metrics"] = score(texts, reference, training, args.jobs)
    return result


def sampling_options(args) -> dict:
    """The sampling options that were asked for; left-out ones are not
    passed, so a backbone without them (masked diffusion has no grammar) is
    only refused what it was really asked."""
    options = {"temperature": args.temperature, "top_p": args.top_p, "steps": args.sampling_steps,
               "constrained": args.constrained or None, "semantic": args.semantic or None,
               "field_temperature": field_temperatures(args.field_temperature)}
    return {name: value for name, value in options.items() if value is not None}


def sampling_tag(args) -> str:
    """``T1.0`` plus ``_p0.95`` for nucleus sampling and ``_grammar`` for
    constrained decoding: names the samples and the result of a reuse run."""
    tag = f"T{args.temperature}"
    if args.top_p is not None:
        tag += f"_p{args.top_p}"
    tag += f"_steps{args.sampling_steps}" if args.sampling_steps else ""
    tag += "_grammar" if args.constrained else ""
    tag += "_exclusion" if args.semantic else ""
    for name, value in (field_temperatures(args.field_temperature) or {}).items():
        tag += f"_{name}{value}"
    return tag


def field_temperatures(items: list[str] | None) -> dict[str, float] | None:
    """``["coordinate=0.5"]`` -> ``{"coordinate": 0.5}`` (None when empty)."""
    if not items:
        return None
    return {name: float(value) for name, value in (item.split("=", 1) for item in items)}


def _training_summary(summary, model, args) -> dict:
    r = summary.result
    return {
        "minutes": None if args.max_steps else args.minutes, "elapsed_minutes": round(r.elapsed_s / 60, 1),
        "ema_decay": args.ema_decay, "keep_best": args.keep_best, "augment": args.augment, "best_step": r.best_step, "steps": r.steps, "train_loss": round(r.train_loss, 4),
        "val_loss": None if r.val_loss is None else round(r.val_loss, 4), "tokens_per_s": round(r.tokens_per_s, 1),
        "parameters": summary.n_parameters, "n_train": summary.n_train, "device": str(args.device),
        "model": model.config.model_dump(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="roundtrip,realdata,generate")
    parser.add_argument("--backbone", default="autoregressive",
                        help="generate: a tokens-view backbone (autoregressive, vae, masked-diffusion)")
    parser.add_argument("--sampling-steps", type=int, default=None, help="generate: denoising steps (masked diffusion)")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="generate: train for this many steps instead of --minutes (independent of machine load)")
    parser.add_argument("--ema-decay", type=float, default=None, help="generate: average the weights with this decay")
    parser.add_argument("--keep-best", action="store_true",
                        help="generate: end training with the weights of the lowest validation loss")
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-p", type=float, default=None, help="generate: nucleus sampling threshold")
    parser.add_argument("--constrained", action="store_true",
                        help="generate: decode under the crystal text grammar (every sample parses)")
    parser.add_argument("--field-temperature", action="append", metavar="FIELD=T",
                        help="generate, with --constrained: temperature of one grammar field, e.g. coordinate=0.5")
    parser.add_argument("--augment", action="store_true",
                        help="generate: train on a random translation and site order of each crystal per draw")
    parser.add_argument("--semantic", action="store_true",
                        help="generate, with --constrained: also keep every new site 0.5 A from the earlier ones")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reuse", action="store_true", help="generate: reuse the model trained in --out/run")
    parser.add_argument("--out", default="benchmarks/out/crystals")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain = CrystalDomain()
    header = {"date": datetime.date.today().isoformat(), "machine": machine(), "seed": args.seed}
    for part in args.parts.split(","):
        if part == "roundtrip":
            result = {"sets": [roundtrip(domain, source) for source in ("perov-5-test", "carbon-24-test", "mp20-biternary-test")]}
        elif part == "realdata":
            val = load_texts("perov-5-val", domain).texts
            test = load_texts("perov-5-test", domain).texts
            result = {"cold": score(val, test, None, args.jobs), "warm": score(val, test, None, args.jobs)}
        elif part == "refsize":
            # COV-P depends on how many reference crystals there are to be near:
            # the same real crystals scored against a reference 4x larger.
            val = load_texts("perov-5-val", domain).texts
            test = load_texts("perov-5-test", domain).texts
            train = load_texts("perov-5-train", domain).texts
            result = {"reference_test": score(val, test, None, args.jobs),
                      "reference_train_and_test": score(val, list(train) + list(test), None, args.jobs),
                      "sizes": {"generated": len(val), "test": len(test), "train_and_test": len(train) + len(test)}}
        elif part == "generate":
            result = generate(domain, args)
            part = f"generate_{sampling_tag(args)}" if args.reuse else part
        else:
            raise SystemExit(f"unknown part {part!r}")
        result = {**header, "part": part, **result,
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
                  "peak_rss_children_gb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6, 2)}
        (out / f"{part}.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps({k: v for k, v in result.items() if k != "metrics"}, indent=1, default=str)[:3000], flush=True)
        if "metrics" in result:
            print(json.dumps(result["metrics"]["metrics"], indent=1), flush=True)


if __name__ == "__main__":
    main()
