"""Crystal structure prediction from a composition: the composition parser,
the site-fixed grammar, both backbones that take a composition, the CSP
metrics, the substitution baseline and the CLI."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import fitted_domain
from pymatgen.core import Lattice, Structure

from molgen.backbones.autoregressive import AutoregressiveTransformer
from molgen.backbones.graph_diffusion import GraphDiffusion
from molgen.backbones.masked_diffusion import MaskedDiffusion
from molgen.cli.main import main
from molgen.core.errors import MolgenError
from molgen.domains.crystal import CrystalDomain
from molgen.domains.crystal.composition import composition_sites
from molgen.domains.crystal.substitution import SubstitutionTemplates
from molgen.metrics.structure_prediction import csp_report, match_rms
from molgen.nn.decoding import decode_batch
from molgen.workflows.structure_prediction import predict_structures, summarize_structures, write_structures


def _species(structure: Structure) -> Counter:
    return Counter(site.specie.symbol for site in structure)


def test_composition_sites_orders_by_atomic_number_and_repeats_formula_units():
    assert composition_sites("SrTiO3") == ["O", "O", "O", "Ti", "Sr"]
    assert Counter(composition_sites("TiO2", formula_units=2)) == Counter({"O": 4, "Ti": 2})


@pytest.mark.parametrize("formula, units, message", [
    ("", 1, "empty"),
    ("Sr(TiO3", 1, "cannot read"),
    ("XxO2", 1, "unknown element"),
    ("Fe0.5O", 1, "whole"),
    ("NaCl", 0, "formula units"),
    ("NaCl", 600, "sites"),
])
def test_bad_compositions_get_clear_errors(formula, units, message):
    with pytest.raises(MolgenError, match=message):
        composition_sites(formula, units)


def test_site_fixed_grammar_accepts_exactly_that_composition():
    domain = CrystalDomain()
    grammar = domain.codec.grammar(["O", "Ti", "Sr"])
    head = "3.9 3.9 3.9\n90 90 90\n"
    accepts = lambda text: grammar.accepts(domain.tokenizer.tokenize(text))  # noqa: E731
    assert accepts(head + "O 0.00 0.50 0.50\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00")
    assert not accepts(head + "O 0.00 0.50 0.50\nTi 0.50 0.50 0.50")  # a site short
    assert not accepts(head + "O 0.00 0.50 0.50\nSr 0.50 0.50 0.50\nTi 0.00 0.00 0.00")  # wrong order
    assert not accepts(head + "O 0.00 0.50 0.50\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00\nO 0.10 0.10 0.10")
    with pytest.raises(ValueError, match="element symbols"):
        domain.codec.grammar(["O", "Qq"])
    with pytest.raises(ValueError, match="element symbols"):
        domain.codec.grammar([])


def test_decoding_under_the_site_fixed_grammar_always_writes_the_composition():
    """Flat logits over the whole vocabulary: whatever a model prefers, the
    texts that finish hold exactly the requested atoms."""
    domain = CrystalDomain()
    vocab = domain.tokenizer.vocab
    sites = composition_sites("BaTiO3")
    table = domain.codec.grammar(sites).compile(vocab)
    common = dict(bos_id=vocab.bos_id, eos_id=vocab.eos_id, pad_id=vocab.pad_id, banned=torch.tensor([vocab.pad_id]),
                  device=torch.device("cpu"))
    ids = decode_batch(lambda tokens, rows: torch.zeros(rows.numel(), len(vocab)), 32, 120,
                       generator=torch.Generator().manual_seed(0), grammar=table, **common)
    parsed = [domain.try_parse(domain.tokenizer.decode(seq)) for seq in ids]
    assert sum(s is not None for s in parsed) >= 8  # random angles often cannot close a cell
    assert all(_species(s) == Counter({"O": 3, "Ti": 1, "Ba": 1}) for s in parsed if s is not None)


def test_autoregressive_model_predicts_structures_of_the_composition_and_other_backbones_refuse():
    from molgen.backbones.base import Generator

    model = Generator.from_pretrained("perov5")  # the shipped Perov-5 text model
    structures = predict_structures(model, "BaTiO3", 12, seed=1)
    assert len(structures) == 12
    valid = [s for s in structures if s is not None]
    assert len(valid) >= 10
    assert all(_species(s) == Counter({"O": 3, "Ti": 1, "Ba": 1}) for s in valid)
    assert [s and s.as_dict() for s in predict_structures(model, "BaTiO3", 12, seed=1)] == [s and s.as_dict() for s in structures]
    domain = CrystalDomain()
    model = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=90)
    with pytest.raises(MolgenError, match="more than this model writes"):
        predict_structures(model, "SrTiO3", 2, formula_units=2)
    with pytest.raises(MolgenError, match="cannot fix a composition"):
        predict_structures(MaskedDiffusion.from_domain(domain, d_model=16, n_layers=1, n_heads=2, max_length=90), "NaCl", 2)
    with pytest.raises(MolgenError, match="constrains crystals"):
        predict_structures(AutoregressiveTransformer.from_domain(fitted_domain("smiles"), d_model=16, n_layers=1, n_heads=2), "NaCl", 2)


def test_graph_diffusion_keeps_the_given_atoms_and_refuses_unseen_elements():
    """Trained on rock salt and perovskites, asked for SrTiO3: every sample
    has exactly the given atoms and most are valid perovskite-like cells."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    domain = CrystalDomain()
    crystals = []
    for i in range(24):
        shift = rng.random(3)
        if i % 2:
            crystals.append(Structure(Lattice.cubic(5.6 * (1 + 0.01 * rng.standard_normal())), ["Na", "Cl"],
                                      (np.array([[0, 0, 0], [0.5, 0.5, 0.5]]) + shift) % 1))
        else:
            cell = _perovskite(3.9 * (1 + 0.01 * rng.standard_normal()), ("Sr", "Ti", "O", "O", "O"))
            crystals.append(Structure(cell.lattice, cell.species, (cell.frac_coords + shift) % 1))
    domain.fit_graph(crystals)
    model = GraphDiffusion.from_domain(domain, max_nodes=5, d_node=32, d_edge=16, d_global=32, n_layers=2, n_heads=4,
                                       sampling_steps=20)
    graphs = [domain.to_graph(c) for c in crystals]
    model.fit_statistics(graphs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch, gen = model.collate(graphs), torch.Generator().manual_seed(0)
    model.train()
    for _ in range(300):
        loss = model.loss(batch, generator=gen)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    structures = predict_structures(model, "SrTiO3", 16, seed=0)
    assert len(structures) == 16
    valid = [s for s in structures if s is not None]
    assert len(valid) >= 6
    assert all(_species(s) == Counter({"O": 3, "Ti": 1, "Sr": 1}) for s in valid)
    assert np.median([s.volume for s in valid]) == pytest.approx(3.9 ** 3, rel=0.25)
    with pytest.raises(MolgenError, match="never saw Ba"):
        predict_structures(model, "BaTiO3", 2)
    with pytest.raises(MolgenError, match="nodes"):
        predict_structures(model, "SrTiO3", 2, formula_units=2)
    with pytest.raises(MolgenError, match="node_types"):
        model.sample(2, node_types=[[0], [1], [2]])


def _perovskite(a: float, species=("Sr", "Ti", "O", "O", "O")) -> Structure:
    frac = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), list(species), frac)


