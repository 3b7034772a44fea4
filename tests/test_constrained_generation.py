"""Scaffold decoration, growing, linking and analogs: templates, their
constraint, the workflow on a small real prior, and the CLI's refusals."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from conftest import SMALL_SMILES
from helpers import draw_uniform
from rdkit import Chem

from molgen.backbones.masked_diffusion import MaskedDiffusion
from molgen.cli.main import main
from molgen.core.errors import MolgenError
from molgen.core.vocab import Vocabulary
from molgen.domains import SmilesDomain
from molgen.domains.smiles import SmilesTokenizer
from molgen.domains.smiles_template import Span, analog_cuts, decoration, growing, linking
from molgen.workflows.constrained import generate_constrained, make_templates

TOKENIZER = SmilesTokenizer()
VOCAB = Vocabulary.from_token_lists(TOKENIZER.tokenize(s) for s in SMALL_SMILES + ["CC(C)(C)CN", "C1CCC1", "OCCO"])


def _uniform(template, n=60, seed=0, limit=60):
    """Uniformly random choices among the allowed tokens: the template must
    hold whatever the 'model' prefers."""
    constraint = template.constraint(VOCAB, seed=seed)
    constraint.reset(n, limit)
    return draw_uniform(constraint, VOCAB, [limit] * n, seed)


def test_templates_cut_at_attachment_points():
    template = decoration("c1ccc(*)cc1*")
    spans = [s for s in template.segments if isinstance(s, Span)]
    assert [s.end for s in spans] == ["close", "eos"] or [s.end for s in spans] == ["eos", "close"][::-1]
    assert template.satisfied_by(Chem.MolFromSmiles("Cc1cccc(O)c1"))
    assert not template.satisfied_by(Chem.MolFromSmiles("Cc1ccccc1"))  # one point left bare
    assert not template.satisfied_by(Chem.MolFromSmiles("Cc1cc(C)cc(O)c1"))  # a substituent off the points
    assert len(analog_cuts("CC(=O)Nc1ccc(O)cc1")) == 4
    link = linking("*c1ccccc1", "*C1CCNCC1")
    assert link.satisfied_by(Chem.MolFromSmiles("c1ccccc1CCC1CCNCC1"))
    assert not link.satisfied_by(Chem.MolFromSmiles("c1ccccc1CCC"))


@pytest.mark.parametrize("bad, message", [
    (lambda: decoration("c1ccc(cc1"), "not a valid SMILES"),
    (lambda: decoration("c1ccccc1"), "no attachment point"),
    (lambda: decoration("C1*CC1"), "exactly one neighbour"),
    (lambda: growing("*CC*"), "exactly one attachment point"),
    (lambda: linking("*c1ccccc1", "C1CCNCC1"), "exactly one attachment point"),
    (lambda: linking("*C", "*N", (5, 2)), "linker lengths"),
    (lambda: analog_cuts("c1ccccc1"), "no acyclic single bond"),
    (lambda: make_templates(scaffold="*C", grow="*N"), "exactly one of"),
    (lambda: decoration("*[Te]C").constraint(VOCAB), r"token '\[Te\]' is not in the model's vocabulary"),
])
def test_bad_constraints_get_clear_errors(bad, message):
    with pytest.raises(MolgenError, match=message):
        bad()


@pytest.mark.parametrize("template", [
    decoration("c1ccc(*)cc1*"), decoration("O=C(N*)c1ccc(*)cc1"), growing("*C1CCNCC1"),
    linking("*c1ccccc1", "*C1CCNCC1", (1, 6)), analog_cuts("CC(=O)Nc1ccc(O)cc1")[0],
])
def test_whatever_the_model_prefers_the_template_holds(template):
    texts = _uniform(template)
    mols = [Chem.MolFromSmiles(t) for t in texts]
    parsed = [Chem.MolFromSmiles(t, sanitize=False) is not None for t in texts]
    assert np.mean(parsed) >= 0.8  # uniform choices walk into rare dead ends a model avoids
    valid = [m for m in mols if m is not None]
    assert valid and all(template.satisfied_by(m) for m in valid)


def test_a_small_prior_decorates_links_and_makes_analogs(tiny_prior_dir):
    from molgen.backbones.base import Generator

    model = Generator.from_pretrained(tiny_prior_dir)
    for templates, lead in ((make_templates(scaffold="c1ccc(*)cc1*"), None),
                            (make_templates(link=["*c1ccccc1", "*C1CCNCC1"], linker_tokens=(1, 6)), None),
                            (make_templates(analogs="CC(=O)Nc1ccc(O)cc1"), "CC(=O)Nc1ccc(O)cc1")):
        result = generate_constrained(model, templates, 40, seed=1, lead=lead, similarity=0.2)
        summary = result.summary()
        assert summary["validity"] > 0.3, summary
        assert summary["satisfaction"] == 1.0
        again = generate_constrained(model, templates, 40, seed=1, lead=lead, similarity=0.2)
        assert [r["smiles"] for r in again.rows] == [r["smiles"] for r in result.rows]  # reproducible
        kept = [result.rows[i]["canonical"] for i in result.kept]
        assert len(kept) == len(set(kept)) and "c1ccccc1" not in kept
        if lead:
            assert all(result.rows[i]["similarity"] >= 0.2 for i in result.kept)


def test_cli_generate_writes_checks_and_refuses(tiny_prior_dir, tmp_path, capsys):
    out = tmp_path / "decorated.csv"
    assert main(["generate", str(tiny_prior_dir), "--scaffold", "c1ccc(*)cc1", "-n", "12", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 and {"valid", "satisfied", "kept", "canonical"} <= set(rows[0])
    assert all(r["satisfied"] == "1" for r in rows if r["valid"] == "1")
    assert main(["generate", "perov5", "--scaffold", "c1ccc(*)cc1", "-n", "2"]) == 2
    assert "domain is 'crystal'" in capsys.readouterr().err
    assert main(["generate", str(tiny_prior_dir), "--scaffold", "c1ccc(*)cc1", "-n", "2", "-o", str(tmp_path / "x.sdf")]) == 2
    assert main(["generate", str(tiny_prior_dir), "-n", "2"]) == 2


def test_a_backbone_without_a_left_to_right_decoder_refuses():
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    torch.manual_seed(0)
    model = MaskedDiffusion.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=48)
    with pytest.raises(MolgenError, match="cannot write a template"):
        generate_constrained(model, make_templates(scaffold="c1ccc(*)cc1"), 4)


def test_reinvent_with_a_scaffold_proposes_decorations_and_learns(tiny_prior_dir):
    """LibInvent-style RL: every proposal keeps the scaffold, and a policy step runs on them."""
    from molgen.backbones.base import Generator
    from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

    prior = Generator.from_pretrained(tiny_prior_dir)
    strategy = PriorRegularizedRL(prior, ReinforceConfig(scaffold="c1ccc(*)cc1", replay_batch=2), seed=0)
    texts = strategy.propose(16)
    template = decoration("c1ccc(*)cc1")
    valid = [Chem.MolFromSmiles(t) for t in texts]
    valid = [m for m in valid if m is not None]
    assert valid and all(template.satisfied_by(m) for m in valid)
    stats = strategy.update(texts, [None] * len(texts), [0.5] * len(texts))
    assert np.isfinite(stats["loss"])
    with pytest.raises(ValueError, match="scaffold and constrained"):
        ReinforceConfig(scaffold="c1ccc(*)cc1", constrained=True)
    with pytest.raises(MolgenError, match="not in the model's vocabulary"):
        PriorRegularizedRL(prior, ReinforceConfig(scaffold="*[Te]c1ccccc1"), seed=0)


@pytest.mark.parametrize("parts, lengths, message", [
    ("1:GLB", (5, 20), "unknown residue"),
    ("40:K", (5, 30), "beyond the maximum length 30"),
    ("1:G,1:A", (5, 20), "both G and A at position 1"),
    ("K", (5, 20), "POSITION:RESIDUES"),
    ("1:K", (9, 3), "length range"),
])
def test_bad_motifs_get_clear_errors(parts, lengths, message):
    from molgen.domains.peptide_motif import PeptideMotif

    with pytest.raises(MolgenError, match=message):
        PeptideMotif.parse(parts, *lengths)


def _peptide_models():
    from molgen.backbones.autoregressive import AutoregressiveTransformer
    from molgen.domains.protein import ProteinDomain

    torch.manual_seed(0)
    domain = ProteinDomain()
    ar = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=40)
    md = MaskedDiffusion.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=40, length_model="sampled")
    md.length_counts[8:30] = 1.0  # untrained: some lengths to draw
    return ar, md


def test_both_backbones_keep_a_motif_and_a_length_range():
    from molgen.domains.peptide_motif import PeptideMotif
    from molgen.workflows.constrained import generate_motif

    motif = PeptideMotif.parse("1:GL,8:KK", 12, 20)
    for model in _peptide_models():
        result = generate_motif(model, motif, 30, seed=2)
        assert all(r["satisfied"] and r["valid"] for r in result.rows), [r["smiles"] for r in result.rows][:3]
        assert all(12 <= len(r["smiles"]) <= 20 and r["smiles"][:2] == "GL" and r["smiles"][7:9] == "KK"
                   for r in result.rows)
        again = generate_motif(model, motif, 30, seed=2)
        assert [r["smiles"] for r in again.rows] == [r["smiles"] for r in result.rows]
    with pytest.raises(MolgenError, match="domain is 'smiles'"):
        generate_motif(MaskedDiffusion.from_domain(_smiles_fixture_domain(), d_model=32, n_layers=1, n_heads=2,
                                                   max_length=40), motif, 2)


def _smiles_fixture_domain():
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    return domain


def test_cli_generate_peptides_with_a_motif(tmp_path):
    out = tmp_path / "motif.csv"
    assert main(["generate", "amp", "--motif", "1:GL,8:KK", "--length", "12", "20", "-n", "6", "-o", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and all(r["sequence"].startswith("GL") and r["satisfied"] == "1" for r in rows)
    assert main(["generate", "amp", "--motif", "1:GL", "--scaffold", "c1ccc(*)cc1", "-n", "2"]) == 2
