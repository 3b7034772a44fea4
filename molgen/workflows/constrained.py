"""Constrained generation: decorate a scaffold, grow or link fragments, make
analogs of a lead (each written by a left-to-right model under a
:class:`~molgen.domains.smiles_template.SmilesTemplate`), and peptides with a
motif (:class:`~molgen.domains.peptide_motif.PeptideMotif`: forced residues
for a left-to-right model, infilled by masked diffusion).

Every output is checked: valid (RDKit), the template satisfied (substructure
match with the attachment points respected), and new with respect to the
template itself (a decoration must add something) and, for analogs, to the
lead; analogs are kept when their Tanimoto similarity to the lead reaches the
threshold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from rdkit import Chem, DataStructs, rdBase
from rdkit.Chem import rdFingerprintGenerator

from molgen.core.errors import MolgenError
from molgen.domains.peptide_motif import PeptideMotif
from molgen.domains.smiles_template import SmilesTemplate, analog_cuts, decoration, growing, linking

_FINGERPRINTS = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)


@dataclass
class ConstrainedResult:
    """Generated molecules and their checks.

    Attributes:
        rows: One dict per sample: ``smiles``, ``valid``, ``canonical``,
            ``satisfied``, ``template``, ``similarity`` (analogs: to the lead).
        kind: ``scaffold``, ``grow``, ``link`` or ``analog``.
        kept: Indices of rows that pass every check (and the similarity
            threshold for analogs), first occurrence of each molecule.
    """

    rows: list[dict]
    kind: str
    kept: list[int] = field(default_factory=list)

    def summary(self, reference: Sequence[str] | None = None) -> dict:
        """Validity, constraint satisfaction (of the valid), uniqueness and
        novelty (of the valid and satisfied), internal diversity (IntDiv1 of
        the unique ones), analogs' similarity to the lead.

        Args:
            reference: Canonical SMILES a novel molecule must not be among
                (e.g. the training set); None: novelty against the templates only.
        """
        n = len(self.rows)
        valid = [r for r in self.rows if r["valid"]]
        good = [r for r in valid if r["satisfied"]]
        unique = sorted({r["canonical"] for r in good})
        known = set(reference or ())
        out = {
            "samples": n,
            "validity": len(valid) / n if n else 0.0,
            "satisfaction": len(good) / len(valid) if valid else 0.0,
            "uniqueness": len(unique) / len(good) if good else 0.0,
            "novelty": (sum(1 for s in unique if s not in known) / len(unique)) if unique else 0.0,
        }
        if self.kind != "motif":  # Morgan-fingerprint diversity is for molecules
            out["int_div1"] = _internal_diversity(unique)
        if self.kind == "analog":
            sims = [r["similarity"] for r in good]
            out["mean_similarity"] = float(np.mean(sims)) if sims else 0.0
            out["kept"] = len(self.kept)
        return out


def _internal_diversity(smiles: Sequence[str]) -> float:
    if len(smiles) < 2:
        return 0.0
    fps = [_FINGERPRINTS.GetFingerprint(Chem.MolFromSmiles(s)) for s in smiles]
    sims = [DataStructs.BulkTanimotoSimilarity(fp, fps) for fp in fps]
    return float(1.0 - np.mean(sims))


def make_templates(*, scaffold: str | None = None, grow: str | None = None, link: Sequence[str] | None = None,
                   analogs: str | None = None, linker_tokens: tuple[int, int] = (2, 12)) -> list[SmilesTemplate]:
    """The template(s) of exactly one request.

    Raises:
        MolgenError: none or several requests, or a template that cannot be built.
    """
    given = [name for name, value in (("scaffold", scaffold), ("grow", grow), ("link", link), ("analogs", analogs)) if value]
    if len(given) != 1:
        raise MolgenError("give exactly one of --scaffold, --grow, --link, --analogs" +
                          (f" (got {', '.join('--' + g for g in given)})" if given else ""))
    if scaffold:
        return [decoration(scaffold)]
    if grow:
        return [growing(grow)]
    if link:
        if len(link) != 2:
            raise MolgenError(f"--link takes two fragments, got {len(link)}")
        return [linking(link[0], link[1], linker_tokens)]
    return analog_cuts(analogs)


def generate_constrained(model, templates: Sequence[SmilesTemplate], n: int, *, seed: int = 0, temperature: float = 1.0,
                         lead: str | None = None, similarity: float = 0.0, batch_size: int = 512) -> ConstrainedResult:
    """Sample ``n`` molecules spread evenly over ``templates``.

    Args:
        model: A token generator of the SMILES domain with a left-to-right decoder.
        templates: From :func:`make_templates`.
        n: Samples in all.
        seed: Seed of sampling and of linker lengths.
        temperature: Softmax temperature.
        lead: The lead of an analog request (similarity and novelty against it).
        similarity: Analogs with lower Tanimoto (Morgan r2) to ``lead`` are not kept.
        batch_size: Sequences decoded together.

    Raises:
        MolgenError: a model of another domain, one that cannot write templates, or ``n`` < 1.
    """
    if n < 1:
        raise MolgenError(f"-n must be >= 1, got {n}")
    if getattr(model.domain, "name", None) != "smiles":
        raise MolgenError(f"scaffolds, fragments and analogs are SMILES: this model's domain is {model.domain.name!r}")
    if not 0.0 <= similarity <= 1.0:
        raise MolgenError(f"--similarity must be in [0, 1], got {similarity}")
    vocab = model.domain.tokenizer.vocab
    lead_mol = Chem.MolFromSmiles(lead) if lead else None
    lead_fp = _FINGERPRINTS.GetFingerprint(lead_mol) if lead_mol is not None else None
    lead_key = Chem.MolToSmiles(lead_mol) if lead_mol is not None else None
    template_keys = {Chem.MolToSmiles(Chem.MolFromSmiles(t.text.replace("*", "[H]"))) for t in templates
                     if " + " not in t.text and Chem.MolFromSmiles(t.text.replace("*", "[H]")) is not None}
    shares = [n // len(templates) + (1 if i < n % len(templates) else 0) for i in range(len(templates))]
    rows: list[dict] = []
    for k, (template, share) in enumerate(zip(templates, shares)):
        if share == 0:
            continue
        constraint = template.constraint(vocab, seed=seed + k)
        ids = model.sample_ids_under(share, constraint, seed=seed + k, temperature=temperature, batch_size=batch_size)
        for seq in ids:
            text = model.domain.tokenizer.decode(seq)
            with rdBase.BlockLogs():
                mol = Chem.MolFromSmiles(text) if text else None
            canonical = Chem.MolToSmiles(mol) if mol is not None else ""
            row = {"smiles": text, "valid": mol is not None, "canonical": canonical,
                   "satisfied": template.satisfied_by(mol), "template": template.text, "similarity": None}
            if lead_fp is not None and mol is not None:
                row["similarity"] = DataStructs.TanimotoSimilarity(lead_fp, _FINGERPRINTS.GetFingerprint(mol))
            rows.append(row)
    kind = templates[0].kind
    seen: set[str] = set()
    kept = []
    for i, row in enumerate(rows):
        key = row["canonical"]
        if not (row["valid"] and row["satisfied"]) or key in seen or key in template_keys or key == lead_key:
            continue
        if kind == "analog" and (row["similarity"] or 0.0) < similarity:
            continue
        seen.add(key)
        kept.append(i)
    return ConstrainedResult(rows, kind, kept)


def write_constrained(result: ConstrainedResult, path: str | Path, kept_only: bool = False) -> Path:
    """Write rows as CSV (``index,smiles,valid,satisfied,kept,canonical,template[,similarity]``) or
    ``.smi`` (kept molecules only, named ``generated_i``).

    Raises:
        MolgenError: another suffix.
    """
    path = Path(path)
    kept = set(result.kept)
    if path.suffix.lower() == ".smi":
        path.write_text("".join(f"{result.rows[i]['canonical']}\tgenerated_{i}\n" for i in result.kept))
        return path
    if path.suffix.lower() != ".csv":
        raise MolgenError(f"unknown output suffix {path.suffix!r}: use .csv (every sample, with its checks) or .smi (kept ones)")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        analog = result.kind == "analog"
        text = "sequence" if result.kind == "motif" else "smiles"
        writer.writerow(["index", text, "valid", "satisfied", "kept", "canonical", "template", *(["similarity"] if analog else [])])
        for i, row in enumerate(result.rows):
            if kept_only and i not in kept:
                continue
            sim = [f"{row['similarity']:.4f}" if row["similarity"] is not None else ""] if analog else []
            writer.writerow([i, row["smiles"], int(row["valid"]), int(row["satisfied"]), int(i in kept), row["canonical"],
                             row["template"], *sim])
    return path


def generate_motif(model, motif: PeptideMotif, n: int, *, seed: int = 0, temperature: float = 1.0,
                   batch_size: int = 256) -> ConstrainedResult:
    """Sample ``n`` peptides that carry ``motif``: an autoregressive model
    writes them left to right with the motif's residues forced, masked
    diffusion infills around them.

    Raises:
        MolgenError: a model of another domain, or one that can do neither.
    """
    if n < 1:
        raise MolgenError(f"-n must be >= 1, got {n}")
    if getattr(model.domain, "name", None) != "protein":
        raise MolgenError(f"a motif is a peptide constraint: this model's domain is {model.domain.name!r}")
    constraint = motif.constraint(model.domain.tokenizer.vocab, seed=seed)
    ids = model.sample_ids_under(n, constraint, seed=seed, temperature=temperature, batch_size=batch_size)
    rows, seen, kept = [], set(), []
    for i, seq in enumerate(ids):
        text = model.domain.tokenizer.decode(seq)
        valid = model.domain.try_parse(text) is not None
        satisfied = motif.satisfied_by(text)
        rows.append({"smiles": text, "valid": valid, "canonical": text if valid else "", "satisfied": satisfied,
                     "template": motif_text(motif), "similarity": None})
        if valid and satisfied and text not in seen:
            seen.add(text)
            kept.append(i)
    return ConstrainedResult(rows, "motif", kept)


def motif_text(motif: PeptideMotif) -> str:
    """The motif as a pattern: fixed residues, '-' elsewhere, then the length range."""
    pattern = "".join(motif.fixed.get(i, "-") for i in range(max(motif.fixed) + 1))
    return f"{pattern} ({motif.min_length}-{motif.max_length} residues)"
