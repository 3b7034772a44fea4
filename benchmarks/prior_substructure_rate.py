"""How often a molecule prior proposes a substructure.

Sparse-reward tasks such as PMO's valsartan SMARTS give no signal until the
agent samples one matching molecule, so the prior's rate of that substructure
sets the chance of a first hit before PMO's early stop. This samples the prior
and counts SMARTS matches among the valid molecules; ``--dataset`` does the
same count on a registered data set for comparison.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prior_substructure_rate.py \\
        --prior zinc250k --samples 60000 --seed 123
    MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/prior_substructure_rate.py --dataset zinc250k
"""

from __future__ import annotations

import argparse
import json

from rdkit import Chem, RDLogger

from molgen.backbones.base import Generator
from molgen.core.errors import MolgenError
from molgen.workflows.optimization import resolve_prior

VALSARTAN_SMARTS = "CN(C=O)Cc1ccc(c2ccccc2)cc1"


def count_matches(smiles: list[str], pattern: Chem.Mol) -> dict:
    """Valid molecules among ``smiles`` and how many contain ``pattern``.

    Args:
        smiles: SMILES strings (invalid ones are counted out).
        pattern: RDKit query molecule from a SMARTS.

    Returns:
        ``{"n": ..., "valid": ..., "matches": ..., "rate_per_valid": ...}``.
    """
    valid = matches = 0
    for text in smiles:
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            continue
        valid += 1
        matches += mol.HasSubstructMatch(pattern)
    return {"n": len(smiles), "valid": valid, "matches": matches, "rate_per_valid": matches / max(valid, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smarts", default=VALSARTAN_SMARTS)
    parser.add_argument("--prior", default="zinc250k", help="shipped prior name or model directory")
    parser.add_argument("--dataset", default=None, help="count in this registered data set instead of sampling")
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=123)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")
    pattern = Chem.MolFromSmarts(args.smarts)
    if pattern is None:
        raise SystemExit(f"not a valid SMARTS: {args.smarts!r}")
    if args.dataset:
        from molgen.datasets import load_texts
        from molgen.domains.smiles import SmilesDomain

        smiles = list(load_texts(args.dataset, SmilesDomain()).texts)
        source = {"dataset": args.dataset}
    else:
        try:
            model = Generator.from_pretrained(resolve_prior(args.prior))
        except MolgenError as exc:
            raise SystemExit(str(exc)) from None
        smiles = model.sample_texts(args.samples, seed=args.seed, batch_size=500)
        source = {"prior": args.prior, "seed": args.seed}
    print(json.dumps({**source, "smarts": args.smarts, **count_matches(smiles, pattern)}))


if __name__ == "__main__":
    main()
