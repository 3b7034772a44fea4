"""Crystal domain: formats, validity rules, text view, graph view, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL_CRYSTALS
from pymatgen.core import Composition, Lattice, Structure

from molgen.core.errors import ParseError
from molgen.domains.crystal import (
    CrystalDomain,
    CrystalTextCodec,
    ValidityRules,
    composition_is_valid,
    from_ase,
    parse_structure,
    structure_is_valid,
    structure_to_graph,
    to_ase,
    to_cif,
    to_poscar,
)


@pytest.fixture
def domain():
    return CrystalDomain()


@pytest.fixture
def perovskite(domain):
    return domain.parse(SMALL_CRYSTALS[1])


def test_cif_poscar_ase_round_trips(domain, perovskite):
    assert domain.same(parse_structure(to_cif(perovskite)), perovskite)
    assert domain.same(parse_structure(to_poscar(perovskite), fmt="poscar"), perovskite)
    assert domain.same(from_ase(to_ase(perovskite)), perovskite)
    # the compact text of a parsed CIF gives back the same crystal
    assert domain.same(domain.parse(domain.format(parse_structure(to_cif(perovskite)))), perovskite)


def test_every_fixture_is_valid_and_round_trips(domain):
    for text in SMALL_CRYSTALS:
        s = domain.parse(text)
        assert domain.is_valid(s), text
        assert domain.format(s) == text  # canonical site order and precision


def test_structural_validity_rules():
    lattice = Lattice.cubic(4.0)
    assert structure_is_valid(Structure(lattice, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    overlapping = Structure(lattice, ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])  # 0.2 A apart
    assert not structure_is_valid(overlapping)
    # the same pair across the periodic boundary: 0.2 A apart too
    assert not structure_is_valid(Structure(lattice, ["Na", "Cl"], [[0.01, 0, 0], [0.96, 0, 0]]))
    flat = Structure(Lattice([[4, 0, 0], [0, 4, 0], [0, 0, 0.001]]), ["Na"], [[0, 0, 0]])
    assert not structure_is_valid(flat)


def test_composition_rules_follow_cdvae():
    assert composition_is_valid(Composition("NaCl"))
    assert composition_is_valid(Composition("SrTiO3"))
    assert not composition_is_valid(Composition("NaCl2"))  # no neutral oxidation states
    assert not composition_is_valid(Composition("Na2Cl3"))
    assert composition_is_valid(Composition("Si2"))  # single element
    assert composition_is_valid(Composition("FeNi3"))  # all-metal alloy
    strict = ValidityRules(single_element_valid=False, alloys_valid=False)
    assert not composition_is_valid(Composition("Si2"), strict)
    assert not composition_is_valid(Composition("FeNi3"), strict)


def test_text_decoder_never_raises_on_random_tokens(domain):
    rng = np.random.default_rng(0)
    vocab = domain.tokenizer.vocab
    for _ in range(300):
        ids = rng.integers(0, len(vocab), size=rng.integers(0, 60)).tolist()
        text = domain.tokenizer.decode(ids)
        assert CrystalTextCodec.decode(text) is None or isinstance(CrystalTextCodec.decode(text), Structure)
        assert domain.try_parse(text) is None or domain.is_valid(domain.try_parse(text))


def test_tokenizer_uses_single_digit_and_element_tokens(domain):
    tokens = domain.tokenizer.tokenize(SMALL_CRYSTALS[0])
    assert tokens[:4] == ["4", ".", "0", " "]
    assert "Na" in tokens and "Cl" in tokens
    assert all(len(t) <= 2 for t in tokens)
    # every element is in the fixed vocabulary, even ones no data set holds
    assert "Og" in domain.tokenizer.vocab and "Pu" in domain.tokenizer.vocab
    with pytest.raises(ParseError):
        domain.tokenizer.tokenize("4.0 4.0 4.0\n90 90 90\nNa 0,5 0 0")


def test_augmentation_is_the_same_crystal(domain):
    rng = np.random.default_rng(1)
    original = domain.parse(SMALL_CRYSTALS[5])
    texts = {domain.augment(SMALL_CRYSTALS[5], rng) for _ in range(5)}
    assert len(texts) > 1
    assert all(domain.same(domain.parse(t), original) for t in texts)


def test_graph_view_has_periodic_neighbours(domain):
    rock_salt = Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, [
        [0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
        [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5],
    ])
    data = structure_to_graph(rock_salt, cutoff=3.0, max_neighbors=None)
    assert data.num_nodes == 8
    assert data.edge_index.shape == (2, 8 * 6)  # six nearest neighbours at 2.82 A each
    assert np.allclose(data.edge_distance.numpy(), 2.82, atol=1e-3)
    assert data.edge_image.abs().max() == 1  # some neighbours lie in the next cell
    numbers = data.atomic_numbers[data.edge_index]
    assert (numbers[0] != numbers[1]).all()  # Na's neighbours are Cl and vice versa
    assert domain.same(domain.from_graph(data), rock_salt)


def test_bad_input_gives_clear_errors_or_invalid(domain):
    with pytest.raises(ParseError, match="empty"):
        domain.parse("   ")
    partial = """data_x
_cell_length_a 4
_cell_length_b 4
_cell_length_c 4
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Fe1 Fe 0 0 0 0.5
Co1 Co 0 0 0 0.5
"""
    with pytest.raises(ParseError, match="partial occupancy"):
        domain.parse(partial)
    no_atoms = partial.split("loop_")[0]
    with pytest.raises(ParseError):
        domain.parse(no_atoms)
    with pytest.raises(ParseError):
        domain.parse("data_broken\n_cell_length_a abc\n")
    assert domain.try_parse("3.9 3.9\n90 90 90\nNa 0 0 0") is None
    overlapping = domain.parse("4.0 4.0 4.0\n90 90 90\nNa 0.00 0.00 0.00\nCl 0.01 0.00 0.00")
    assert not domain.is_valid(overlapping)
    big = Structure(Lattice.cubic(40.0), ["Si"] * 500, np.random.default_rng(0).random((500, 3)))
    assert isinstance(domain.is_valid(big), bool)  # judged, not crashed


def test_domain_config_round_trip(domain):
    rebuilt = CrystalDomain.from_config(domain.to_config())
    assert rebuilt.codec.to_config() == domain.codec.to_config()
    assert rebuilt.rules == domain.rules and rebuilt.matcher == domain.matcher


def test_a_collapsed_cell_is_refused_by_the_matcher_instead_of_hanging_it():
    from pymatgen.core import Lattice, Structure

    from molgen.core.errors import DataError
    from molgen.domains.crystal.matching import StructureIndex

    index = StructureIndex()
    index.add(Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    # Angles that make the cell nearly flat: pymatgen's Niggli reduction of it ran for over ten minutes.
    flat = Structure(Lattice.from_parameters(6.6, 6.6, 12.4, 14, 131, 117), ["Na", "Cl"] * 3,
                     [[0, 0, 0], [0.5, 0.5, 0.5]] * 3)
    with pytest.raises(DataError, match="degenerate cell"):
        index.add(flat)