def test_csp_metrics_match_the_same_structure_and_not_a_different_one():
    target = _perovskite(3.9)
    shifted = Structure(Lattice.cubic(4.2), target.species, (np.array(target.frac_coords) + 0.13) % 1)
    assert match_rms(shifted, target) == pytest.approx(0.0, abs=1e-6)  # the matcher scales and shifts
    distorted = Structure(Lattice.cubic(3.9), target.species, np.array(target.frac_coords) + np.array([[0, 0, 0.05]] + [[0, 0, 0]] * 4))
    assert 0 < match_rms(distorted, target) < 0.5
    antisite = _perovskite(3.9, ("Ti", "Sr", "O", "O", "O"))  # the cations swapped: another structure
    assert match_rms(antisite, target) is None or match_rms(antisite, target) > 0
    rock_salt = Structure(Lattice.cubic(4.0), ["Sr", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    report = csp_report([[rock_salt, distorted], [None]], [target, target], ks=(1, 2), n_jobs=1)
    assert report["k1"]["match_rate"] == 0.0 and report["k1"]["rmse"] is None
    assert report["k2"]["match_rate"] == 0.5 and report["k2"]["matched"] == 1
    assert report["k2"]["rmse"] == pytest.approx(match_rms(distorted, target))


def test_substitution_baseline_swaps_species_of_the_closest_template():
    templates = SubstitutionTemplates([_perovskite(3.9), Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])])
    [proposal] = templates.propose({"Ba": 1, "Ti": 1, "O": 3}, k=1)
    assert _species(proposal) == Counter({"Ba": 1, "Ti": 1, "O": 3})
    # Ba sits where Sr sat (the A site), and the cell grows with the larger ion.
    assert proposal[0].specie.symbol == "Ba" and proposal.lattice.a > 3.9
    assert match_rms(proposal, _perovskite(4.0, ("Ba", "Ti", "O", "O", "O"))) == pytest.approx(0.0, abs=1e-6)
    assert templates.propose({"K": 1, "Br": 1}, k=3)[0].composition.reduced_formula == "KBr"
    assert templates.propose({"Fe": 2, "O": 3}, k=1) == []  # no template with this pattern of counts


