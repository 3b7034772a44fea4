"""``molgen models``: list the shipped models."""

from __future__ import annotations

import argparse

NAME = "models"


def add_parser(sub) -> argparse.ArgumentParser:
    """Register the ``models`` subcommand on ``sub`` and return its parser."""
    parser = sub.add_parser(
        "models", help="list the shipped models",
        description="List the models shipped with molgen: name, domain, backbone, training data, size and the quality "
        "measured by benchmarks/measure_shipped_models.py. Use a name wherever a model is taken (molgen sample NAME, "
        "--prior, --generator, Generator.from_pretrained); model:NAME always means the shipped model.",
    )
    parser.add_argument("--json", action="store_true", help="print the cards as JSON")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the command; returns the exit code."""
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


#: Quality figures `molgen models` shows first (the card holds more; --json prints them all).
HEADLINE_QUALITY = ("valid", "unique", "novelty", "amp_fraction", "FCD", "COV-R", "COV-P")
