"""Graph diffusion benchmarks (issue: graph view and graph diffusion).

Parts, each writing ``<out>/<part>.json``:

* ``qm9``: train the graph-diffusion backbone on ``qm9-train`` (molecular
  graphs, heavy atoms only) for ``--minutes``, sample ``--samples`` graphs
  and report DiGress's validity (largest fragment), validity of connected
  graphs, uniqueness and novelty against the training split.
* ``moses``: graph diffusion and the autoregressive backbone, each trained
  for ``--minutes`` on the same seeded ``--limit`` subset of moses-train,
  sampled (``--moses-samples``) and scored with the MOSES metrics (validity,
  FCD, SNN, Scaf) against a seeded moses-test subset.
* ``perov5``: train on ``perov-5-train`` with ``heat_ref`` as a condition
  (dropped 10 % of the time, so the same model samples unconditionally),
  sample ``--samples`` crystals without a condition and score them with the
  CDVAE metrics against ``perov-5-test``.
* ``guidance``: the ``perov5`` model sampled at low and high ``heat_ref``
  with several guidance weights; every valid sample is scored by the shipped
  CGCNN heat-of-formation predictor (``perov5-heat``) and the shift of the
  predicted distribution against unconditional sampling is reported.

    MOLGEN_DATA_MIRROR=../shared/data OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_graph_diffusion.py \\
        --parts qm9 --minutes 20 --samples 10000 --out benchmarks/out/graph_diffusion
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem

from molgen.backbones.base import Generator
from molgen.datasets import load_texts
from molgen.domains import CrystalDomain, SmilesDomain
from molgen.domains.molgraph import MolGraphDomain
from molgen.metrics import evaluate_molecules
from molgen.workflows import RunConfig, run_training


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} torch threads"


def train(out: Path, domain: str, backbone: str, source: str, args, model: dict, limit: int | None = None, lr: float | None = None) -> tuple[Generator, dict]:
    """Train (or, with --reuse, load) a model in ``out``."""
    if args.reuse and (out / "model").is_dir():
        model_obj = Generator.from_pretrained(out / "model")
        return model_obj, json.loads((out / "model" / "config.json").read_text())["extra"]["training"]
    config = RunConfig.model_validate(dict(
        domain=domain, backbone=backbone, seed=args.seed, device="cpu",
        data=dict(source=source, limit=limit, val_fraction=0.02),
        model=model,
        train=dict(batch_size=args.batch_size, lr=lr or args.lr, warmup_steps=200,
                   max_minutes=None if args.max_steps else args.minutes, max_steps=args.max_steps,
                   val_every=500, checkpoint_every=1000, progress=False, ema_decay=args.ema_decay),
    ))
    summary = run_training(config, out)
    r = summary.result
    info = {"minutes": None if args.max_steps else args.minutes, "elapsed_minutes": round(r.elapsed_s / 60, 1),
            "steps": r.steps, "train_loss": round(r.train_loss, 4),
            "val_loss": None if r.val_loss is None else round(r.val_loss, 4), "nodes_or_tokens_per_s": round(r.tokens_per_s, 1),
            "parameters": summary.n_parameters, "n_train": summary.n_train, "batch_size": args.batch_size,
            "data_seconds": round(summary.data_seconds, 1), "ema_decay": args.ema_decay}
    print("trained", info, flush=True)
    return Generator.from_pretrained(summary.model_dir), info


def flat_key(mol: Chem.Mol) -> str:
    """Canonical SMILES without stereo (the graph view is 2D topology)."""
    return Chem.MolToSmiles(mol, isomericSmiles=False)


def qm9(args, out: Path) -> dict:
    model, training = train(out / "qm9_run", "molgraph", "graph-diffusion", "qm9-train", args, model={})
    domain = model.domain
    strict = MolGraphDomain.from_config({**domain.to_config(), "fragments": "reject"})
    start = time.perf_counter()
    graphs = model.sample_dense(args.samples, seed=args.seed, steps=args.steps, batch_size=512)
    seconds = time.perf_counter() - start
    valid, connected = [], 0
    texts = []
    for g in graphs:
        mol, text = model._decode(g)
        texts.append(text)
        if mol is not None and domain.is_valid(mol):
            valid.append(flat_key(mol))
            connected += strict.from_dense(g["node_type"], g["adjacency"]) is not None
    (out / "qm9_samples.smi").write_text("\n".join(texts) + "\n")
    train_keys = {flat_key(domain.parse(t)) for t in load_texts("qm9-train", SmilesDomain()).texts}
    unique = set(valid)
    n = len(graphs)
    return {
        "training": training, "sampling": {"n": n, "steps": args.steps, "seconds": round(seconds, 1), "per_second": round(n / seconds, 1)},
        "metrics": {
            "validity": round(len(valid) / n, 4),
            "validity_connected": round(connected / n, 4),
            "uniqueness": round(len(unique) / max(len(valid), 1), 4),
            "novelty": round(len(unique - train_keys) / max(len(unique), 1), 4),
            "definitions": "validity: RDKit-sanitised largest fragment (DiGress); connected: the whole graph is one valid molecule; "
            "uniqueness: unique / valid; novelty: unique valid not in qm9-train / unique valid (stereo-free canonical SMILES)",
        },
    }


MOSES_METRICS = ["valid", "unique@1000", "Novelty", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv"]


def moses(args, out: Path) -> dict:
    smiles = SmilesDomain()
    train_texts = load_texts("moses-train", smiles, limit=args.limit, seed=args.seed, canonicalize=True).texts
    test = load_texts("moses-test", smiles, canonicalize=True).texts
    rng = np.random.default_rng(args.seed)
    ref = [test[i] for i in rng.choice(len(test), min(10_000, len(test)), replace=False)]
    results = {}
    runs = {  # the autoregressive settings are bench_backbones.py's
        "graph-diffusion": ("molgraph", {}, args.lr),
        "autoregressive": ("smiles", dict(d_model=128, n_layers=6, n_heads=8, d_ff=512, max_length=56), 2e-3),
    }
    for backbone in args.moses_backbones.split(","):
        domain, hparams, lr = runs[backbone]
        model, training = train(out / f"moses_{backbone}", domain, backbone, "moses-train", args, hparams, limit=args.limit, lr=lr)
        start = time.perf_counter()
        kwargs = {"steps": args.steps, "batch_size": 256} if backbone == "graph-diffusion" else {"batch_size": 256}
        texts = model.sample_texts(args.moses_samples, seed=args.seed, **kwargs)
        seconds = time.perf_counter() - start
        (out / f"moses_{backbone}_samples.smi").write_text("\n".join(texts) + "\n")
        report = evaluate_molecules(texts, ref, train_texts, metrics=MOSES_METRICS, n_jobs=2, cache_root="default")
        results[backbone] = {
            "training": training, "sampling": {"n": len(texts), "seconds": round(seconds, 1), "per_second": round(len(texts) / seconds, 2)},
            "metrics": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.values.items()},
        }
        print(backbone, results[backbone], flush=True)
    return {"limit": args.limit, "reference": "10,000 seeded moses-test molecules", "runs": results,
            "note": "same data subset, same --minutes of training, same batch size; one torch thread each"}


_PEROV5: dict[str, tuple] = {}


def perov5_model(args, out: Path):
    """The conditional Perov-5 model, trained once per invocation."""
    if "model" not in _PEROV5:
        hparams = dict(conditions=["heat_ref"], condition_dropout=0.1, transition=args.transition)
        _PEROV5["model"] = train(out / "perov5_run", "crystal", "graph-diffusion", "perov-5-train", args, hparams)
    return _PEROV5["model"]


def perov5(args, out: Path) -> dict:
    from molgen.metrics.crystals import COVERAGE_PRESETS, CrystalEvalOptions, evaluate_crystals

    model, training = perov5_model(args, out)
    domain = model.domain
    model.config.corrector_step_size = args.corrector_step_size
    corrector = model.config.corrector_steps if args.corrector_steps is None else args.corrector_steps
    start = time.perf_counter()
    graphs = model.sample_dense(args.samples, seed=args.seed, steps=args.steps, corrector_steps=corrector,
                                temperature=args.temperature, batch_size=512)
    seconds = time.perf_counter() - start
    # CIF keeps full coordinate precision (the compact text rounds to 0.01).
    texts = []
    for g in graphs:
        obj, _ = model._decode(g)
        texts.append(domain.export(obj) if obj is not None else "")
    (out / f"perov5{args.suffix}_samples.json").write_text(json.dumps(texts))  # for later analysis
    reference = load_texts("perov-5-test", CrystalDomain()).texts
    training_texts = load_texts("perov-5-train", CrystalDomain()).texts
    began = time.perf_counter()
    report = evaluate_crystals(texts, reference, training_texts, options=CrystalEvalOptions(cutoffs=COVERAGE_PRESETS["perov-5"]),
                               n_jobs=args.jobs, cache_root="default")
    metrics = report.to_dict()
    metrics["wall_seconds"] = round(time.perf_counter() - began, 1)
    uncovered = report.metadata.get("reference", {}).get("uncovered", [])
    metrics["uncovered_test_formulas"] = sorted(domain.parse(reference[i]).composition.reduced_formula for i in uncovered)
    return {"training": training, "sampling": {"n": len(texts), "steps": args.steps, "corrector_steps": corrector,
                                               "corrector_step_size": args.corrector_step_size, "temperature": args.temperature,
                                               "seconds": round(seconds, 1),
                                               "per_second": round(len(texts) / seconds, 1), "condition": "none (unconditional)"},
            "metrics": metrics}


def guidance(args, out: Path) -> dict:
    from molgen.predictors.registry import load_predictor
    from molgen.pretrained.predictors import predictor_dir

    model, training = perov5_model(args, out)
    predictor = load_predictor(predictor_dir("perov5-heat"))
    heat = np.array(load_texts("perov-5-train", CrystalDomain(), targets=("heat_ref",)).targets["heat_ref"])
    low, high = (float(np.quantile(heat, q)) for q in (0.1, 0.9))
    rows = []
    settings = [("none", None, 0.0)] + [(f"heat_ref={v:.3f}", v, w) for v in (low, high) for w in args.guidance_weights]
    for label, value, weight in settings:
        condition = None if value is None else {"heat_ref": value}
        samples = model.sample(args.guidance_samples, seed=args.seed, steps=args.steps, condition=condition, guidance=weight, batch_size=512)
        valid = [s for s in samples if s is not None]
        mean, _ = predictor.predict(valid)
        per_atom = np.asarray(mean, dtype=float).reshape(len(valid), -1)[:, 0]
        rows.append({"condition": label, "guidance": weight, "n": len(samples), "valid": len(valid),
                     "predicted_heat_all_mean": round(float(np.nanmean(per_atom)), 4),
                     "predicted_heat_all_median": round(float(np.nanmedian(per_atom)), 4),
                     "predicted_heat_all_std": round(float(np.nanstd(per_atom)), 4)})
        print(rows[-1], flush=True)
    base = rows[0]["predicted_heat_all_mean"]
    for row in rows:
        row["shift_vs_unconditional"] = round(row["predicted_heat_all_mean"] - base, 4)
    return {"training": training, "train_heat_ref": {"p10": round(low, 4), "p90": round(high, 4), "mean": round(float(heat.mean()), 4)},
            "scorer": "shipped perov5-heat CGCNN (heat_all, eV per cell; heat_all and heat_ref correlate 0.97 on Perov-5)", "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="qm9,perov5,guidance")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=100, help="denoising steps")
    parser.add_argument("--corrector-steps", type=int, default=None,
                        help="perov5: Langevin corrector steps per denoising step (default: the model's)")
    parser.add_argument("--corrector-step-size", type=float, default=1e-5, help="perov5: corrector step size (DiffCSP's step_lr)")
    parser.add_argument("--temperature", type=float, default=1.0, help="perov5: atom-type sampling temperature")
    parser.add_argument("--transition", default="marginal", choices=["marginal", "uniform", "absorbing"],
                        help="perov5: type noise of the model trained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=None,
                        help="train for this many steps instead of --minutes (a budget that does not depend on machine load)")
    parser.add_argument("--ema-decay", type=float, default=None, help="average the weights with this decay (e.g. 0.999)")
    parser.add_argument("--limit", type=int, default=50_000, help="moses: training subset")
    parser.add_argument("--moses-samples", type=int, default=2000)
    parser.add_argument("--moses-backbones", default="graph-diffusion,autoregressive")
    parser.add_argument("--guidance-samples", type=int, default=1000)
    parser.add_argument("--guidance-weights", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 1.0, 2.0])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes of the crystal metrics")
    parser.add_argument("--reuse", action="store_true", help="reuse models already trained in --out")
    parser.add_argument("--out", default="benchmarks/out/graph_diffusion")
    parser.add_argument("--suffix", default="", help="appended to each part's JSON name (e.g. _steps500)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = {"date": datetime.date.today().isoformat(), "machine": machine(), "seed": args.seed}
    parts = {"qm9": qm9, "moses": moses, "perov5": perov5, "guidance": guidance}
    for part in args.parts.split(","):
        began = time.perf_counter()
        result = {**header, "part": part, **parts[part](args, out), "wall_seconds": round(time.perf_counter() - began, 1),
                  "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}
        (out / f"{part}{args.suffix}.json").write_text(json.dumps(result, indent=2, default=str))
        print(json.dumps(result, indent=1, default=str)[:4000], flush=True)


if __name__ == "__main__":
    main()
