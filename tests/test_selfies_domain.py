"""SELFIES domain: round trips, SMILES input, bad input, every token sequence
decoding, augmentation, data sets and a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_SMILES

from molgen.core.errors import ParseError
from molgen.domains import SelfiesDomain, SmilesDomain


@pytest.fixture()
def domain():
    return SelfiesDomain()


def test_round_trip_keeps_the_molecule(domain):
    smiles = SmilesDomain()
    for text in SMALL_SMILES:
        mol = smiles.parse(text)
        selfies = domain.format(mol)
        assert selfies.startswith("[")
        assert domain.key(domain.parse(selfies)) == smiles.key(mol)
        assert domain.export(domain.parse(selfies)) == smiles.key(mol)  # files hold SMILES
        assert "".join(domain.tokenizer.tokenize(selfies)) == selfies


def test_smiles_is_read_and_written_back_as_selfies(domain):
    mol = domain.parse("c1ccccc1C(=O)[O-]")
    assert domain.key(mol) == "O=C([O-])c1ccccc1"
    assert domain.model_text(mol, "c1ccccc1C(=O)[O-]") == domain.format(mol)
    # Non-canonical: the original atom order is encoded, a SELFIES original kept.
    assert domain.key(domain.parse(domain.model_text(mol, "[O-]C(=O)c1ccccc1", canonical=False))) == domain.key(mol)
    assert domain.model_text(mol, "[C][O]", canonical=False) == "[C][O]"


def test_any_symbol_sequence_decodes_to_a_molecule_or_a_clear_error(domain):
    domain.tokenizer.fit([domain.format(domain.parse(s)) for s in SMALL_SMILES])
    symbols = [t for t in domain.tokenizer.vocab.itos if t.startswith("[") and not t.startswith("<")]
    rng = np.random.default_rng(0)
    decoded = 0
    for _ in range(200):
        text = "".join(rng.choice(symbols, size=int(rng.integers(1, 30))))
        try:
            mol = domain.parse(text)
        except ParseError as exc:  # only strings of branch/ring symbols decode to nothing
            assert "no atoms" in str(exc)
            continue
        assert domain.is_valid(mol)
        decoded += 1
    assert decoded > 150


@pytest.mark.parametrize("bad, message", [
    ("", "empty"), ("   ", "empty"), ("[Xx][C]", "invalid SELFIES"), ("[Branch1][Ring1]", "no atoms"),
    ("C1CC", "unparsable SMILES"), ("c1ccccc1X", "unparsable SMILES"),
])
def test_bad_input_is_a_clear_parse_error(domain, bad, message):
    with pytest.raises(ParseError, match=message):
        domain.parse(bad)
    assert domain.try_parse(bad) is None


def test_tokenizer_refuses_text_that_is_not_selfies(domain):
    with pytest.raises(ParseError, match="not a SELFIES string"):
        domain.tokenizer.tokenize("CCO")


def test_augmentation_is_seeded_and_keeps_the_molecule(domain):
    text = domain.format(domain.parse("CC(=O)Oc1ccccc1C(=O)O"))
    a = [domain.augment(text, np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    variants = {domain.augment(text, np.random.default_rng(seed)) for seed in range(10)}
    assert len(variants) > 1
    assert {domain.key(domain.parse(v)) for v in variants} == {domain.key(domain.parse(text))}


def test_smiles_data_sets_load_as_selfies(domain, tmp_path):
    from molgen.datasets import load_texts

    path = tmp_path / "mols.smi"
    path.write_text("\n".join([*SMALL_SMILES[:5], "not_a_smiles"]) + "\n")
    loaded = load_texts(str(path), domain, on_invalid="skip")
    assert len(loaded.texts) == 5 and len(loaded.skipped) == 1
    assert all(t.startswith("[") for t in loaded.texts)


def test_a_tiny_autoregressive_model_learns_selfies(domain, tmp_path):
    import torch

    from molgen.backbones import AutoregressiveTransformer
    from molgen.train import TokenBatches, TrainConfig, Trainer

    texts = [domain.format(domain.parse(s)) for s in SMALL_SMILES]
    domain.tokenizer.fit(texts)
    torch.manual_seed(0)
    model = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=2, n_heads=2, max_length=64)
    batch = model.make_batch(texts[:8])
    with torch.no_grad():
        before = float(model.log_likelihood(batch).mean())
    data = TokenBatches(texts * 4, domain.tokenizer, batch_size=16, seed=0)
    Trainer(model, data, None, TrainConfig(max_steps=150, lr=3e-3, warmup_steps=10, progress=False), tmp_path).fit()
    with torch.no_grad():
        after = float(model.log_likelihood(batch).mean())
    assert after > before + 20  # nats per molecule
    samples = model.sample(50, seed=0)
    assert sum(m is not None for m in samples) >= 45  # SELFIES: almost every sample is a molecule
