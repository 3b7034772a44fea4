"""Token grammars and constrained decoding: the crystal text automaton accepts
what the codec writes and nothing malformed, and a decoder that follows it
only finishes texts that parse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_CRYSTALS, SMALL_SMILES

from molgen.backbones.autoregressive import AutoregressiveTransformer
from molgen.core.errors import MolgenError, ParseError
from molgen.core.grammar import TokenGrammar
from molgen.core.vocab import Vocabulary
from molgen.domains.crystal import CrystalDomain
from molgen.domains.crystal.text import CrystalTextCodec, parse_crystal_text
from molgen.domains import SmilesDomain
from molgen.nn.decoding import decode_batch


def _ab_grammar() -> TokenGrammar:
    """``a b*`` then end."""
    g = TokenGrammar()
    tail = g.new_state()
    g.add(g.start, ["a"], tail)
    g.add(tail, ["b"], tail)
    g.accept(tail)
    return g


def test_grammar_accepts_its_language_and_compiles_to_a_table():
    g = _ab_grammar()
    assert g.accepts(["a"]) and g.accepts(["a", "b", "b"])
    assert not g.accepts([]) and not g.accepts(["b"]) and not g.accepts(["a", "a"])
    vocab = Vocabulary(["a", "b", "c"])
    table = g.compile(vocab)
    a, b, c = (vocab.stoi[t] for t in "abc")
    assert table.shape == (2, len(vocab))
    assert table[0, a] == 1 and table[0, b] == -1 and table[0, vocab.eos_id] == -1
    assert table[1, b] == 1 and table[1, vocab.eos_id] == 1 and table[1, c] == -1
    with pytest.raises(ValueError, match="two states"):
        g.add(g.start, ["a"], g.new_state())
    with pytest.raises(ValueError, match="allow no token"):
        g.compile(Vocabulary(["b"]))  # the start state needs "a"


def test_crystal_grammar_accepts_every_encoding_and_rejects_malformed_text():
    domain = CrystalDomain()
    grammar = domain.token_grammar()
    rng = np.random.default_rng(0)
    for text in SMALL_CRYSTALS:
        structure = domain.parse(text)
        for encoded in (domain.format(structure), domain.augment(domain.format(structure), rng)):
            assert grammar.accepts(domain.tokenizer.tokenize(encoded)), encoded
    good = SMALL_CRYSTALS[1]
    for bad in (
        good.replace("Ti 0.50", "8 0.50"),  # digit where an element belongs
        good.replace("Sr 0.00 0.00 0.00", "Sr 0.00 0.00"),  # missing coordinate
        good.replace("O 0.00 0.50 0.50", "O 0.0O 0.50 0.50"),  # element inside a number
        good.replace("Ti 0.50 0.50 0.50", "Ti 0.500 0.50 0.50"),  # wrong precision
        good + "\n",  # a site line must follow a newline
        "3.9 3.9 3.9\n90 90 90",  # no site
        good.replace("3.9 3.9 3.9", "0.0 3.9 3.9"),  # zero length
        good.replace("90 90 90", "90 180 90"),  # flat angle
        good.replace("3.9 3.9 3.9", "03.9 3.9 3.9"),  # leading zero
    ):
        assert not grammar.accepts(domain.tokenizer.tokenize(bad)), bad
    for fine in ("0.4 3.9 3.9", "10.0 3.9 3.9", "120.5 3.9 3.9"):
        assert grammar.accepts(domain.tokenizer.tokenize(good.replace("3.9 3.9 3.9", fine)))
    for angles in ("1 179 100", "18 17 9", "60 60 120"):
        assert grammar.accepts(domain.tokenizer.tokenize(good.replace("90 90 90", angles)))
    three = CrystalTextCodec(coord_decimals=3)
    text = three.encode(domain.parse(good))
    assert three.grammar().accepts(domain.tokenizer.tokenize(text))
    assert not grammar.accepts(domain.tokenizer.tokenize(text))
    fine = CrystalTextCodec(length_decimals=2, angle_decimals=1).grammar()
    site = "\nNa 0.00 0.00 0.00"
    assert fine.accepts(domain.tokenizer.tokenize("0.05 4.00 4.00\n90.0 90.0 179.9" + site))
    assert not fine.accepts(domain.tokenizer.tokenize("0.00 4.00 4.00\n90.0 90.0 90.0" + site))
    assert not fine.accepts(domain.tokenizer.tokenize("4.00 4.00 4.00\n90 90 90" + site))


def test_decoding_under_the_grammar_only_finishes_parsable_crystals():
    domain = CrystalDomain()
    vocab = domain.tokenizer.vocab
    grammar = domain.token_grammar()
    table = grammar.compile(vocab)

    def eager_to_stop(tokens, rows):
        # Flat over all tokens, but EOS is ~3000x likelier: unconstrained, every
        # sequence ends at once; constrained, as soon as the grammar allows.
        logits = torch.zeros(rows.numel(), len(vocab))
        logits[:, vocab.eos_id] = 8.0
        return logits

    common = dict(bos_id=vocab.bos_id, eos_id=vocab.eos_id, pad_id=vocab.pad_id, banned=torch.tensor([vocab.pad_id]),
                  device=torch.device("cpu"))
    free = decode_batch(eager_to_stop, 64, 80, generator=torch.Generator().manual_seed(0), **common)
    assert sum(len(ids) == 0 for ids in free) > 50
    constrained = decode_batch(eager_to_stop, 64, 80, generator=torch.Generator().manual_seed(0), grammar=table, **common)
    parsed = 0
    for ids in constrained:
        text = domain.tokenizer.decode(ids)
        assert len(ids) < 79, "every sequence should end once a site line is complete"
        assert grammar.accepts(domain.tokenizer.tokenize(text))
        try:
            parsed += len(parse_crystal_text(text)) >= 1
        except ParseError as exc:  # random angles may not close a cell: the one case the grammar leaves open
            assert "give no cell" in str(exc)
    assert parsed >= 32


def test_constrained_sampling_through_the_backbone_and_its_refusal_without_a_grammar():
    torch.manual_seed(0)
    crystal = AutoregressiveTransformer.from_domain(CrystalDomain(), d_model=32, n_layers=1, n_heads=2, max_length=90)
    ids = crystal.sample_ids(16, seed=3, constrained=True)
    tokenizer = crystal.domain.tokenizer
    grammar = crystal.domain.token_grammar()
    finished = [seq for seq in ids if len(seq) < 89]
    assert all(grammar.accepts(tokenizer.tokenize(tokenizer.decode(seq))) for seq in finished)
    # Same seed, same draws: constrained sampling is reproducible.
    assert crystal.sample_ids(16, seed=3, constrained=True) == ids
    smiles_domain = SmilesDomain()
    smiles_domain.tokenizer.fit(SMALL_SMILES)
    smiles = AutoregressiveTransformer.from_domain(smiles_domain, d_model=32, n_layers=1, n_heads=2, max_length=40)
    with pytest.raises(MolgenError, match="no token grammar"):
        smiles.sample_ids(2, seed=0, constrained=True)


def test_field_temperature_sharpens_only_its_field():
    domain = CrystalDomain()
    vocab = domain.tokenizer.vocab
    grammar = domain.token_grammar()
    assert grammar.fields == {"length", "angle", "element", "coordinate", "end"}
    table = grammar.compile(vocab)

    def prefers_five(tokens, rows):
        logits = torch.zeros(rows.numel(), len(vocab))
        logits[:, vocab.stoi["5"]] = 1.0  # a mild preference everywhere
        logits[:, vocab.eos_id] = 8.0
        return logits

    common = dict(bos_id=vocab.bos_id, eos_id=vocab.eos_id, pad_id=vocab.pad_id, banned=torch.tensor([vocab.pad_id]),
                  device=torch.device("cpu"), grammar=table)
    sharp = grammar.field_values({"coordinate": 0.0}, default=1.0)
    ids = decode_batch(prefers_five, 32, 80, generator=torch.Generator().manual_seed(0), state_temperature=sharp, **common)
    texts = [domain.tokenizer.decode(seq) for seq in ids]
    coordinates = {c for t in texts for line in t.splitlines()[2:] for c in line.split()[1:]}
    assert coordinates == {"0.55"}  # the arg-max in the coordinate field
    lengths = {t.splitlines()[0] for t in texts}
    assert len(lengths) > 16  # the lattice is still sampled at temperature 1
    with pytest.raises(ValueError, match="unknown grammar fields"):
        grammar.field_values({"occupancy": 0.5}, default=1.0)


def test_field_temperature_is_refused_without_the_grammar_or_with_an_unknown_field():
    torch.manual_seed(0)
    crystal = AutoregressiveTransformer.from_domain(CrystalDomain(), d_model=32, n_layers=1, n_heads=2, max_length=90)
    with pytest.raises(MolgenError, match="constrained=True"):
        crystal.sample_ids(2, seed=0, constrained=False, field_temperature={"coordinate": 0.5})
    with pytest.raises(MolgenError, match="unknown grammar fields"):
        crystal.sample_ids(2, seed=0, constrained=True, field_temperature={"occupancy": 0.5})
    with pytest.raises(MolgenError, match=">= 0"):
        crystal.sample_ids(2, seed=0, constrained=True, field_temperature={"coordinate": -1.0})
    assert len(crystal.sample_ids(4, seed=0, constrained=True, field_temperature={"coordinate": 0.5})) == 4


def test_constrained_likelihood_renormalises_and_drives_a_constrained_reinvent_step():
    from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

    torch.manual_seed(0)
    prior = AutoregressiveTransformer.from_domain(CrystalDomain(), d_model=32, n_layers=1, n_heads=2, max_length=90)
    prior.eval()
    inside = SMALL_CRYSTALS[:3]
    outside = [SMALL_CRYSTALS[0] + "\n"]  # a trailing newline the grammar refuses
    batch = prior.make_batch(inside + outside)
    with torch.no_grad():
        free = prior.log_likelihood(batch)
        constrained = prior.log_likelihood(batch, constrained=True)
    assert torch.isfinite(constrained).all()
    # Renormalising over the allowed tokens can only raise each step's probability.
    assert (constrained[:3] > free[:3] + 1.0).all()
    strategy = PriorRegularizedRL(prior, ReinforceConfig(constrained=True, replay_batch=2), seed=0)
    texts = strategy.propose(8)
    finished = [t for t in texts if len(prior.domain.tokenizer.tokenize(t)) < 88]
    assert finished and all(grammar_accepts(prior, t) for t in finished)
    stats = strategy.update(texts, [None] * len(texts), [0.5] * len(texts))
    assert np.isfinite(stats["loss"])


def grammar_accepts(model, text: str) -> bool:
    return model.domain.token_grammar().accepts(model.domain.tokenizer.tokenize(text))
