"""``molgen`` console script: parses arguments, builds a config, calls the
workflow API, and turns user errors into one clear line."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Sequence

from molgen import __version__
from molgen.core.errors import MolgenError
from molgen.workflows.evaluation import (
    DEFAULT_REFERENCE,
    DEFAULT_TRAINING,
    evaluate_file,
)

EXIT_USER_ERROR = 2

DESCRIPTION = """\
molgen: generative design of molecules and materials.

Examples:
  molgen demo                                   # sample, evaluate, optimise and report on the shipped prior
  molgen models                                 # shipped models, usable by name
  molgen sample zinc250k -n 1000 -o samples.smi
  molgen sample perov5 -n 100 -o crystals.csv
  molgen report runs/demo -o report.html
  molgen train --data nci-5k --max-minutes 3 --out runs/nci
  molgen train --data moses-train --limit 50000 --max-minutes 20 --out runs/moses
  molgen train --resume --max-minutes 30 --out runs/moses
  molgen sample runs/nci -n 1000 -o samples.smi
  molgen evaluate samples.smi --jobs 2 -o report.json
  molgen score samples.smi --objective pmo/osimertinib_mpo -o scores.csv
  molgen optimize --prior zinc250k --objective pmo/qed --budget 10000 --out runs/qed
  molgen optimize --resume --out runs/qed
  molgen export runs/qed --top 50 -o best.sdf
  molgen fit-predictor --data esol --target logp --out runs/esol-mpnn
  molgen predict runs/esol-mpnn molecules.smi -o predictions.csv
  molgen datasets
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="molgen", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"molgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a generator on a data set",
        description="Train a generator. Settings come from --config (TOML with sections data, model, "
        "train) and are overridden by the flags given. The run directory gets model/, checkpoint/, "
        "train_log.csv and run.json.",
    )
    train.add_argument("--domain", help="object domain (default smiles)")
    train.add_argument("--backbone", help="generative backbone (default autoregressive)")
    train.add_argument("--data", help="registered data set name (see `molgen datasets`) or a .smi/.csv/.sdf path")
    train.add_argument("--limit", type=int, help="train on a seeded random subset of N entries")
    train.add_argument("--config", help="TOML file of settings; unknown keys are errors")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--max-steps", type=int, help="stop after N optimisation steps")
    budget.add_argument("--max-minutes", type=float, help="stop after M minutes of training")
    train.add_argument("--seed", type=int, help="seed of subset, split, initialisation and batches")
    train.add_argument("--batch-size", type=int, help="sequences per step")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--device", help="auto (CUDA when present), cpu or cuda[:N]")
    train.add_argument("--skip-invalid", action="store_true", help="skip unparsable entries instead of failing")
    train.add_argument(
        "--on-unknown-token", choices=["error", "unk"], help="with --init-from: fail on, or map to <unk>, tokens outside the vocabulary"
    )
    train.add_argument("--augment", action="store_true", help="augmentation each draw: randomized SMILES; for crystals a random translation and site order")
    train.add_argument("--init-from", help="saved model directory to fine-tune")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--out", required=True, help="run directory")

    sample = sub.add_parser(
        "sample",
        help="sample a trained generator into a file",
        description="Sample a saved model (a model directory or a training run directory). Invalid "
        "samples are kept and marked unless --valid-only is given.",
    )
    sample.add_argument("model", help="shipped model name (see `molgen models`; model:NAME is always the shipped one), "
                        "or a model or run directory")
    sample.add_argument("-n", type=int, default=1000, help="number of samples (default 1000)")
    sample.add_argument("-o", "--output", help="output file: .smi, .csv, .txt, or .sdf for molecules (valid samples only; omit to only report)")
    sample.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    sample.add_argument("--temperature", type=float, help="softmax temperature (default 1.0; token backbones, and the atom/bond types of graph diffusion)")
    sample.add_argument("--top-k", type=int, help="keep only the k most likely tokens")
    sample.add_argument("--top-p", type=float, help="nucleus sampling threshold in (0, 1]")
    sample.add_argument("--max-length", type=int, help="longest sequence in tokens")
    sample.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=None,
                        help="decode under the domain's token grammar so every sample is well formed (crystal text; "
                             "autoregressive and VAE backbones; on by default where the domain has a grammar)")
    sample.add_argument("--semantic", action=argparse.BooleanOptionalAction, default=None,
                        help="with --constrained: also enforce the domain's rule beyond the grammar while decoding "
                             "(crystals: no atom within the 0.5 A validity distance of an earlier one; on by default "
                             "with --constrained)")
    sample.add_argument("--field-temperature", action="append", metavar="FIELD=T",
                        help="with --constrained: temperature of one grammar field in place of --temperature "
                             "(repeatable; crystals: length, angle, element, coordinate, end; e.g. coordinate=0.5)")
    sample.add_argument("--batch-size", type=int, default=512, help="samples decoded together (default 512)")
    sample.add_argument("--steps", type=int, help="denoising steps of a diffusion backbone (default: the model's)")
    sample.add_argument("--order", choices=("random", "confidence", "left-to-right"),
                        help="masked diffusion: which masked positions each step reveals (default random: the model's "
                             "own distribution; confidence: the most probable first, MaskGIT-style, more valid but "
                             "less diverse samples)")
    sample.add_argument("--confidence-noise", type=float,
                        help="with --order confidence: Gumbel noise on the confidences, annealed to 0 "
                             "(0 default; larger trades validity for diversity)")
    sample.add_argument("--corrector-steps", type=int,
                        help="Langevin corrector steps per denoising step on crystal coordinates (graph diffusion; default: the model's)")
    sample.add_argument(
        "--condition", action="append", metavar="NAME=VALUE",
        help="property value to condition on (repeatable; models trained with conditions, e.g. heat_ref=-0.5)",
    )
    sample.add_argument("--guidance", type=float, help="classifier-free guidance weight with --condition (default 0)")
    sample.add_argument("--valid-only", action="store_true", help="write only valid samples")
    sample.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")

    evaluate = sub.add_parser(
        "evaluate",
        help="MOSES/GuacaMol metrics of generated molecules, CDVAE metrics of generated crystals",
        description="Compute MOSES and GuacaMol distribution-learning metrics of generated SMILES "
        "(invalid ones included, in sampling order). Reference and training statistics are cached "
        "under MOLGEN_HOME/metrics, so a second evaluation against the same sets is faster. Metrics "
        "that cannot be computed are reported as null with the reason. Crystals (a folder of CIFs, a CSV "
        "with a 'cif' column, .cif, extended XYZ or `molgen sample` text) are detected and scored with "
        "CDVAE's metrics (validity, COV-R/COV-P, density and element-count distances, uniqueness, "
        "novelty); give --ref (e.g. perov-5-test) and --train for those. FASTA files are peptides: "
        "validity, uniqueness, novelty, diversity, predicted-AMP fraction and property distances "
        "(defaults: amp-positive-test as reference, amp-positive-train for novelty).",
    )
    evaluate.add_argument("generated", help="generated SMILES: .smi, .txt, .csv or .sdf (molgen sample output works)")
    evaluate.add_argument("--ref", help=f"reference set, name or path (default {DEFAULT_REFERENCE} when available)")
    evaluate.add_argument("--train", help=f"training set for novelty (default {DEFAULT_TRAINING} when available)")
    evaluate.add_argument("--no-ref", action="store_true", help="skip the metrics against a reference")
    evaluate.add_argument("--no-train", action="store_true", help="skip novelty")
    evaluate.add_argument("--n", type=int, help="evaluate only the first N generated entries")
    evaluate.add_argument("--metrics", help="comma-separated metric names (default all)")
    evaluate.add_argument("--k", default="1000,10000", help="unique@k sizes (default 1000,10000)")
    evaluate.add_argument("--jobs", type=int, default=1, help="worker processes for RDKit work (0: all cores)")
    evaluate.add_argument("--seed", type=int, default=42, help="seed of GuacaMol's reference subsets (default 42)")
    evaluate.add_argument("--device", default="cpu", help="where ChemNet runs: cpu, cuda or auto")
    evaluate.add_argument("--no-cache", action="store_true", help="do not read or write cached statistics")
    evaluate.add_argument("-o", "--output", help="write the JSON report here")
    evaluate.add_argument(
        "--preset", help="crystals: coverage cutoffs perov-5, carbon-24 or mp-20 (default from --ref's name)"
    )

    score = sub.add_parser(
        "score",
        help="score a file of molecules with an objective",
        description="Score every SMILES of a file with a named objective (qed, pmo/<task>, "
        "guacamol/<task>, ...) or an objective TOML file, and write a CSV with the total, each "
        "component's raw and transformed value, the filter that rejected a molecule and why a score is missing.",
    )
    score.add_argument("molecules", help=".smi, .txt or .csv of SMILES, or an .sdf (optionally .gz)")
    score.add_argument("--objective", required=True, help="objective name or TOML file")
    score.add_argument("--id-column", help="identifier column (or SD property) put first in the output "
                       "(default: an id/name/compound_id column, a .smi name field or the SD title)")
    score.add_argument("-o", "--output", required=True, help="CSV to write")

    optimize = sub.add_parser(
        "optimize",
        help="steer a prior toward an objective under an oracle budget (REINVENT-style RL)",
        description="Goal-directed optimisation: the agent starts as a copy of the prior and is updated with "
        "REINVENT's prior-regularised loss, with experience replay and a Murcko-scaffold diversity filter. "
        "Every scored molecule is written to RUN/candidates.sqlite as it is scored; the run can be killed at "
        "any moment and continued with --resume (nothing scored is lost or counted twice). The run directory "
        "also gets progress.csv (PMO top-k means and AUC every 100 calls), summary.json and the best "
        "molecules as top100.csv/.sdf.",
    )
    optimize.add_argument("--prior", help="shipped prior (zinc250k, the default) or a model/run directory")
    optimize.add_argument("--objective", help="objective name (pmo/<task>, guacamol/<task>, qed, ...) or TOML file")
    optimize.add_argument("--budget", type=int, help="oracle calls: unique valid molecules scored (required unless --resume)")
    optimize.add_argument("--batch-size", type=int, help="molecules sampled per step (default 64)")
    optimize.add_argument("--seed", type=int, help="seed of sampling and replay (default 0)")
    optimize.add_argument("--strategy", choices=["reinvent", "latent-cmaes", "latent-gradient"],
                          help="REINVENT on an autoregressive prior (default), or latent-space search on a VAE --prior")
    optimize.add_argument("--start", help="latent search: data set or file of start molecules (default: prior samples)")
    optimize.add_argument("--start-size", type=int, help="latent search: start molecules taken (default 64)")
    optimize.add_argument("--sigma", type=float,
                          help="REINVENT: reward scale of the augmented likelihood (default 60); latent: CMA-ES step (0.5)")
    optimize.add_argument("--lr", type=float, help="agent learning rate (default 5e-4)")
    optimize.add_argument("--replay", type=int, help="best molecules kept for experience replay (default 100; 0: off)")
    optimize.add_argument("--replay-weighting", choices=["uniform", "score"],
                          help="draw replayed molecules uniformly (default) or in proportion to their scores (PMO's REINVENT)")
    optimize.add_argument("--likelihood-penalty", type=float,
                          help="weight of REINVENT 1.0's mean(-1/log p_agent) term (default 0; PMO's REINVENT: 5000)")
    optimize.add_argument("--augmentation-rounds", type=int,
                          help="Augmented Memory: extra policy steps per batch on randomized SMILES of the batch and the "
                          "replay memory (default 0: off)")
    optimize.add_argument("--diversity-filter", choices=["murcko", "generic", "off"], help="scaffold buckets (default murcko)")
    optimize.add_argument("--bucket-size", type=int, help="molecules per scaffold before the penalty (default 25)")
    optimize.add_argument("--patience", type=int,
                          help="PMO's early stop: end when the top-100 is unchanged for this many steps (default off)")
    optimize.add_argument("--config", help="TOML with the settings (keys prior, objective, seed, device, [campaign], [strategy])")
    optimize.add_argument("--device", help="auto (CUDA when present), cpu or cuda[:N]")
    optimize.add_argument("--resume", action="store_true", help="continue the run in --out (a larger --budget extends it)")
    optimize.add_argument("--no-progress", action="store_true", help="no progress bar")
    optimize.add_argument("--out", required=True, help="run directory")

    disc = sub.add_parser(
        "discover", help="materials discovery loop (photovoltaic absorbers by default)",
        description="Rounds of: sample crystals from the generator, decode, dedupe (StructureMatcher), cheap filters "
        "(validity, SMACT, excluded elements, novelty), learned predictors (band gap, formation energy), CHGNet "
        "relaxation of the best few (needs molgen[potential]), store, REINVENT update of the generator. Every "
        "candidate and relaxation is written to RUN/candidates.sqlite as it is made; relaxed structures go to "
        "RUN/relaxed/*.cif and RUN/relaxed.db (ASE database); RUN/rounds.csv has the per-round funnel. A killed run "
        "continues with --resume without re-scoring or re-relaxing anything.",
    )
    disc.add_argument("--preset", default="photovoltaic", help="photovoltaic (default), photovoltaic-known-gap or a preset TOML")
    disc.add_argument("--generator", help="shipped crystal generator (perov5, the default) or a model/run directory")
    disc.add_argument("--rounds", type=int, help="rounds (preset default 10; with --resume: extend to this many)")
    disc.add_argument("--per-round", type=int, help="structures sampled per round (preset default 512)")
    disc.add_argument("--relax-per-round", type=int, help="best new candidates relaxed per round (preset default 16; 0: off)")
    disc.add_argument("--relax-budget", type=int, help="relaxations in the whole run (preset default 200)")
    disc.add_argument("--executor", choices=["serial", "process", "ray"], help="where relaxations run (default process)")
    disc.add_argument("--workers", type=int, help="relaxation workers (default 2)")
    disc.add_argument("--seed", type=int, default=0, help="seed of sampling and replay (default 0)")
    disc.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    disc.add_argument("--resume", action="store_true", help="continue the run in --out")
    disc.add_argument("--out", required=True, help="run directory")

    export = sub.add_parser(
        "export", help="export the best candidates of an optimize run", description="Write the best candidates of a "
        "`molgen optimize` run (best score first) as CSV (all components) or SDF (2D coordinates, scores as properties).",
    )
    export.add_argument("run", help="run directory of `molgen optimize`")
    export.add_argument("--top", type=int, default=100, help="how many (default 100; 0: all)")
    export.add_argument("-o", "--output", required=True, help=".csv or .sdf")

    fit = sub.add_parser(
        "fit-predictor", help="train a property predictor with uncertainty (deep ensemble)",
        description="Train a learned property predictor (D-MPNN or fingerprint MLP for molecules, CGCNN for crystals) "
        "as a deep ensemble on a seeded train/validation/test split (scaffold split for molecules by default), save it "
        "(config.json + model.safetensors + predictor.json) and print the held-out metrics. Unparsable entries are "
        "skipped and counted; rows without a target value are dropped and counted.",
    )
    fit.add_argument("--data", required=True, help="registered data set (esol, lipo, bbbp, perov-5, ...) or a CSV/SDF path (SD properties as targets)")
    fit.add_argument("--target", required=True, action="append", help="target column (repeat for multi-task)")
    fit.add_argument("--domain", default="smiles", help="smiles (default) or crystal")
    fit.add_argument("--model", help="mpnn (default for molecules), fingerprint-mlp, cgcnn (crystals)")
    fit.add_argument("--task", choices=["regression", "classification"], help="default: classification for 0/1 targets")
    fit.add_argument("--split", choices=["scaffold", "random"], help="default: scaffold for molecules, random otherwise")
    fit.add_argument("--n-models", type=int, default=5, help="ensemble members (default 5)")
    fit.add_argument("--epochs", type=int, default=30, help="training epochs per member (default 30)")
    fit.add_argument("--limit", type=int, help="seeded random subset of the data")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", required=True, help="predictor directory")

    predict = sub.add_parser(
        "predict", help="predict a file with a trained predictor",
        description="Write a CSV: the input, then <target>_mean and <target>_std for each target, then a reason column "
        "for rows without a prediction (invalid inputs stay in the table).",
    )
    predict.add_argument("predictor", help="directory written by molgen fit-predictor")
    predict.add_argument("inputs", help=".smi/.csv/.sdf of molecules, or a CSV with a 'cif' column for crystals")
    predict.add_argument("--id-column", help="identifier column (or SD property) put first in the output "
                         "(default: an id/name/compound_id column, a .smi name field or the SD title)")
    predict.add_argument("-o", "--output", required=True, help="CSV to write")

    report = sub.add_parser(
        "report", help="one self-contained HTML report of a run or an output file",
        description="Write one HTML file (no external links; plots and pictures inline) for a train run (loss curves), "
        "a sample or evaluate output (metric table, property histograms, molecule or structure pictures), an optimize "
        "run (top-k and AUC against oracle calls, best molecules), a discover run (funnel per round, selected "
        "structures) or a `molgen demo` directory.",
    )
    report.add_argument("source", help="run directory, sample file (.smi/.csv/.txt/.fasta) or evaluate JSON")
    report.add_argument("-o", "--output", required=True, help="HTML file to write")
    report.add_argument("--reference", help="data set or file to draw property histograms against")
    report.add_argument("--title", help="report title")

    demo = sub.add_parser(
        "demo", help="the main job on the shipped model: sample, evaluate, optimise, report",
        description="Sample the shipped ZINC250k prior, evaluate the samples, steer the prior toward a PMO task "
        "(osimertinib MPO) for a few hundred oracle calls and write one HTML report of it all. Needs nothing but "
        "the installed package; a few minutes on 2 CPU cores.",
    )
    demo.add_argument("--out", default="runs/demo", help="demo directory (default runs/demo)")
    demo.add_argument("-n", type=int, default=1000, help="molecules sampled (default 1000)")
    demo.add_argument("--budget", type=int, default=300, help="oracle calls of the optimisation (default 300)")
    demo.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    demo.add_argument("--overwrite", action="store_true", help="replace an earlier demo in --out")

    for name in RUN_DIR_COMMANDS:
        sub.choices[name].add_argument("--overwrite", action="store_true",
                                       help="replace the run in --out (without it, an existing run is an error)")
    for name in ("train", "sample", "evaluate", "score", "optimize", "discover", "export", "fit-predictor", "predict", "demo"):
        sub.choices[name].add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub.add_parser("datasets", help="list the registered data sets", description="List registered data sets.")
    models = sub.add_parser(
        "models", help="list the shipped models",
        description="List the models shipped with molgen: name, domain, backbone, training data, size and the quality "
        "measured by benchmarks/measure_shipped_models.py. Use a name wherever a model is taken (molgen sample NAME, "
        "--prior, --generator, Generator.from_pretrained); model:NAME always means the shipped model.",
    )
    models.add_argument("--json", action="store_true", help="print the cards as JSON")
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    from molgen.core.config import validate
    from molgen.workflows.training import RunConfig, apply_overrides, run_training

    overrides = {
        "domain": args.domain,
        "backbone": args.backbone,
        "seed": args.seed,
        "device": args.device,
        "init_from": args.init_from,
        "data.source": args.data,
        "data.limit": args.limit,
        "data.on_invalid": "skip" if args.skip_invalid else None,
        "data.on_unknown_token": args.on_unknown_token,
        "data.augment": True if args.augment else None,
        "train.batch_size": args.batch_size,
        "train.lr": args.lr,
        "train.max_steps": args.max_steps,
        "train.max_minutes": args.max_minutes,
        "train.progress": False if _quiet(args) else None,
    }
    if args.config:
        config = RunConfig.from_toml(args.config, **overrides)
    else:
        config = validate(RunConfig, apply_overrides({}, overrides))
    if args.max_minutes is not None:  # a budget given on the command line replaces the file's
        config.train.max_steps = None
    if args.max_steps is not None:
        config.train.max_minutes = None
    summary = run_training(config, args.out, resume=args.resume, log=print)
    r = summary.result
    print(
        f"trained {summary.n_parameters:,} parameters for {r.steps} steps in {r.elapsed_s:.0f} s "
        f"on {summary.n_train:,} training / {summary.n_val:,} validation examples"
    )
    val = f"{r.val_loss:.4f}" if r.val_loss is not None else "n/a"
    print(f"train loss {r.train_loss:.4f}, validation loss {val}, {r.tokens_per_s:,.0f} tokens/s")
    print(f"model: {summary.model_dir}")
    print(f"log: {summary.out_dir / 'train_log.csv'}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from molgen.backbones.base import Generator
    from molgen.core.device import select_device
    from molgen.workflows.sampling import resolve_model_dir, sample_to_file

    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise MolgenError("--top-p must be in (0, 1]")
    if args.temperature is not None and args.temperature < 0:
        raise MolgenError("--temperature must be >= 0 (0 means greedy)")
    if args.top_k is not None and args.top_k < 1:
        raise MolgenError("--top-k must be >= 1")
    model = Generator.from_pretrained(resolve_model_dir(args.model), device=select_device(args.device))
    defaults = _card_sampling(args.model)
    options = {
        "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "max_length": args.max_length,
        "steps": args.steps, "corrector_steps": args.corrector_steps, "condition": _parse_conditions(args.condition), "guidance": args.guidance,
        "constrained": args.constrained, "semantic": args.semantic,
        "order": args.order, "confidence_noise": args.confidence_noise,
        "field_temperature": _parse_assignments(args.field_temperature, "--field-temperature"),
    }
    options = {k: v for k, v in options.items() if v is not None}
    accepted = model.sampling_options()
    if options.get("constrained") is False and "semantic" not in options:
        defaults = {k: v for k, v in defaults.items() if k != "semantic"}  # the rule reads the grammar: off with it
    options = {**{k: v for k, v in defaults.items() if k in accepted}, **options}
    unsupported = sorted(k for k in options if k not in accepted)
    if unsupported:
        flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
        raise MolgenError(f"{flags} not supported by the {model.name} backbone")
    stats = sample_to_file(model, args.n, args.output, seed=args.seed, valid_only=args.valid_only, batch_size=args.batch_size,
                           progress=not _quiet(args), **options)
    print(
        f"{stats.n} samples in {stats.seconds:.1f} s ({stats.per_second:,.0f}/s): "
        f"validity {stats.validity:.3f}, uniqueness {stats.uniqueness:.3f}"
    )
    if stats.path is not None:
        print(f"samples: {stats.path}")
    return 0


def _quiet(args: argparse.Namespace) -> bool:
    """--quiet (or the older --no-progress) was given."""
    return bool(getattr(args, "quiet", False) or getattr(args, "no_progress", False))


def _card_sampling(spec: str) -> dict:
    """The sampling options a shipped model's card recommends ({} for a
    user's model)."""
    from molgen.pretrained import model_card, resolve_model_path, shipped_name

    name = shipped_name(resolve_model_path(spec))
    return model_card(name).sampling if name else {}


#: Quality figures `molgen models` shows first (the card holds more; --json prints them all).
HEADLINE_QUALITY = ("valid", "unique", "novelty", "amp_fraction", "FCD", "COV-R", "COV-P")


def _cmd_models(args: argparse.Namespace) -> int:
    import dataclasses

    from molgen.core.serialization import dumps_json
    from molgen.pretrained import installed_models, model_card

    cards = [model_card(name) for name in installed_models()]
    if args.json:
        rows = [{**dataclasses.asdict(c), "path": str(c.path)} for c in cards]
        print(dumps_json(rows, indent=2))
        return 0
    print(f"{'name':10s} {'domain':8s} {'backbone':16s} {'data':20s} {'params':>8s} {'size':>7s}  quality")
    for c in cards:
        params = f"{c.parameters / 1e6:.2f}M" if c.parameters else "?"
        headline = [k for k in HEADLINE_QUALITY if k in c.quality] or list(c.quality)[:5]
        quality = ", ".join(f"{k} {c.quality[k]:.3g}" for k in headline) or "not measured"
        print(f"{c.name:10s} {c.domain:8s} {c.backbone:16s} {c.data:20s} {params:>8s} {c.size_bytes / 1e6:6.1f}M  {quality}")
    print("use a name wherever a model is taken: molgen sample NAME -n 100 -o out.smi (model:NAME is always the shipped one)")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from molgen.report import write_report

    summary = write_report(args.source, args.output, title=args.title, reference=args.reference)
    print(f"{summary.kind} report with {len(summary.sections)} sections and {summary.n_images} pictures: {summary.path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from molgen.workflows.demo import run_demo

    result = run_demo(args.out, n_samples=args.n, budget=args.budget, seed=args.seed, progress=not _quiet(args),
                      overwrite=args.overwrite)
    f, t = result.figures, result.seconds
    print(f"prior samples: validity {f['validity']:.3f}, uniqueness {f['uniqueness']:.3f}"
          + (f", internal diversity {f['IntDiv']:.3f}" if "IntDiv" in f else "") + f" ({t['sample']:.0f} s)")
    print(f"optimisation: top-1 {f['top1']:.3f}, top-10 {f['top10']:.3f} after {int(f['calls'])} oracle calls ({t['optimize']:.0f} s)")
    print(f"files: {result.samples}, {result.evaluation}, {result.optimize_dir}/")
    print(f"report: {result.report}  (open it in a browser)")
    return 0


def _parse_conditions(items: list[str] | None) -> dict[str, float] | None:
    """``["heat_ref=-0.5"]`` -> ``{"heat_ref": -0.5}`` (None when empty)."""
    return _parse_assignments(items, "--condition")


def _parse_assignments(items: list[str] | None, flag: str) -> dict[str, float] | None:
    """``["name=0.5"]`` -> ``{"name": 0.5}`` (None when empty); ``flag`` names
    the option in the error."""
    if not items:
        return None
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            if not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise MolgenError(f"{flag} expects NAME=NUMBER, got {item!r}") from None
    return out


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from molgen.core.device import select_device
    from molgen.datasets.readers import require_output_suffix
    from molgen.metrics import metric_names
    from molgen.workflows.crystal_evaluation import looks_like_crystal_file
    from molgen.workflows.peptide_evaluation import looks_like_fasta

    if args.output:  # crystal and peptide reports are JSON too
        require_output_suffix(args.output, (".json",), "report")
    if looks_like_crystal_file(args.generated):
        return _evaluate_crystals(args)
    if looks_like_fasta(args.generated):
        return _evaluate_peptides(args)

    try:
        k = tuple(int(part) for part in args.k.split(",") if part.strip())
    except ValueError:
        raise MolgenError(f"--k must be comma-separated integers, got {args.k!r}") from None
    if not k or min(k) < 1:
        raise MolgenError("--k needs positive integers")
    metrics = None
    if args.metrics:
        metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
        unknown = [name for name in metrics if name not in metric_names(k)]
        if unknown:
            raise MolgenError(f"unknown metric(s) {', '.join(unknown)}; valid: {', '.join(metric_names(k))}")
    if args.jobs < 0:
        raise MolgenError("--jobs must be >= 0")
    report = evaluate_file(
        args.generated,
        reference=None if args.no_ref else (args.ref or DEFAULT_REFERENCE),
        training=None if args.no_train else (args.train or DEFAULT_TRAINING),
        reference_required=args.ref is not None,
        training_required=args.train is not None,
        n=args.n,
        metrics=metrics,
        k=k,
        n_jobs=args.jobs,
        use_cache=not args.no_cache,
        seed=args.seed,
        device=str(select_device(args.device)),
        output=args.output,
        progress=not _quiet(args),
    )
    meta = report.metadata
    summary = f"{meta['n']:,} generated entries, {meta['n_valid']:,} valid, {meta['n_unique']:,} distinct valid"
    return _print_report(report, summary, meta["total_seconds"], args.output)


def _print_report(report, summary: str, seconds: float, output: str | None) -> int:
    print(summary)
    print(report.format_table())
    print(f"total {seconds:.1f} s")
    if output:
        print(f"report: {output}")
    return 0


def _evaluate_crystals(args: argparse.Namespace) -> int:
    from molgen.workflows.crystal_evaluation import evaluate_crystal_file

    if args.jobs < 0:
        raise MolgenError("--jobs must be >= 0")
    report = evaluate_crystal_file(
        args.generated,
        reference=None if args.no_ref else args.ref,
        training=None if args.no_train else args.train,
        preset=args.preset,
        n=args.n,
        n_jobs=args.jobs,
        use_cache=not args.no_cache,
        seed=args.seed,
        output=args.output,
    )
    meta = report.metadata
    seconds = meta.get("seconds", {}).get("total", 0.0)
    return _print_report(report, f"{meta['n_generated']:,} generated crystals, {meta.get('n_valid', 0):,} valid", seconds, args.output)


def _evaluate_peptides(args: argparse.Namespace) -> int:
    from molgen.workflows.peptide_evaluation import (
        DEFAULT_PEPTIDE_REFERENCE,
        DEFAULT_PEPTIDE_TRAINING,
        evaluate_peptide_file,
    )

    report = evaluate_peptide_file(
        args.generated,
        reference=None if args.no_ref else (args.ref or DEFAULT_PEPTIDE_REFERENCE),
        training=None if args.no_train else (args.train or DEFAULT_PEPTIDE_TRAINING),
        reference_required=args.ref is not None,
        training_required=args.train is not None,
        n=args.n,
        seed=args.seed,
        output=args.output,
    )
    meta = report.metadata
    summary = f"{meta['n_generated']:,} generated sequences, {meta['n_valid']:,} valid, {meta['n_distinct']:,} distinct valid"
    return _print_report(report, summary, meta["seconds"], args.output)


def _cmd_datasets(args: argparse.Namespace) -> int:
    from molgen.core.registry import DATASETS

    for name, spec in DATASETS.items():
        print(f"{name:14s} {spec.domain:8s} {spec.description}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from molgen.workflows.scoring import score_file

    summary = score_file(args.molecules, args.objective, args.output, id_column=args.id_column, progress=not _quiet(args))
    print(f"scored {summary.n_scored} of {summary.n} molecules; best {summary.best:.4f}; table: {summary.path}")
    return 0


def _cmd_optimize(args: argparse.Namespace) -> int:
    from molgen.core.config import read_toml
    from molgen.core.seeding import seed_everything
    from molgen.workflows.optimization import optimize
    from molgen.workflows.training import apply_overrides

    settings = read_toml(args.config) if args.config else {}
    settings = apply_overrides(settings, {
        "prior": args.prior,
        "objective": args.objective,
        "seed": args.seed,
        "device": args.device,
        "campaign.budget": args.budget,
        "campaign.batch_size": args.batch_size,
        "campaign.diversity.kind": args.diversity_filter,
        "campaign.diversity.bucket_size": args.bucket_size,
        "campaign.converged_patience": args.patience,
        "strategy.kind": None if args.strategy is None else args.strategy.split("-")[0],
        "strategy.method": None if args.strategy in (None, "reinvent") else args.strategy.split("-")[1],
        "strategy.start": args.start,
        "strategy.start_size": args.start_size,
        "strategy.sigma": args.sigma,
        "strategy.learning_rate": args.lr,
        "strategy.replay_capacity": args.replay,
        "strategy.replay_weighting": args.replay_weighting,
        "strategy.likelihood_penalty": args.likelihood_penalty,
        "strategy.augmentation_rounds": args.augmentation_rounds,
    })
    if not args.resume:
        if "objective" not in settings:
            raise MolgenError("--objective is required (a name such as pmo/qed, or a TOML file)")
        if "budget" not in settings.get("campaign", {}):
            raise MolgenError("--budget is required (oracle calls, e.g. 10000)")
    seed_everything(settings.get("seed", 0))
    result = optimize(settings, args.out, resume=args.resume, progress=not _quiet(args))
    s = result.summary
    print(f"{result.calls} of {result.budget} oracle calls in {result.steps} steps, {result.seconds:.0f} s ({result.stop_reason})")
    print(f"top-1 {s['top1']:.4f}, top-10 {s['top10']:.4f}, top-100 {s['top100']:.4f}; top-10 AUC {s['auc_top10']:.4f}")
    print(f"store: {result.out_dir / 'candidates.sqlite'}; best: {', '.join(str(result.out_dir / v) for v in s['exports'].values())}")
    return 0


def _cmd_discover(args: argparse.Namespace) -> int:
    from molgen.core.config import validate
    from molgen.core.seeding import seed_everything
    from molgen.workflows.discovery import DiscoverSettings, discover, load_preset
    from molgen.workflows.training import apply_overrides

    settings = None
    if not args.resume:
        preset = load_preset(args.preset).model_dump(mode="json")
        preset = apply_overrides(preset, {
            "discovery.rounds": args.rounds,
            "discovery.per_round": args.per_round,
            "discovery.relax.per_round": args.relax_per_round,
            "discovery.relax.budget": args.relax_budget,
            "discovery.relax.executor": args.executor,
            "discovery.relax.workers": args.workers,
        })
        raw = {"preset": preset, "seed": args.seed, "device": args.device}
        if args.generator:
            raw["generator"] = args.generator
        settings = validate(DiscoverSettings, raw, where="discover settings")
    seed_everything(args.seed)
    result = discover(settings, args.out, resume=args.resume, rounds=args.rounds if args.resume else None, log=print,
                      progress=not _quiet(args))
    s = result.summary
    print(f"{result.rounds} rounds, {s['candidates']} distinct structures scored, {s['relaxations']} relaxed "
          f"({s['stable']} stable); in-window fraction by round: {', '.join(f'{100 * x:.1f} %' for x in s['in_window_fraction_by_round'])}")
    print(f"store: {result.out_dir / 'candidates.sqlite'}; rounds: {result.out_dir / 'rounds.csv'}; selected: {result.out_dir / 'selected.csv'}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from molgen.workflows.optimization import export_top

    if args.top < 0:
        raise MolgenError("--top must be >= 0")
    path = export_top(args.run, args.output, args.top or None)
    print(f"wrote {path}")
    return 0


def _cmd_fit_predictor(args: argparse.Namespace) -> int:
    from molgen.workflows.predictors import fit_predictor

    if args.n_models < 1 or args.epochs < 1:
        raise MolgenError("--n-models and --epochs must be >= 1")
    summary = fit_predictor(
        args.data, args.target, args.out, domain=args.domain, model=args.model, task=args.task, split=args.split,
        seed=args.seed, limit=args.limit, hparams={"n_models": args.n_models, "epochs": args.epochs}, progress=not _quiet(args),
    )
    r = summary.report
    print(f"{r['predictor']} ({r['task']}) on {r['n_train']}/{r['n_val']}/{r['n_test']} train/val/test ({r['split']} split); "
          f"skipped {r['n_invalid_skipped']} invalid entries, dropped {r['n_missing_targets_dropped']} rows without targets")
    print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in r["test"].items()))
    print(f"predictor: {summary.out_dir}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from molgen.workflows.predictors import predict_file

    counts = predict_file(args.predictor, args.inputs, args.output, id_column=args.id_column, progress=not _quiet(args))
    print(f"predicted {counts['n_predicted']} of {counts['n']} entries: {counts['path']}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``molgen`` script.

    Args:
        argv: Arguments (default ``sys.argv[1:]``).

    Returns:
        Exit code: 0 on success, 2 on a user error (printed as one line).
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    handler = {
        "train": _cmd_train, "sample": _cmd_sample, "models": _cmd_models, "report": _cmd_report, "demo": _cmd_demo, "evaluate": _cmd_evaluate, "score": _cmd_score, "datasets": _cmd_datasets,
        "optimize": _cmd_optimize, "discover": _cmd_discover, "export": _cmd_export, "fit-predictor": _cmd_fit_predictor, "predict": _cmd_predict,
    }[args.command]
    previous = _terminate_as_interrupt()
    try:
        _check_outputs(args)
        if args.command in RUN_DIR_COMMANDS:
            from molgen.core.outputs import RunLock, prepare_run_dir

            from pathlib import Path

            existed = Path(args.out).exists()
            if not getattr(args, "resume", False):
                prepare_run_dir(args.out, overwrite=args.overwrite, kind=args.command)
            elif args.overwrite:
                raise MolgenError("--resume and --overwrite contradict each other: choose one")
            try:
                with RunLock(args.out, f"molgen {args.command}"):
                    return handler(args)
            except MolgenError:
                if not existed:  # a command refused at its start leaves no empty run directory behind
                    _remove_if_empty(Path(args.out))
                raise
        return handler(args)
    except MolgenError as exc:
        print(f"molgen: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        resumable = args.command in ("train", "optimize", "discover")
        print("molgen: interrupted" + (" (a checkpoint was saved; continue with --resume)" if resumable else ""), file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


#: Commands that own a run directory (--out): it needs --resume or --overwrite when it holds a run, and
#: one command at a time works in it.
RUN_DIR_COMMANDS = ("train", "optimize", "discover", "fit-predictor")
#: command -> (option naming its output file, options naming what it reads).
OUTPUT_FILES = {
    "evaluate": ("output", ("generated", "ref", "train")),
    "score": ("output", ("molecules", "objective")),
    "export": ("output", ("run",)),
    "predict": ("output", ("predictor", "inputs")),
    "report": ("output", ("source", "reference")),
}


def _remove_if_empty(folder) -> None:
    """Delete ``folder`` if it holds nothing but a lock file."""
    from molgen.core.outputs import LOCK_NAME

    try:
        if folder.is_dir() and all(p.name == LOCK_NAME for p in folder.iterdir()):
            (folder / LOCK_NAME).unlink(missing_ok=True)
            folder.rmdir()
    except OSError:
        pass


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output file that would replace an input,
    land in a model directory or a run's files, or cannot be written."""
    from molgen.core.outputs import check_output_file

    spec = OUTPUT_FILES.get(args.command)
    if spec is None or getattr(args, spec[0], None) is None:
        return
    check_output_file(getattr(args, spec[0]), inputs=[getattr(args, name, None) for name in spec[1]])


class _Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: schedulers and `timeout` send it."""


def _terminate_as_interrupt():
    """Make SIGTERM raise like Ctrl-C, so every command saves what it has
    (checkpoints, the candidate store) the same way; returns the previous
    handler (None when signals cannot be set here, e.g. off the main thread)."""
    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the checkpoint short
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
