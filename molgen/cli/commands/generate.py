"""``molgen generate``: objects built around what the scientist gives
(a scaffold to decorate, a fragment to grow, two fragments to link, a lead to
make analogs of, a peptide motif, a crystal composition)."""

from __future__ import annotations

import argparse
import json

from molgen.core.errors import MolgenError

NAME = "generate"
#: Gets --precision (bf16 autocast of its inference; see molgen.core.device.autocast).
PRECISION = True
#: Checked before the work: never written over an input.
OUTPUT = ("output", ())


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``generate`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "generate",
        help="decorate a scaffold, grow or link fragments, make analogs, fix a peptide motif or a crystal composition",
        description="Constrained generation with a SMILES model that decodes left to right (autoregressive). "
        "Mark attachment points with '*'. The scaffold or fragments are written exactly as given and the model "
        "writes the rest under SMILES syntax and valence rules; every output is checked (valid, template "
        "satisfied by substructure match with the attachment points respected, new).",
    )
    parser.add_argument("model", help="shipped model name (e.g. zinc250k) or a model/run directory")
    what = parser.add_argument_group("what to generate (exactly one)")
    what.add_argument("--scaffold", help="scaffold SMILES with '*' at each attachment point, e.g. 'c1ccc(*)cc1*'")
    what.add_argument("--grow", metavar="FRAGMENT", help="fragment SMILES with one '*' to grow from")
    what.add_argument("--link", nargs=2, metavar=("FRAG1", "FRAG2"), help="two fragments, each with one '*', to join")
    what.add_argument("--analogs", metavar="LEAD", help="lead SMILES: regrow one side of each acyclic single bond")
    what.add_argument("--motif", metavar="POS:RESIDUES", help="peptides: fixed residues, comma separated, 1-based "
                      "(e.g. '1:GL,8:KK'); an autoregressive model writes the rest, masked diffusion infills it")
    what.add_argument("--composition", metavar="FORMULA", help="crystals: structures of this composition (e.g. SrTiO3; "
                      "crystal structure prediction); an autoregressive model writes lattice and coordinates with the "
                      "site lines fixed, graph diffusion takes the atoms as given")
    parser.add_argument("--formula-units", type=int, default=1,
                        help="crystals with --composition: copies of the formula in the cell (default 1)")
    parser.add_argument("--length", nargs=2, type=int, metavar=("MIN", "MAX"), default=None,
                        help="peptides with --motif: length range (default: 1 to the model's longest)")
    parser.add_argument("--similarity", type=float, default=0.4,
                        help="analogs: keep those with Morgan Tanimoto to the lead >= this (default 0.4)")
    parser.add_argument("--linker-tokens", nargs=2, type=int, default=(2, 12), metavar=("MIN", "MAX"),
                        help="link: linker length in SMILES tokens, drawn per sample (default 2 12)")
    parser.add_argument("-n", type=int, default=100, help="samples to draw (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    parser.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    parser.add_argument("-o", "--output", help=".csv (every sample with its checks) or .smi (kept molecules)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
    from molgen.backbones.base import Generator
    from molgen.core.device import select_device
    from molgen.workflows.constrained import generate_constrained, make_templates, write_constrained
    from molgen.workflows.sampling import resolve_model_dir

    if args.temperature < 0:
        raise MolgenError("--temperature must be >= 0 (0 means greedy)")
    if args.motif or args.composition:
        if sum(bool(v) for v in (args.scaffold, args.grow, args.link, args.analogs, args.motif, args.composition)) > 1:
            raise MolgenError("give exactly one of --scaffold, --grow, --link, --analogs, --motif, --composition")
        return _run_motif(args) if args.motif else _run_composition(args)
    templates = make_templates(scaffold=args.scaffold, grow=args.grow, link=args.link, analogs=args.analogs,
                               linker_tokens=tuple(args.linker_tokens))
    model = Generator.from_pretrained(resolve_model_dir(args.model), device=select_device(args.device))
    result = generate_constrained(model, templates, args.n, seed=args.seed, temperature=args.temperature,
                                  lead=args.analogs, similarity=args.similarity if args.analogs else 0.0)
    summary = result.summary()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"{len(result.kept)} kept of {len(result.rows)} ({templates[0].kind}: {', '.join(t.text for t in templates[:3])}"
          f"{', ...' if len(templates) > 3 else ''})")
    if args.output:
        print(f"written: {write_constrained(result, args.output)}")
    return 0


def _run_motif(args: argparse.Namespace) -> int:
    from molgen.backbones.base import Generator
    from molgen.core.device import select_device
    from molgen.domains.peptide_motif import PeptideMotif
    from molgen.workflows.constrained import generate_motif, motif_text, write_constrained
    from molgen.workflows.sampling import resolve_model_dir

    model = Generator.from_pretrained(resolve_model_dir(args.model), device=select_device(args.device))
    longest = model.config.max_length - 2
    low, high = args.length or (1, longest)
    motif = PeptideMotif.parse(args.motif, low, high)
    result = generate_motif(model, motif, args.n, seed=args.seed, temperature=args.temperature)
    summary = result.summary()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in summary.items()}))
    print(f"{len(result.kept)} kept of {len(result.rows)} (motif {motif_text(motif)})")
    if args.output:
        print(f"written: {write_constrained(result, args.output)}")
    return 0


def _run_composition(args: argparse.Namespace) -> int:
    from molgen.backbones.base import Generator
    from molgen.core.device import select_device
    from molgen.domains.crystal.composition import composition_sites
    from molgen.workflows.sampling import resolve_model_dir
    from molgen.workflows.structure_prediction import predict_structures, summarize_structures, write_structures

    composition_sites(args.composition, args.formula_units)  # a bad formula fails before the model loads
    model = Generator.from_pretrained(resolve_model_dir(args.model), device=select_device(args.device))
    structures = predict_structures(model, args.composition, args.n, formula_units=args.formula_units, seed=args.seed,
                                    temperature=args.temperature)
    summary, distinct = summarize_structures(structures)
    print(json.dumps(summary))
    for row in distinct[:10]:
        print(f"  sample {row['index']}: {row['count']} of {summary['valid']} valid samples, space group "
              f"{row['spacegroup'] or '?'}, {row['volume_per_atom']} A^3/atom")
    if args.output:
        print(f"written: {write_structures(structures, args.output, args.composition)}")
    return 0
