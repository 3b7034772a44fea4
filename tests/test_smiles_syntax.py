"""SMILES syntax and valence as a decoding constraint: real SMILES pass,
broken ones cannot be written, fixed-length canvases end complete, and the
backbones sample under it by default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_SMILES
from helpers import draw_uniform
from rdkit import Chem

from molgen.backbones.autoregressive import AutoregressiveTransformer
from molgen.backbones.masked_diffusion import MaskedDiffusion
from molgen.core.errors import MolgenError
from molgen.core.vocab import Vocabulary
from molgen.domains import SmilesDomain
from molgen.domains.smiles import SmilesTokenizer
from molgen.domains.smiles_syntax import SmilesSyntax

TRICKY = [
    "C=1CC1", "C1CC=1", "c1cc2ccc3cccc4ccc(c1)c2c34", "C%10CCCCC%10", "[NH4+].[Cl-]", "O=c1cccc[nH]1",
    "C[N+](C)(C)C", "CS(=O)(=O)C", "[O-][N+](=O)c1ccccc1", "C/C=C/C", "N[C@@H](C)C(=O)O", "OB(O)c1ccccc1",
    "C12(CCCCC1)CCCCC2", "FC(F)(F)Cl",
]
TOKENIZER = SmilesTokenizer()


def _vocab(texts):
    return Vocabulary.from_token_lists(TOKENIZER.tokenize(t) for t in texts)


def _feed(constraint: SmilesSyntax, vocab: Vocabulary, text: str) -> list[bool]:
    """Whether each token of ``text`` (then EOS) was allowed, feeding it as it goes."""
    verdicts = []
    for token in [*vocab.encode(TOKENIZER.tokenize(text)), vocab.eos_id]:
        verdicts.append(bool(constraint.allowed(np.array([0]))[0, token]))
        constraint.advance(np.array([0]), np.array([token]))
    return verdicts


@pytest.mark.parametrize("text", SMALL_SMILES + TRICKY)
def test_real_smiles_are_never_refused(text):
    vocab = _vocab(SMALL_SMILES + TRICKY)
    constraint = SmilesSyntax(vocab)
    constraint.reset(1, 100)
    assert all(_feed(constraint, vocab, text))
    exact = SmilesSyntax(vocab)
    exact.reset_exact(np.array([len(TOKENIZER.tokenize(text))]))
    assert all(_feed(exact, vocab, text)[:-1])  # no EOS on a canvas: its end is placed


@pytest.mark.parametrize("prefix, token", [
    ("C(", ")"),          # empty branch
    ("C1CC", "<eos>"),    # ring left open
    ("CC(C", "<eos>"),    # branch left open
    ("C1", "1"),          # ring closed on the atom that opened it
    ("C1C", "1"),         # ring bond doubling an existing bond
    ("C", "="), ("CO", "("),  # fine ... checked below as allowed
])
def test_broken_continuations_are_refused(prefix, token):
    vocab = _vocab(SMALL_SMILES + TRICKY + ["C=O", "C#N", "CO(C)C"])
    constraint = SmilesSyntax(vocab)
    constraint.reset(1, 100)
    for t in vocab.encode(TOKENIZER.tokenize(prefix)):
        constraint.advance(np.array([0]), np.array([t]))
    allowed = constraint.allowed(np.array([0]))[0, vocab.stoi[token]]
    assert allowed == ((prefix, token) in {("C", "="), ("CO", "(")})


def test_valence_is_counted_with_bond_orders():
    vocab = _vocab(["C=O", "C#N", "FC(F)(F)F", "OCO"])
    ids = vocab.stoi
    constraint = SmilesSyntax(vocab)
    constraint.reset(1, 100)
    for t in vocab.encode(TOKENIZER.tokenize("C(F)(F)(F)")):
        constraint.advance(np.array([0]), np.array([t]))
    row = constraint.allowed(np.array([0]))[0]
    assert row[ids["F"]] and row[ids["("]] and not row[ids["="]]  # one bond left on the carbon
    constraint.reset(1, 100)
    for t in vocab.encode(TOKENIZER.tokenize("O=")):
        constraint.advance(np.array([0]), np.array([t]))
    row = constraint.allowed(np.array([0]))[0]
    assert row[ids["C"]] and row[ids["O"]] and not row[ids["F"]]  # F takes one bond, not two


def _draw(constraint: SmilesSyntax, vocab: Vocabulary, limits: np.ndarray, exact: bool, seed: int) -> list[str]:
    """Uniformly random tokens among those allowed."""
    (constraint.reset_exact if exact else constraint.reset_lengths)(limits)
    return draw_uniform(constraint, vocab, limits, seed)


@pytest.mark.parametrize("exact", [False, True])
def test_random_tokens_under_the_constraint_parse(exact):
    """Even uniformly random choices come out as parsable SMILES (syntax:
    RDKit without sanitization) of the required length; unconstrained, almost
    none would."""
    vocab = _vocab(["CC(=O)N1CCC(CC1)C#N", "OCCN", "CC=CC"])
    limits = np.random.default_rng(0).integers(3, 30, 200)
    texts = _draw(SmilesSyntax(vocab), vocab, limits, exact, seed=1)
    parsed = [Chem.MolFromSmiles(t, sanitize=False) is not None for t in texts]
    assert np.mean(parsed) >= 0.85  # uniform choices walk into the rare dead ends a trained model avoids
    if exact:
        # Rows end on the canvas's last position, or earlier (EOS) where nothing in this small
        # vocabulary (no '.') can extend them, e.g. after a terminal C#N.
        sizes = np.array([len(TOKENIZER.tokenize(t)) for t in texts])
        assert (sizes <= limits).all() and (sizes == limits).mean() >= 0.4


def _smiles_domain():
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    return domain


def test_masked_diffusion_samples_under_the_constraint_by_default():
    torch.manual_seed(0)
    model = MaskedDiffusion.from_domain(_smiles_domain(), d_model=32, n_layers=1, n_heads=2, max_length=48,
                                        length_model="sampled")
    model.length_counts[10:30] = 1.0  # an untrained model with some lengths to draw
    default = model.sample_texts(40, seed=3)
    assert default == model.sample_texts(40, seed=3, semantic=True)
    loose = model.sample_texts(40, seed=3, semantic=False)

    def parsed(texts):
        return np.mean([bool(t) and Chem.MolFromSmiles(t, sanitize=False) is not None for t in texts])

    assert parsed(default) >= 0.8 > 0.3 > parsed(loose)  # an untrained model walks into rare dead ends
    assert default == model.sample_texts(40, seed=3)  # reproducible
    with pytest.raises(MolgenError, match="left to right"):
        model.sample_texts(2, seed=0, semantic=True, order="confidence")
    assert len(model.sample_texts(2, seed=0, order="confidence")) == 2  # default follows the order


def test_autoregressive_samples_under_the_constraint_without_a_grammar():
    torch.manual_seed(0)
    model = AutoregressiveTransformer.from_domain(_smiles_domain(), d_model=32, n_layers=1, n_heads=2, max_length=40)
    default = model.sample_texts(30, seed=2)
    assert default == model.sample_texts(30, seed=2, semantic=True)
    loose = model.sample_texts(30, seed=2, semantic=False)
    ok = [bool(t) and Chem.MolFromSmiles(t, sanitize=False) is not None for t in default]
    assert np.mean(ok) >= 0.9
    assert np.mean([bool(t) and Chem.MolFromSmiles(t, sanitize=False) is not None for t in loose]) < 0.3
