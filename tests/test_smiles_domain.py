"""domains/smiles: tokenizer, vocabulary, parsing, validity, canonical keys,
randomized SMILES."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_SMILES

from molgen.core.errors import ParseError, UnknownTokenError
from molgen.core.vocab import Vocabulary, pad_batch
from molgen.domains.smiles import SmilesDomain, SmilesTokenizer


@pytest.mark.parametrize(
    "smiles, tokens",
    [
        ("CCO", ["C", "C", "O"]),
        ("BrCCCl", ["Br", "C", "C", "Cl"]),
        ("c1cc[nH]c1", ["c", "1", "c", "c", "[nH]", "c", "1"]),
        ("C[C@@H](N)C(=O)[O-]", ["C", "[C@@H]", "(", "N", ")", "C", "(", "=", "O", ")", "[O-]"]),
        ("C%10CC%10", ["C", "%10", "C", "C", "%10"]),
        ("N#C/C=C\\C", ["N", "#", "C", "/", "C", "=", "C", "\\", "C"]),
        ("[Na+].[Cl-]", ["[Na+]", ".", "[Cl-]"]),
    ],
)
def test_tokenizer_splits_atoms_and_round_trips(smiles, tokens):
    tokenizer = SmilesTokenizer()
    assert tokenizer.tokenize(smiles) == tokens
    assert tokenizer.detokenize(tokens) == smiles


def test_tokenizer_rejects_untokenizable_text():
    with pytest.raises(ParseError, match=r"unexpected 'X' at position 2"):
        SmilesTokenizer().tokenize("CCX")


def test_vocabulary_encode_decode_and_unknown_tokens():
    tokenizer = SmilesTokenizer().fit(SMALL_SMILES)
    vocab = tokenizer.vocab
    assert vocab.itos[:5] == ["<pad>", "<bos>", "<eos>", "<mask>", "<unk>"]
    ids = tokenizer.encode("CC(=O)O")
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert tokenizer.decode(ids) == "CC(=O)O"
    with pytest.raises(UnknownTokenError, match=r"'\[Se\]'"):
        tokenizer.encode("C[Se]C")
    mapped = tokenizer.encode("C[Se]C", on_unknown="unk")
    assert vocab.unk_id in mapped
    restored = SmilesTokenizer().load_config(tokenizer.to_config())
    assert restored.vocab.itos == vocab.itos


def test_pad_batch_mask():
    batch = pad_batch([[1, 5, 2], [1, 2]])
    assert batch["tokens"].tolist() == [[1, 5, 2], [1, 2, 0]]
    assert batch["mask"].tolist() == [[True, True, True], [True, True, False]]


def test_vocabulary_frequency_order():
    vocab = Vocabulary.from_token_lists([["C", "C", "O"], ["C", "N"]])
    assert vocab.to_list() == ["C", "N", "O"]


def test_parse_validity_and_canonical_key():
    domain = SmilesDomain()
    assert domain.key(domain.parse("OCC")) == domain.key(domain.parse("C(O)C")) == "CCO"
    assert domain.is_valid(domain.parse("c1ccccc1"))
    for bad, message in [("", "empty"), ("C1CC", "unparsable"), ("c1cccc1", "invalid|unparsable"), ("C(C)(C)(C)(C)C", "invalid")]:
        with pytest.raises(ParseError, match=message):
            domain.parse(bad)
        assert domain.try_parse(bad) is None
    assert not domain.is_valid(None)


def test_randomized_smiles_are_seeded_and_equivalent():
    domain = SmilesDomain()
    smiles = "CC(C)Cc1ccc(cc1)C(C)C(=O)O"
    a = [domain.augment(smiles, np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    variants = {domain.augment(smiles, np.random.default_rng(s)) for s in range(10)}
    assert len(variants) > 3
    assert {domain.canonical_text(v) for v in variants} == {domain.canonical_text(smiles)}
