"""Benchmark: autoregressive, VAE and masked-diffusion backbones side by side
on the same MOSES subset with the same wall-clock training budget on this CPU.

For each backbone: train for ``--minutes`` on a seeded ``--limit`` subset of
moses-train, sample ``--samples`` SMILES and compute the MOSES metrics against
a seeded ``--ref-size`` subset of moses-test (novelty against the training
subset). Then the backbone-specific checks of issue 7:

* masked diffusion: validity against the number of sampling steps;
* VAE: exact reconstruction of held-out moses-test molecules (greedy decoding
  of the posterior mean), validity of decoded interpolation points, and
  latent optimisation of QED (CMA-ES and gradient ascent) from a fixed start
  set with a counted oracle budget.

    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_backbones.py \
        --minutes 10 --samples 10000 --out benchmarks/out/backbones

Writes ``results.json`` (and the samples) in ``--out``; ``--reuse`` skips
training and re-measures the models already in ``--out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from molgen.backbones import load_generator
from molgen.datasets import load_texts
from molgen.core.registry import DOMAINS
from molgen.domains import SmilesDomain
from molgen.loops import optimize_latent
from molgen.metrics import evaluate_molecules
from molgen.scoring import Oracle, get_objective
from molgen.workflows import RunConfig, run_training

METRICS = ["valid", "unique@1000", "unique@10000", "Novelty", "FCD/Test", "SNN/Test", "Frag/Test", "Scaf/Test", "IntDiv", "IntDiv2", "Filters"]


def backbone_hparams(name: str, args) -> dict:
    """Same width and decoder depth for every backbone; the VAE adds an encoder."""
    common = dict(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, d_ff=args.d_ff, max_length=args.max_length)
    if name == "vae":
        return {**common, "latent_dim": 64, "encoder_layers": max(1, args.n_layers // 2), "kl_warmup_steps": 500,
                "free_bits": args.free_bits, "kl_weight": args.kl_weight, "token_dropout": args.token_dropout}
    if name == "masked-diffusion":
        return {**common, "sampling_steps": args.md_steps, "length_model": args.md_length_model}
    return common


def train(name: str, args, out: Path) -> dict:
    config = RunConfig.model_validate(
        dict(
            domain=args.domain, backbone=name, seed=args.seed, device="cpu",
            data=dict(source="moses-train", limit=args.limit, val_fraction=0.02),
            model=backbone_hparams(name, args),
            train=dict(batch_size=args.batch_size, lr=args.lr, warmup_steps=100,
                       max_minutes=None if args.max_steps else args.minutes, max_steps=args.max_steps, val_every=250, checkpoint_every=250, progress=False, ema_decay=args.ema_decay),
        )
    )
    summary = run_training(config, out)
    r = summary.result
    return {
        "minutes": None if args.max_steps else args.minutes, "elapsed_minutes": round(r.elapsed_s / 60, 1),
        "steps": r.steps, "batch_size": args.batch_size,
        "val_loss_per_token": round(r.val_loss, 4) if r.val_loss is not None else None,
        "tokens_per_s": round(r.tokens_per_s, 1), "ema_decay": args.ema_decay,
    }


def as_smiles(domain, texts: list[str]) -> list[str]:
    """The SMILES of each valid sample (SELFIES decoded), the raw text of an
    invalid one, so the MOSES metrics see what they expect."""
    if domain.name == "smiles":
        return texts
    return [domain.export(m) if (m := domain.try_parse(t)) is not None else t for t in texts]


def sample_and_score(model, args, ref: list[str], train_texts: list[str], out: Path) -> dict:
    start = time.perf_counter()
    texts = model.sample_texts(args.samples, seed=args.seed, batch_size=256)
    seconds = time.perf_counter() - start
    out.write_text("\n".join(texts) + "\n")
    texts = as_smiles(model.domain, texts)
    start = time.perf_counter()
    report = evaluate_molecules(texts, ref, train_texts, metrics=METRICS, n_jobs=args.jobs, cache_root="default")
    values = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.values.items()}
    return {"sampling_s": round(seconds, 1), "molecules_per_s": round(args.samples / seconds, 1),
            "metrics_s": round(time.perf_counter() - start, 1), "metrics": values, "reasons": report.reasons}


def validity(domain, texts: list[str]) -> float:
    return sum(domain.try_parse(t) is not None for t in texts) / max(len(texts), 1)


def md_steps_table(model, domain, args, previous: list[dict]) -> list[dict]:
    rows = [r for r in previous if r.get("order", "random") not in args.orders]
    for order in args.orders:
        for steps in args.steps_table:
            start = time.perf_counter()
            texts = model.sample_texts(args.table_samples, seed=args.seed, steps=steps, batch_size=256, order=order)
            seconds = time.perf_counter() - start
            valid = [m for t in texts if (m := domain.try_parse(t)) is not None]
            rows.append({
                "order": order, "steps": steps, "n": len(texts), "validity": round(len(valid) / len(texts), 4),
                "unique": round(len({domain.key(m) for m in valid}) / max(len(valid), 1), 4),
                "molecules_per_s": round(len(texts) / seconds, 1),
            })
            print("md steps", rows[-1], flush=True)
    return rows


def reconstruction(model, domain, texts: list[str]) -> dict:
    """Exact canonical reconstruction (greedy decoding of the posterior mean)
    and the mean KL of the posterior, in nats per molecule."""
    hits, kl = 0, 0.0
    for i in range(0, len(texts), 256):
        chunk = texts[i : i + 256]
        with torch.no_grad():
            mean, log_var = model.encode(chunk)
        kl += float(0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum())
        decoded = model.decode(mean)
        hits += sum(domain.key(m) == domain.key(domain.parse(s)) for d, s in zip(decoded, chunk) if (m := domain.try_parse(d)) is not None)
    return {"n": len(texts), "exact_canonical_match": round(hits / len(texts), 4), "posterior_kl_nats": round(kl / len(texts), 2),
            "decoding": "greedy from the posterior mean"}


def vae_checks(model, domain, heldout: list[str], train_texts: list[str], args) -> dict:
    n = min(args.recon, len(heldout))
    rng = np.random.default_rng(args.seed)
    interior_valid, interior_total, distinct = 0, 0, []
    for _ in range(args.interp_pairs):
        a, b = rng.choice(len(heldout), 2, replace=False)
        path = model.interpolate(heldout[a], heldout[b], steps=args.interp_steps)
        inner = path[1:-1]
        interior_valid += sum(domain.try_parse(p) is not None for p in inner)
        interior_total += len(inner)
        distinct.append(len(set(path)))
    return {
        "reconstruction": reconstruction(model, domain, heldout[:n]),
        "reconstruction_train": reconstruction(model, domain, list(train_texts[:n])),
        "interpolation": {
            "pairs": args.interp_pairs, "points_per_path": args.interp_steps, "path": "slerp between posterior means",
            "interior_validity": round(interior_valid / interior_total, 4),
            "mean_distinct_texts_per_path": round(float(np.mean(distinct)), 2),
        },
    }


def latent_opt(model, domain, pool: list[str], args) -> dict:
    qed = get_objective("qed")
    rng = np.random.default_rng(args.seed)
    candidates = [pool[i] for i in rng.choice(len(pool), 2000, replace=False)]
    scores = qed([domain.parse(s) for s in candidates]).total
    start = [candidates[i] for i in np.argsort(scores)[: args.start_size]]
    results = {"objective": "qed", "max_rounds": args.max_rounds, "start_set": f"the {args.start_size} lowest-QED of 2,000 seeded moses-test molecules",
               "budget": args.budget}
    for method in ("cmaes", "gradient"):
        began = time.perf_counter()
        oracle = Oracle(qed, domain, budget=args.budget)
        r = optimize_latent(model, oracle, start, method=method, max_rounds=args.max_rounds, population=32, sigma=0.5, seed=args.seed)
        top10 = [s for _, s in r.best[:10]]
        results[method] = {
            "start_best": round(r.start_best, 4), "best": round(r.best[0][1], 4), "best_smiles": r.best[0][0],
            "top10_mean": round(float(np.mean(top10)), 4), "oracle_calls": r.oracle_calls,
            "decoded_validity": round(r.valid_fraction, 4), "seconds": round(time.perf_counter() - began, 1),
            "best_after_calls": [(c, round(b, 4)) for c, b in r.history[:: max(1, len(r.history) // 10)]],
        }
        print("latent", method, results[method], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="autoregressive,vae,masked-diffusion")
    parser.add_argument("--domain", choices=["smiles", "selfies"], default="smiles",
                        help="text the models train on (metrics are always computed on SMILES)")
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--ref-size", type=int, default=10_000, help="moses-test subset for the reference metrics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--n-layers", type=int, default=6)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--d-ff", type=int, default=512)
    parser.add_argument("--max-length", type=int, default=56, help="longest sequence / diffusion canvas (MOSES: <= 52)")
    parser.add_argument("--kl-weight", type=float, default=1.0, help="VAE: final KL weight (MOSES's VAE uses 0.05)")
    parser.add_argument("--free-bits", type=float, default=0.05, help="VAE: free nats per latent dimension")
    parser.add_argument("--token-dropout", type=float, default=0.0,
                        help="VAE: fraction of decoder inputs masked in training (word dropout, Bowman et al. 2016)")
    parser.add_argument("--skip-latent-opt", action="store_true", help="VAE: skip the latent optimisation runs")
    parser.add_argument("--md-steps", type=int, default=64, help="masked-diffusion steps of the main samples")
    parser.add_argument("--md-length-model", choices=["padding", "sampled"], default="padding",
                        help="masked diffusion: PAD as a denoised token, or lengths drawn from the training histogram")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="train for this many steps instead of --minutes (a budget that does not depend on machine load)")
    parser.add_argument("--ema-decay", type=float, default=None, help="average the weights with this decay (e.g. 0.999)")
    parser.add_argument("--steps-table", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    parser.add_argument("--table-samples", type=int, default=1000)
    parser.add_argument("--orders", type=lambda s: s.split(","), default=["random", "confidence"],
                        help="masked-diffusion unmasking orders in the steps table")
    parser.add_argument("--recon", type=int, default=1000)
    parser.add_argument("--interp-pairs", type=int, default=100)
    parser.add_argument("--interp-steps", type=int, default=8)
    parser.add_argument("--start-size", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--max-rounds", type=int, default=300, help="latent optimisation generations / ascent rounds")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/backbones")
    parser.add_argument("--reuse", action="store_true", help="skip training; use the models in --out")
    parser.add_argument("--checks-only", action="store_true", help="with --reuse: skip sampling and metrics, run only the backbone-specific checks")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))  # OMP_NUM_THREADS when set
    domain = DOMAINS.get(args.domain)()
    train_texts = load_texts("moses-train", SmilesDomain(), limit=args.limit, seed=args.seed, canonicalize=True).texts
    test = load_texts("moses-test", SmilesDomain(), canonicalize=True).texts
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(test))
    ref = [test[i] for i in order[: args.ref_size]]
    heldout = [test[i] for i in order[args.ref_size : args.ref_size + 5000]]  # disjoint from the reference subset

    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results.update({
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "seed": args.seed, "domain": args.domain,
        "data": {"train": f"moses-train seeded subset of {args.limit} (2 % held out for validation)",
                 "reference": f"moses-test seeded subset of {args.ref_size}", "novelty_against": "the training subset"},
    })
    results.setdefault("backbones", {})
    for name in args.backbones.split(","):
        run_dir = out / name
        entry = results["backbones"].get(name, {})
        if not args.reuse:
            entry["training"] = train(name, args, run_dir)
        model = load_generator(run_dir / "model")
        entry["parameters"] = model.num_parameters()
        entry["hparams"] = model.config.model_dump()
        if not args.checks_only:
            entry["samples"] = sample_and_score(model, args, ref, train_texts, out / f"{name}_samples.smi")
            print(name, json.dumps(entry), flush=True)
            results["backbones"][name] = entry
            results_path.write_text(json.dumps(results, indent=2))
        if name == "masked-diffusion":
            entry["steps_vs_validity"] = md_steps_table(model, domain, args, entry.get("steps_vs_validity", []))
        if name == "vae" and args.domain != "smiles":
            print("vae checks (reconstruction, latent optimisation) run on SMILES models only", flush=True)
        elif name == "vae":
            entry.update(vae_checks(model, domain, heldout, train_texts, args))
            print("vae checks", {k: entry[k] for k in ("reconstruction", "reconstruction_train", "interpolation")}, flush=True)
            if not args.skip_latent_opt:
                entry["latent_optimization"] = latent_opt(model, domain, test, args)
        results["backbones"][name] = entry
        results_path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