def test_summary_and_writers(tmp_path):
    structures = [_perovskite(3.9), _perovskite(4.1), None, _perovskite(3.9, ("Ti", "Sr", "O", "O", "O"))]
    summary, distinct = summarize_structures(structures)
    assert summary == {"samples": 4, "valid": 3, "distinct": 2}
    assert distinct[0]["index"] == 0 and distinct[0]["count"] == 2 and distinct[0]["spacegroup"] == "Pm-3m"
    write_structures(structures, tmp_path / "out.csv", "SrTiO3")
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert [r["valid"] for r in rows] == ["1", "1", "0", "1"] and rows[2]["cif"] == ""
    assert _species(Structure.from_str(rows[1]["cif"], fmt="cif")) == Counter({"O": 3, "Ti": 1, "Sr": 1})
    write_structures(structures, tmp_path / "cifs", "SrTiO3")
    assert len(list((tmp_path / "cifs").glob("*.cif"))) == 3
    with pytest.raises(MolgenError, match="suffix"):
        write_structures(structures, tmp_path / "out.json", "SrTiO3")


def test_cli_generates_structures_of_a_composition_with_the_shipped_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "perov5", "--composition", "SrTiO3", "-n", "6", "--seed", "0", "-o", "srtio3.csv"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out[out.index("{"): out.rindex("}") + 1])
    assert summary["samples"] == 6 and summary["valid"] >= 4
    rows = list(csv.DictReader(open("srtio3.csv")))
    assert len(rows) == 6
    assert all(_species(Structure.from_str(r["cif"], fmt="cif")) == Counter({"O": 3, "Ti": 1, "Sr": 1}) for r in rows if r["cif"])
    assert main(["generate", "perov5", "--composition", "SrXxO3", "-n", "2"]) == 2
    assert "unknown element" in capsys.readouterr().err
    assert main(["generate", "perov5", "--composition", "SrTiO3", "--scaffold", "*c1ccccc1", "-n", "2"]) == 2
    assert math.isfinite(summary["valid"])
