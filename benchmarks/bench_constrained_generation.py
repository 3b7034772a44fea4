"""Benchmark: scaffold decoration, fragment linking and analogs on 20 marketed
drugs, with the shipped ZINC250k autoregressive prior.

For each drug (SMILES below, written for this benchmark):
  * decoration: its Bemis-Murcko scaffold with '*' where its side chains were
    (RDKit ReplaceSidechains), ``-n`` samples;
  * linking: the two ring-bearing pieces left after cutting the two acyclic
    single bonds around its longest ring-free linker of 1-6 heavy atoms (or,
    without one, the single bond joining two ring systems), each with a '*',
    ``-n`` samples with linkers of 2-12 tokens; 20 drugs with such a pair
    (the 20 below, then MORE_LINKABLE);
  * analogs: its acyclic single bonds cut one at a time, the smaller side
    regrown, ``-n`` samples, Tanimoto >= 0.4 to the drug kept.
Reports validity, constraint satisfaction (of the valid; required 100 %),
uniqueness, novelty against the ZINC250k training molecules (when the mirror
holds them) and IntDiv1, pooled and per drug; JSON in
``benchmarks/results/constrained_generation.json``.

    OMP_NUM_THREADS=1 MOLGEN_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/bench_constrained_generation.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from itertools import combinations
from pathlib import Path

import torch
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from molgen.backbones.base import Generator
from molgen.workflows.constrained import generate_constrained, make_templates

DRUGS = {
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1",
    "celecoxib": "Cc1ccc(-c2cc(C(F)(F)F)nn2-c2ccc(S(N)(=O)=O)cc2)cc1",
    "sildenafil": "CCCc1nn(C)c2c(=O)[nH]c(-c3cc(S(=O)(=O)N4CCN(C)CC4)ccc3OCC)nc12",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21",
    "fluoxetine": "CNCCC(Oc1ccc(C(F)(F)F)cc1)c1ccccc1",
    "sertraline": "CNC1CCC(c2ccc(Cl)c(Cl)c2)c2ccccc21",
    "losartan": "CCCCc1nc(Cl)c(CO)n1Cc1ccc(-c2ccccc2-c2nnn[nH]2)cc1",
    "omeprazole": "COc1ccc2[nH]c(S(=O)Cc3ncc(C)c(OC)c3C)nc2c1",
    "haloperidol": "O=C(CCCN1CCC(O)(c2ccc(Cl)cc2)CC1)c1ccc(F)cc1",
    "risperidone": "Cc1nc2n(c(=O)c1CCN1CCC(c3noc4cc(F)ccc34)CC1)CCCC2",
    "paroxetine": "Fc1ccc(C2CCNCC2COc2ccc3c(c2)OCO3)cc1",
    "clopidogrel": "COC(=O)C(c1ccccc1Cl)N1CCc2sccc2C1",
    "donepezil": "COc1cc2c(cc1OC)C(=O)C(CC1CCN(Cc3ccccc3)CC1)C2",
    "gefitinib": "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1",
    "loratadine": "CCOC(=O)N1CCC(=C2c3ccc(Cl)cc3CCc3cccnc32)CC1",
    "metoprolol": "COCCc1ccc(OCC(O)CNC(C)C)cc1",
    "propranolol": "CC(C)NCC(O)COc1cccc2ccccc12",
    "aripiprazole": "O=C1CCc2ccc(OCCCCN3CCN(c4cccc(Cl)c4Cl)CC3)cc2N1",
    "venlafaxine": "COc1ccc(C(CN(C)C)C2(O)CCCCC2)cc1",
    "zolpidem": "Cc1ccc(-c2nc3ccc(C)cn3c2CC(=O)N(C)C)cc1",
}


#: More drugs for linking, used (in this order) after those of DRUGS with no pair to link.
MORE_LINKABLE = {
    "buspirone": "O=C1CC2(CCCC2)CC(=O)N1CCCCN1CCN(c2ncccn2)CC1",
    "ondansetron": "Cc1nccn1CC1CCc2c(c3ccccc3n2C)C1=O",
    "pioglitazone": "CCc1ccc(CCOc2ccc(CC3SC(=O)NC3=O)cc2)nc1",
    "rosiglitazone": "CN(CCOc1ccc(CC2SC(=O)NC2=O)cc1)c1ccccn1",
    "ciprofloxacin": "O=C(O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O",
    "prazosin": "COc1cc2nc(N3CCN(C(=O)c4ccco4)CC3)nc(N)c2cc1OC",
    "quetiapine": "OCCOCCN1CCN(C2=Nc3ccccc3Sc3ccccc32)CC1",
    "nifedipine": "COC(=O)C1=C(C)NC(C)=C(C(=O)OC)C1c1ccccc1[N+](=O)[O-]",
}


def decoration_scaffold(smiles: str) -> str:
    """The Murcko scaffold with '*' at each side-chain position."""
    mol = Chem.MolFromSmiles(smiles)
    core = MurckoScaffold.GetScaffoldForMol(mol)
    return _with_plain_dummies(Chem.ReplaceSidechains(mol, core))


def _with_plain_dummies(mol: Chem.Mol) -> str:
    """SMILES with the numbered dummies RDKit writes when cutting ([1*]) as plain '*'."""
    for atom in mol.GetAtoms():
        if atom.GetAtomicNum() == 0:
            atom.SetIsotope(0)
    return Chem.MolToSmiles(mol)


def linking_pair(smiles: str) -> tuple[str, str] | None:
    """The two ring-bearing pieces around the longest ring-free linker of 1-6 heavy atoms."""
    mol = Chem.MolFromSmiles(smiles)
    bonds = [b.GetIdx() for b in mol.GetBonds() if not b.IsInRing() and b.GetBondType() == Chem.BondType.SINGLE]
    best, best_key = None, None
    for b1, b2 in combinations(bonds, 2):
        pieces = Chem.GetMolFrags(Chem.FragmentOnBonds(mol, [b1, b2], addDummies=True), asMols=True, sanitizeFrags=False)
        if len(pieces) != 3:
            continue
        middle = [p for p in pieces if sum(a.GetAtomicNum() == 0 for a in p.GetAtoms()) == 2]
        outer = [p for p in pieces if sum(a.GetAtomicNum() == 0 for a in p.GetAtoms()) == 1]
        if len(middle) != 1 or len(outer) != 2:
            continue
        for piece in pieces:
            Chem.FastFindRings(piece)
        linker = middle[0]
        heavy = sum(a.GetAtomicNum() > 0 for a in linker.GetAtoms())
        if not 1 <= heavy <= 6 or linker.GetRingInfo().NumRings() or any(p.GetRingInfo().NumRings() == 0 for p in outer):
            continue
        key = (heavy, min(p.GetNumAtoms() for p in outer))
        if best_key is None or key > best_key:
            best, best_key = tuple(_with_plain_dummies(p) for p in outer), key
    if best is None:  # no linker: two ring systems joined by one bond
        for b in bonds:
            bond = mol.GetBondWithIdx(b)
            if bond.GetBeginAtom().IsInRing() and bond.GetEndAtom().IsInRing():
                pieces = Chem.GetMolFrags(Chem.FragmentOnBonds(mol, [b], addDummies=True), asMols=True)
                key = min(p.GetNumAtoms() for p in pieces)
                if best_key is None or key > best_key:
                    best, best_key = tuple(_with_plain_dummies(p) for p in pieces), key
    return best


def linking_set(count: int = 20) -> dict[str, tuple[str, str]]:
    """The first ``count`` drugs (DRUGS, then MORE_LINKABLE) with a pair of fragments to link."""
    out = {}
    for name, smiles in {**DRUGS, **MORE_LINKABLE}.items():
        pair = linking_pair(smiles)
        if pair is not None and len(out) < count:
            out[name] = pair
    return out


def zinc_reference() -> set[str] | None:
    try:
        from molgen.datasets.loading import load_texts
        from molgen.domains import SmilesDomain

        return set(load_texts("zinc250k", SmilesDomain(), canonicalize=True, on_invalid="skip").texts)
    except Exception as exc:  # no mirror: novelty against the templates only
        print(f"novelty against ZINC250k skipped: {exc}")
        return None


def pooled(results: list) -> dict:
    rows = [row for result in results for row in result.rows]
    from molgen.workflows.constrained import ConstrainedResult

    merged = ConstrainedResult(rows, results[0].kind)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=100, help="samples per drug and task (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="zinc250k")
    parser.add_argument("--out", default="benchmarks/results/constrained_generation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = Generator.from_pretrained(args.model)
    t0 = time.perf_counter()
    reference = zinc_reference()
    print(f"reference: {len(reference) if reference else 0} molecules ({time.perf_counter() - t0:.0f} s)", flush=True)
    report = {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "model": args.model, "n_per_drug": args.n, "seed": args.seed, "tasks": {}}
    for task in ("decoration", "linking", "analogs"):
        t0 = time.perf_counter()
        per_drug, results = {}, []
        pairs = linking_set()
        drugs = {name: {**DRUGS, **MORE_LINKABLE}[name] for name in pairs} if task == "linking" else DRUGS
        for k, (name, smiles) in enumerate(drugs.items()):
            if task == "decoration":
                request = {"scaffold": decoration_scaffold(smiles)}
            elif task == "linking":
                request = {"link": list(pairs[name])}
            else:
                request = {"analogs": smiles}
            templates = make_templates(**request)
            result = generate_constrained(model, templates, args.n, seed=args.seed + k,
                                          lead=smiles if task == "analogs" else None, similarity=0.4)
            results.append(result)
            summary = result.summary(reference)
            per_drug[name] = {"request": request, **summary, "kept": len(result.kept)}
            print(f"[{task}] {name}: " + ", ".join(f"{key} {v:.3f}" for key, v in summary.items() if isinstance(v, float)),
                  flush=True)
        merged = pooled(results)
        total = merged.summary(reference)
        total["kept"] = sum(d["kept"] for d in per_drug.values())
        report["tasks"][task] = {"pooled": total, "per_drug": per_drug,
                                 "min_satisfaction": min(d["satisfaction"] for d in per_drug.values()),
                                 "seconds": time.perf_counter() - t0}
        print(f"[{task}] pooled over {len(per_drug)} drugs: " + json.dumps({k: round(v, 3) for k, v in total.items()}),
              flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
