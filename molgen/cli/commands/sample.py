"""``molgen sample``: draw samples from a model."""

from __future__ import annotations

import argparse

from molgen.core.errors import MolgenError
from molgen.cli.common import parse_assignments, parse_conditions, quiet

NAME = "sample"
#: Gets -q/--quiet (it shows progress bars).
QUIET = True
#: Gets --precision (bf16 autocast of its inference; see molgen.core.device.autocast).
PRECISION = True


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``sample`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "sample",
        help="sample a trained generator into a file",
        description="Sample a saved model (a model directory or a training run directory). Invalid "
        "samples are kept and marked unless --valid-only is given.",
    )
    parser.add_argument("model", help="shipped model name (see `molgen models`; model:NAME is always the shipped one), "
                        "or a model or run directory")
    parser.add_argument("-n", type=int, default=1000, help="number of samples (default 1000)")
    parser.add_argument("-o", "--output", help="output file: .smi, .csv, .txt, or .sdf for molecules (valid samples only; omit to only report)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--temperature", type=float, help="softmax temperature (default 1.0; token backbones, and the atom/bond types of graph diffusion)")
    parser.add_argument("--top-k", type=int, help="keep only the k most likely tokens")
    parser.add_argument("--top-p", type=float, help="nucleus sampling threshold in (0, 1]")
    parser.add_argument("--max-length", type=int, help="longest sequence in tokens")
    parser.add_argument("--constrained", action=argparse.BooleanOptionalAction, default=None,
                        help="decode under the domain's token grammar so every sample is well formed (crystal text; "
                             "autoregressive and VAE backbones; on by default where the domain has a grammar)")
    parser.add_argument("--semantic", action=argparse.BooleanOptionalAction, default=None,
                        help="enforce the domain's decoding rule while decoding: crystals (with --constrained, on "
                             "by default with it): no atom within the 0.5 A validity distance of an earlier one; "
                             "SMILES (on by default): syntax and valence, so rings and branches close and no atom is "
                             "over-bonded (masked diffusion then fills its canvas left to right)")
    parser.add_argument("--field-temperature", action="append", metavar="FIELD=T",
                        help="with --constrained: temperature of one grammar field in place of --temperature "
                             "(repeatable; crystals: length, angle, element, coordinate, end; e.g. coordinate=0.5)")
    parser.add_argument("--batch-size", type=int, default=512, help="samples decoded together (default 512)")
    parser.add_argument("--steps", type=int, help="denoising steps of a diffusion backbone (default: the model's)")
    parser.add_argument("--order", choices=("random", "confidence", "left-to-right"),
                        help="masked diffusion: which masked positions each step reveals (default random: the model's "
                             "own distribution; confidence: the most probable first, MaskGIT-style, more valid but "
                             "less diverse samples)")
    parser.add_argument("--confidence-noise", type=float,
                        help="with --order confidence: Gumbel noise on the confidences, annealed to 0 "
                             "(0 default; larger trades validity for diversity)")
    parser.add_argument("--corrector-steps", type=int,
                        help="Langevin corrector steps per denoising step on crystal coordinates (graph diffusion; default: the model's)")
    parser.add_argument(
        "--condition", action="append", metavar="NAME=VALUE",
        help="property value to condition on (repeatable; models trained with conditions, e.g. heat_ref=-0.5); "
        "autoregressive models also take a range NAME=LOW:HIGH, drawn uniformly per sample (e.g. logP=2:3)",
    )
    parser.add_argument("--guidance", type=float, help="classifier-free guidance weight with --condition (default 0)")
    parser.add_argument("--valid-only", action="store_true", help="write only valid samples")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="sample in N processes on this machine (one per GPU, or CPU processes): launches "
                        "`torchrun --standalone --nproc-per-node N -m molgen sample ...`; each draws its share with a "
                        "seed derived from --seed and its rank, and one file is written (the same for the same seed and N)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.backbones.base import Generator
    from molgen.core.device import select_device
    from molgen.workflows.sampling import resolve_model_dir, sample_to_file

    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise MolgenError("--top-p must be in (0, 1]")
    if args.temperature is not None and args.temperature < 0:
        raise MolgenError("--temperature must be >= 0 (0 means greedy)")
    if args.top_k is not None and args.top_k < 1:
        raise MolgenError("--top-k must be >= 1")
    from molgen.train.distributed import DistributedContext, relaunched

    if relaunched(args, "sampling"):
        return 0
    dist = DistributedContext.from_env()
    device = dist.device(select_device(args.device))
    dist.init(device)
    model = Generator.from_pretrained(resolve_model_dir(args.model), device=device)
    defaults = card_sampling(args.model)
    options = {
        "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p, "max_length": args.max_length,
        "steps": args.steps, "corrector_steps": args.corrector_steps, "condition": parse_conditions(args.condition), "guidance": args.guidance,
        "constrained": args.constrained, "semantic": args.semantic,
        "order": args.order, "confidence_noise": args.confidence_noise,
        "field_temperature": parse_assignments(args.field_temperature, "--field-temperature"),
    }
    options = {k: v for k, v in options.items() if v is not None}
    accepted = model.sampling_options()
    if options.get("constrained") is False and "semantic" not in options:
        defaults = {k: v for k, v in defaults.items() if k != "semantic"}  # the rule reads the grammar: off with it
    options = {**{k: v for k, v in defaults.items() if k in accepted}, **options}
    stats = sample_to_file(model, args.n, args.output, seed=args.seed, valid_only=args.valid_only, batch_size=args.batch_size,
                           progress=not quiet(args), **options)
    dist.shutdown()
    if not dist.is_main:
        return 0
    print(
        f"{stats.n} samples in {stats.seconds:.1f} s ({stats.per_second:,.0f}/s): "
        f"validity {stats.validity:.3f}, uniqueness {stats.uniqueness:.3f}"
    )
    if stats.path is not None:
        print(f"samples: {stats.path}")
    return 0


def card_sampling(spec: str) -> dict:
    """The sampling options a shipped model's card recommends ({} for a
    user's model)."""
    from molgen.pretrained import model_card, resolve_model_path, shipped_name

    name = shipped_name(resolve_model_path(spec))
    return model_card(name).sampling if name else {}
