"""Site exclusion while decoding crystal text: the allowed digits are exactly
those that keep a free grid point reachable, and a decoder that follows the
grammar and the exclusion never puts two atoms closer than the validity
distance."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from molgen.backbones.autoregressive import AutoregressiveTransformer
from molgen.core.errors import MolgenError
from molgen.domains import SmilesDomain
from molgen.domains.crystal import CrystalDomain, structure_is_valid
from molgen.domains.crystal.exclusion import SiteExclusion
from molgen.domains.crystal.text import CrystalTextCodec
from molgen.nn.decoding import decode_batch

VOCAB = CrystalDomain().tokenizer.vocab


def _feed(constraint: SiteExclusion, text: str, row: int = 0) -> None:
    tokens = CrystalDomain().tokenizer.tokenize(text)
    for token in tokens:
        constraint.advance(np.array([row]), np.array([VOCAB.stoi[token]]))


def _allowed_digits(constraint: SiteExclusion, row: int = 0) -> set[int]:
    mask = constraint.allowed(np.array([row]))
    if mask is None:
        return set(range(10))
    return {d for d in range(10) if mask[0, VOCAB.stoi[str(d)]]}


def test_na_cl_example_forbids_exactly_the_digits_inside_the_sphere():
    exclusion = SiteExclusion(VOCAB, coord_decimals=2, min_distance=0.5)
    exclusion.reset(1, 200)
    _feed(exclusion, "4.0 4.0 4.0\n90 90 90\nNa 0.50 0.50 0.50\nCl 0.50 0.50 0.")
    # z = 0.4x and 0.5x each hold only points within 0.5 A (0.1 = 0.4 A) of Na.
    assert _allowed_digits(exclusion) == {0, 1, 2, 3, 6, 7, 8, 9}
    _feed(exclusion, "6")
    assert _allowed_digits(exclusion) == {3, 4, 5, 6, 7, 8, 9}  # 0.63 is 0.52 A away, 0.62 0.48 A
    # Away from Na in x, nothing is restricted.
    other = SiteExclusion(VOCAB)
    other.reset(1, 200)
    _feed(other, "4.0 4.0 4.0\n90 90 90\nNa 0.50 0.50 0.50\nCl 0.00 0.50 0.")
    assert _allowed_digits(other) == set(range(10))


def _brute_force_free(lattice: Lattice, sites: list[tuple[float, float, float]], grid: int, min_distance: float) -> np.ndarray:
    points = np.array(list(itertools.product(range(grid), repeat=3))) / grid
    images = np.array(list(itertools.product((-2, -1, 0, 1, 2), repeat=3)))
    free = np.ones(len(points), dtype=bool)
    for site in sites:
        delta = points[:, None, :] - np.asarray(site)[None, None, :] + images[None, :, :]
        distances = np.linalg.norm(delta @ lattice.matrix, axis=-1).min(axis=1)
        free &= distances >= min_distance
    return free.reshape(grid, grid, grid)


@pytest.mark.parametrize("parameters", [(2.1, 2.4, 2.2, 80, 95, 105), (0.6, 2.4, 2.2, 90, 90, 75)])
def test_allowed_digits_match_a_brute_force_search_at_every_prefix(parameters):
    """One decimal (a 10^3 grid) on small triclinic cells, where each sphere
    covers many grid points (in the thin cell, more than a period along a):
    for every prefix of the next site, the allowed digits are exactly those
    with a free point below them."""
    sites = [(0.1, 0.2, 0.3), (0.6, 0.5, 0.9)]
    header = "{} {} {}\n{} {} {}\n".format(*parameters)
    lattice = Lattice.from_parameters(*parameters)
    free = _brute_force_free(lattice, sites, 10, 0.5)
    assert 0 < free.sum() < free.size
    text = header + "".join(f"H {x:.1f} {y:.1f} {z:.1f}\n" for x, y, z in sites) + "H 0."
    checked = 0
    for x, y in itertools.product(range(10), repeat=2):
        exclusion = SiteExclusion(VOCAB, coord_decimals=1, min_distance=0.5)
        exclusion.reset(1, 500)
        _feed(exclusion, text)
        expected_x = {d for d in range(10) if free[d].any()}
        assert _allowed_digits(exclusion) == expected_x
        if x not in expected_x:
            continue
        _feed(exclusion, f"{x} 0.")
        assert _allowed_digits(exclusion) == {d for d in range(10) if free[x, d].any()}
        if not free[x, y].any():
            continue
        _feed(exclusion, f"{y} 0.")
        assert _allowed_digits(exclusion) == {d for d in range(10) if free[x, y, d]}
        checked += 1
    assert checked > 20


def test_decoder_with_the_exclusion_never_overlaps_atoms():
    """A decoder that wants every site at 0.55 0.55 0.55 (in a 5.5 A
    rhombohedral cell) stacks atoms with the grammar alone; with the exclusion
    every finished crystal is structurally valid and as long as before."""
    domain = CrystalDomain()
    grammar = domain.token_grammar()
    table = grammar.compile(VOCAB)

    def wants_one_spot(tokens, rows):
        logits = torch.zeros(rows.numel(), len(VOCAB))
        for digit in "0123456789":
            logits[:, VOCAB.stoi[digit]] = 2.0
        logits[:, VOCAB.stoi["5"]] = 6.0
        logits[:, VOCAB.stoi["."]] = 8.0  # lengths "5.5" under the greedy lattice fields
        logits[:, VOCAB.stoi["\n"]] = 4.0
        return logits

    greedy_lattice = grammar.field_values({"length": 0.0, "angle": 0.0}, default=1.0)
    common = dict(bos_id=VOCAB.bos_id, eos_id=VOCAB.eos_id, pad_id=VOCAB.pad_id, banned=torch.tensor([VOCAB.pad_id]),
                  device=torch.device("cpu"), grammar=table, state_temperature=greedy_lattice)

    def decode(constraint):
        ids = decode_batch(wants_one_spot, 32, 120, generator=torch.Generator().manual_seed(0), constraint=constraint, **common)
        return [CrystalTextCodec.decode(domain.tokenizer.decode(seq)) for seq in ids]

    plain = decode(None)  # stacked atoms, and texts cut off at the length limit
    excluded = decode(domain.decoding_constraint())
    assert {tuple(np.round(s.lattice.parameters, 6)) for s in excluded if s is not None} == {(5.5, 5.5, 5.5, 55.0, 55.0, 55.0)}
    assert sum(s is None or not structure_is_valid(s) for s in plain) > 16
    assert all(s is not None and structure_is_valid(s) for s in excluded)  # all parse (the budget is kept) and are valid
    assert np.mean([len(s) for s in excluded]) > 3


def test_token_budget_ends_the_text_instead_of_cutting_a_site():
    domain = CrystalDomain()
    grammar = domain.token_grammar().compile(VOCAB)

    def never_stops(tokens, rows):
        logits = torch.zeros(rows.numel(), len(VOCAB))
        logits[:, VOCAB.stoi["\n"]] = 10.0
        logits[:, VOCAB.eos_id] = -10.0
        return logits

    common = dict(bos_id=VOCAB.bos_id, eos_id=VOCAB.eos_id, pad_id=VOCAB.pad_id, banned=torch.tensor([VOCAB.pad_id]),
                  device=torch.device("cpu"), grammar=grammar)
    ids = decode_batch(never_stops, 16, 60, generator=torch.Generator().manual_seed(1), constraint=domain.decoding_constraint(),
                       **common)
    for seq in ids:
        assert len(seq) < 59  # ended with EOS
        assert CrystalTextCodec.decode(domain.tokenizer.decode(seq)) is not None


def test_backbone_option_and_its_refusals():
    torch.manual_seed(0)
    crystal = AutoregressiveTransformer.from_domain(CrystalDomain(), d_model=32, n_layers=1, n_heads=2, max_length=90)
    ids = crystal.sample_ids(8, seed=2, constrained=True, semantic=True)
    assert ids == crystal.sample_ids(8, seed=2, constrained=True, semantic=True)  # reproducible
    assert "semantic" in crystal.sampling_options()
    with pytest.raises(MolgenError, match="constrained=True"):
        crystal.sample_ids(2, seed=0, constrained=False, semantic=True)
    smiles_domain = SmilesDomain()
    smiles_domain.tokenizer.fit(["CCO", "c1ccccc1"])
    smiles = AutoregressiveTransformer.from_domain(smiles_domain, d_model=32, n_layers=1, n_heads=2, max_length=40)
    with pytest.raises(MolgenError, match="no token grammar"):
        smiles.sample_ids(2, seed=0, constrained=True, semantic=True)
    with pytest.raises(MolgenError, match="2 coordinate decimals"):
        SiteExclusion(VOCAB, coord_decimals=3)


def test_a_structure_on_the_grid_is_free_exactly_when_valid():
    """Consistency with the validity rule: sites written by the constrained
    path pass ``structure_is_valid``, and the closest allowed neighbour is
    closer than one grid step beyond the threshold."""
    exclusion = SiteExclusion(VOCAB)
    exclusion.reset(1, 200)
    _feed(exclusion, "4.0 4.0 4.0\n90 90 90\nNa 0.50 0.50 0.50\nCl 0.50 0.50 0.6")
    assert min(_allowed_digits(exclusion)) == 3
    structure = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.63]])
    assert structure_is_valid(structure)
    assert not structure_is_valid(Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.62]]))


def test_reinvent_proposes_under_the_exclusion_and_refuses_it_without_the_grammar():
    from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

    torch.manual_seed(0)
    prior = AutoregressiveTransformer.from_domain(CrystalDomain(), d_model=32, n_layers=1, n_heads=2, max_length=90)
    strategy = PriorRegularizedRL(prior, ReinforceConfig(constrained=True, semantic=True, replay_batch=2), seed=0)
    texts = strategy.propose(8)
    assert texts
    stats = strategy.update(texts, [None] * len(texts), [0.5] * len(texts))
    assert np.isfinite(stats["loss"])
    with pytest.raises(ValueError, match="needs constrained"):
        ReinforceConfig(semantic=True)
