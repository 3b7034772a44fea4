"""CGCNN crystal property predictor and the two-stage band-gap model.

Hand-made cubic crystals (rock salt, CsCl, perovskite) with a target the
network can only get from the geometry (volume per atom) keep these tests
fast and independent of the data mirror.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from molgen.core.errors import ConfigError, DataError
from molgen.domains.crystal.graph import structure_to_graph
from molgen.nn.cgcnn import CGCNN, pack_crystal_graphs, periodic_distances
from molgen.predictors.base import Predictor
from molgen.predictors.crystals import CGCNNPredictor, GapPredictor, element_descriptors, nearest_neighbours
from molgen.predictors.metrics import rmse, roc_auc
from molgen.predictors.registry import PREDICTORS, load_predictor

N_PER_KIND = 50
N_TRAIN = 120
# Small settings; the defaults (atom_dim 64, 5 members, 100 epochs) are for real data.
FAST = dict(atom_dim=32, head_hidden=32, n_models=2, epochs=60, lr=3e-3, batch_size=32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Single-threaded: the graphs are tiny, and a second intra-op thread made
    training ~40x slower when the other core was busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def rock_salt(a: float, cation: str, anion: str) -> Structure:
    """Two-atom primitive cell of rock salt with conventional lattice constant ``a``."""
    h = a / 2
    return Structure(Lattice([[0, h, h], [h, 0, h], [h, h, 0]]), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def rock_salt_conventional(a: float, cation: str, anion: str) -> Structure:
    """The same crystal in its eight-atom cubic cell."""
    fcc = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    shifted = [[(x + 0.5) % 1, y, z] for x, y, z in fcc]
    return Structure(Lattice.cubic(a), [cation] * 4 + [anion] * 4, fcc + shifted)


def cscl(a: float, cation: str, anion: str) -> Structure:
    return Structure(Lattice.cubic(a), [cation, anion], [[0, 0, 0], [0.5, 0.5, 0.5]])


def perovskite(a: float, a_site: str, b_site: str, x: str = "O") -> Structure:
    coords = [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [a_site, b_site, x, x, x], coords)


@pytest.fixture(scope="module")
def crystals():
    """150 cubic crystals of three prototypes, shuffled, with their volume per atom (A^3)."""
    rng = np.random.default_rng(0)
    alkali, halide = ["Li", "Na", "K", "Rb", "Cs"], ["F", "Cl", "Br", "I"]
    structures = []
    for _ in range(N_PER_KIND):
        structures.append(rock_salt(rng.uniform(4.5, 6.5), rng.choice(alkali), rng.choice(halide)))
        structures.append(cscl(rng.uniform(3.2, 4.5), rng.choice(alkali), rng.choice(halide)))
        structures.append(perovskite(rng.uniform(3.7, 4.3), rng.choice(["Ca", "Sr", "Ba"]), rng.choice(["Ti", "Zr", "Sn"])))
    structures = [structures[i] for i in rng.permutation(len(structures))]
    volume = np.array([s.volume / len(s) for s in structures])
    return structures, volume


@pytest.fixture(scope="module")
def regressor(crystals):
    structures, volume = crystals
    return CGCNNPredictor(**FAST).fit(structures[:N_TRAIN], volume[:N_TRAIN])


# ----------------------------------------------------------------------------- graphs


def test_periodic_distances_match_the_neighbour_list():
    # A skewed cell with an off-centre atom, so that image offsets matter.
    lattice = Lattice.from_parameters(4.1, 4.6, 5.2, 80, 95, 110)
    structure = Structure(lattice, ["Sr", "Ti", "O"], [[0, 0, 0], [0.45, 0.52, 0.48], [0.5, 0.1, 0.9]])
    graph = structure_to_graph(structure, cutoff=6.0, max_neighbors=12)
    computed = periodic_distances(graph.frac_coords, graph.lattice, graph.edge_index, graph.edge_image)
    assert graph.edge_index.shape[1] == 36
    np.testing.assert_allclose(computed.numpy(), graph.edge_distance.numpy(), atol=1e-4)
    # Packing falls back to the computed distances when the graph has none.
    del graph.edge_distance
    packed = pack_crystal_graphs([graph])
    np.testing.assert_allclose(packed.edge_distance.numpy(), computed.numpy(), atol=1e-6)


def test_neighbour_cut_keeps_tied_shells_whole():
    # Cubic SrTiO3: Sr has 12 O at a/sqrt(2); Ti 6 O at a/2 and 8 Sr beyond;
    # O has 2 Ti, then 4 Sr and 8 O all at a/sqrt(2): 14 with the tie.
    graph = nearest_neighbours(structure_to_graph(perovskite(3.9, "Sr", "Ti"), max_neighbors=None), 12)
    counts = torch.bincount(graph.edge_index[1], minlength=5).tolist()
    assert counts == [12, 14, 14, 14, 14]
    assert graph.edge_image.shape[0] == graph.edge_distance.shape[0] == graph.edge_index.shape[1]
    # Without ties the cut is exact.
    skewed = Structure(Lattice.from_parameters(4.1, 4.6, 5.2, 80, 95, 110), ["Sr", "O"], [[0, 0, 0], [0.45, 0.52, 0.48]])
    assert torch.bincount(nearest_neighbours(structure_to_graph(skewed, max_neighbors=None), 12).edge_index[1]).tolist() == [12, 12]


def test_packed_batches_offset_edges_per_graph():
    graphs = [structure_to_graph(s) for s in (rock_salt(5.6, "Na", "Cl"), perovskite(3.9, "Sr", "Ti"), cscl(4.1, "Cs", "Cl"))]
    packed = pack_crystal_graphs(graphs)
    assert len(packed) == 3
    batch = packed.select([2, 0])
    assert batch.num_graphs == 2
    assert batch.atomic_numbers.tolist() == graphs[2].atomic_numbers.tolist() + graphs[0].atomic_numbers.tolist()
    assert batch.batch.tolist() == [0, 0, 1, 1]
    n2 = graphs[2].edge_index.shape[1]
    assert torch.equal(batch.edge_index[:, :n2], graphs[2].edge_index)
    assert torch.equal(batch.edge_index[:, n2:], graphs[0].edge_index + 2)
    assert torch.equal(batch.edge_distance[n2:], graphs[0].edge_distance)


def test_element_descriptors_are_a_finite_standardised_table():
    table = element_descriptors()
    assert table.shape[0] == 119 and np.isfinite(table).all()
    assert not table[0].any()
    assert np.abs(table[1:, :10].mean(axis=0)).max() < 0.2  # roughly centred despite filled gaps
    assert table[26, 10:].tolist() == [0, 0, 1, 0]  # iron: d block


# ----------------------------------------------------------------------------- learning


def test_cgcnn_learns_volume_per_atom(crystals, regressor):
    structures, volume = crystals
    mean, std = regressor.predict(structures[N_TRAIN:])
    baseline = rmse(volume[N_TRAIN:], np.full(len(mean), volume[:N_TRAIN].mean()))
    assert rmse(volume[N_TRAIN:], mean) < 0.3 * baseline
    assert (std > 0).all() and np.isfinite(std).all()  # two members disagree somewhat
    assert regressor.fit_report_["n_train"] + regressor.fit_report_["n_val"] == N_TRAIN


def test_predictions_do_not_depend_on_the_choice_of_cell(regressor):
    primitive = rock_salt(5.64, "Na", "Cl")
    conventional = rock_salt_conventional(5.64, "Na", "Cl")
    supercell = cscl(4.1, "Cs", "Br").make_supercell([2, 2, 2], in_place=False)
    shifted = perovskite(3.9, "Sr", "Ti")
    shifted.translate_sites(list(range(5)), [0.13, 0.29, 0.41])
    reordered = Structure(shifted.lattice, [s.specie for s in shifted][::-1], shifted.frac_coords[::-1])
    mean, _ = regressor.predict([primitive, conventional, cscl(4.1, "Cs", "Br"), supercell, perovskite(3.9, "Sr", "Ti"), shifted, reordered])
    np.testing.assert_allclose(mean[1], mean[0], rtol=1e-4)
    np.testing.assert_allclose(mean[3], mean[2], rtol=1e-4)
    np.testing.assert_allclose(mean[5:], [mean[4], mean[4]], rtol=1e-4)


def test_classification_of_large_cells(crystals):
    structures, volume = crystals
    labels = (volume > np.median(volume)).astype(float)
    model = CGCNNPredictor(task="classification", **{**FAST, "n_models": 1, "epochs": 40}).fit(structures[:N_TRAIN], labels[:N_TRAIN])
    proba, _ = model.predict(structures[N_TRAIN:])
    assert ((proba >= 0) & (proba <= 1)).all()
    assert roc_auc(labels[N_TRAIN:], proba) > 0.9


def test_none_rows_give_nan_and_bad_inputs_are_rejected(crystals, regressor):
    structures, _ = crystals
    mean, std = regressor.predict([structures[-1], None, structures[-2]])
    assert np.isnan(mean[1]) and np.isnan(std[1])
    assert np.isfinite(mean[[0, 2]]).all()
    assert np.isnan(regressor.predict([None])[0]).all()
    with pytest.raises(DataError, match="pymatgen Structures"):
        regressor.predict(["NaCl"])
    disordered = Structure(Lattice.cubic(4.0), [{"Sr": 0.5, "Ba": 0.5}, "Ti"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(DataError, match="not ordered pymatgen Structures"):
        CGCNNPredictor(**FAST).fit([structures[0], disordered], [1.0, 2.0])
    with pytest.raises(ConfigError, match="norm"):
        CGCNNPredictor(norm="group")
    with pytest.raises(ConfigError, match="max_neighbors"):
        CGCNNPredictor(max_neighbors=0)


def test_a_collapsed_generated_cell_gets_nan_instead_of_a_hanging_neighbour_search(crystals, regressor):
    structures, _ = crystals
    # 6 atoms in a 0.009 A^3 cell: millions of periodic images within the 6 A cutoff.
    flat = Structure(Lattice([[3, 0, 0], [0, 3, 0], [0, 0, 0.001]]), ["Na", "Cl"] * 3, [[0, 0, 0], [0.5, 0.5, 0.5]] * 3)
    mean, _ = regressor.predict([structures[0], flat])
    assert np.isfinite(mean[0]) and np.isnan(mean[1])
    with pytest.raises(DataError, match="degenerate"):
        structure_to_graph(flat)


def test_single_atom_cells_train_with_batch_norm():
    # bcc and fcc metals in one-atom primitive cells: batches of one cell hold
    # a single atom, where plain BatchNorm1d would raise in training mode.
    metals = [Structure(Lattice.cubic(a), ["Fe"], [[0, 0, 0]]) for a in (2.3, 2.5, 2.7, 2.9)]
    model = CGCNNPredictor(atom_dim=8, head_hidden=8, n_models=1, epochs=2, batch_size=1, val_fraction=0.0)
    model.fit(metals, [s.volume for s in metals])
    assert np.isfinite(model.predict(metals)[0]).all()


# ----------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path, crystals, regressor):
    structures, _ = crystals
    assert PREDICTORS["cgcnn"] is CGCNNPredictor
    directory = regressor.save(tmp_path / "cgcnn")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((directory / "config.json").read_text())
    assert config["predictor"] == "cgcnn" and config["params"]["atom_dim"] == FAST["atom_dim"]
    expected = regressor.predict(structures[N_TRAIN:])
    for loaded in (load_predictor(directory), Predictor.load(directory), CGCNNPredictor.load(directory)):
        assert isinstance(loaded, CGCNNPredictor) and loaded.get_params() == regressor.get_params()
        got = loaded.predict(structures[N_TRAIN:])
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_chgnet_element_embedding_trains_and_loads_without_chgnet(tmp_path, crystals, monkeypatch):
    pytest.importorskip("chgnet")
    from molgen.predictors import crystals as crystal_predictors

    structures, volume = crystals
    table = crystal_predictors.element_feature_table("descriptors+chgnet")
    assert table.shape == (119, 14 + 64) and np.isfinite(table).all()
    assert np.abs(table[[11, 19], 14:] - table[[19, 11], 14:]).sum() > 0  # Na and K differ
    model = CGCNNPredictor(**{**FAST, "n_models": 1, "epochs": 30}, element_features="chgnet").fit(
        structures[:N_TRAIN], volume[:N_TRAIN])
    mean, _ = model.predict(structures[N_TRAIN:])
    assert np.mean(np.abs(mean - volume[N_TRAIN:])) < 0.5 * np.mean(np.abs(volume[N_TRAIN:] - volume[:N_TRAIN].mean()))
    directory = model.save(tmp_path / "chgnet-table")

    def unavailable():
        raise AssertionError("loading must take the table from the saved weights")

    monkeypatch.setattr(crystal_predictors, "chgnet_element_embedding", unavailable)
    np.testing.assert_array_equal(load_predictor(directory).predict(structures[N_TRAIN:])[0], mean)
    with pytest.raises(ConfigError, match="element_features"):
        CGCNNPredictor(element_features="magpie")


def test_network_without_element_features_and_with_sum_pooling():
    batch = pack_crystal_graphs([structure_to_graph(rock_salt(5.6, "Na", "Cl"))]).select([0])
    net = CGCNN(2, atom_dim=8, head_hidden=8, element_table=None, pooling="sum", norm="layer").eval()
    assert net(batch).shape == (1, 2)
    assert "element_table" not in net.state_dict()


# ----------------------------------------------------------------------------- band gaps


@pytest.fixture(scope="module")
def gap_data(crystals):
    """Synthetic gaps: cells denser than the median are "insulators" whose
    gap grows with density; the rest are metals (gap 0)."""
    structures, volume = crystals
    cut = np.median(volume)
    gaps = np.where(volume < cut, 0.5 + 0.2 * (cut - volume), 0.0)
    return structures, gaps


@pytest.fixture(scope="module")
def gap_model(gap_data):
    structures, gaps = gap_data
    fast = {**FAST, "n_models": 2, "epochs": 40}
    return GapPredictor(**fast).fit(structures[:N_TRAIN], gaps[:N_TRAIN])


def test_gap_predictor_separates_metals_and_predicts_gaps(gap_data, gap_model):
    structures, gaps = gap_data
    parts = gap_model.predict_parts(structures[N_TRAIN:])
    mean, std = gap_model.predict(structures[N_TRAIN:])
    truth = gaps[N_TRAIN:]
    assert roc_auc(truth > 1e-3, parts["p_nonmetal"]) > 0.9
    np.testing.assert_allclose(mean, parts["p_nonmetal"] * parts["gap_if_nonmetal"])
    assert (parts["gap_if_nonmetal"] >= 0).all()
    assert np.isfinite(std).all() and (std >= 0).all() and std.max() > 0
    assert rmse(truth, mean) < 0.5 * rmse(truth, np.full(len(truth), gaps[:N_TRAIN].mean()))
    report = gap_model.fit_report_
    assert report["n_metals"] + report["n_nonmetals"] == N_TRAIN
    assert report["regressor"]["n_input"] == report["n_nonmetals"]
    assert np.isnan(gap_model.predict([None, structures[0]])[0][0])


def test_decision_threshold_is_f1_optimal_on_held_out_rows(gap_data, gap_model):
    structures, gaps = gap_data
    held_out, truth = structures[N_TRAIN:], gaps[N_TRAIN:] > 1e-3
    assert gap_model.decision_threshold == 0.5  # fitted without validation rows
    threshold = gap_model.calibrate_decision(held_out, gaps[N_TRAIN:])
    p = gap_model.predict_parts(held_out)["p_nonmetal"]

    def f1(t: float) -> float:
        called = p >= t
        return 2 * np.sum(called & truth) / (called.sum() + truth.sum())

    assert gap_model.decision_threshold == threshold and 0 < threshold <= 1
    assert all(f1(threshold) >= f1(t) for t in np.linspace(0.01, 0.99, 50))
    with pytest.raises(DataError, match="no non-metal"):
        gap_model.calibrate_decision(held_out[:3], np.zeros(3))
    gap_model.decision_threshold = 0.5


def test_gap_predictor_save_load(tmp_path, gap_data, gap_model):
    structures, _ = gap_data
    directory = gap_model.save(tmp_path / "gap")
    assert sorted(p.name for p in directory.iterdir()) == ["classifier", "config.json", "regressor"]
    loaded = GapPredictor.load(directory)
    assert loaded.threshold == gap_model.threshold
    assert loaded.decision_threshold == gap_model.decision_threshold
    for got, expected in zip(loaded.predict(structures[:20]), gap_model.predict(structures[:20])):
        np.testing.assert_array_equal(got, expected)


def test_gap_predictor_rejects_unusable_data(gap_data):
    structures, gaps = gap_data
    with pytest.raises(DataError, match="non-metals"):
        GapPredictor(**FAST).fit(structures[:10], np.zeros(10))
    with pytest.raises(ConfigError, match="task"):
        GapPredictor(classifier_params={"task": "regression"})
    assert GapPredictor(threshold=0.5).labels([0.0, 0.5, 0.7, np.nan]).tolist()[:3] == [0.0, 0.0, 1.0]


def test_shipped_mp20_gap_model_tells_a_salt_from_an_alloy():
    from molgen.pretrained.predictors import predictor_dir

    model = load_predictor(predictor_dir("mp20-gap"))
    salt = rock_salt(5.64, "Na", "Cl")
    alloy = Structure(Lattice.cubic(3.75), ["Au", "Cu", "Cu", "Cu"], [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    parts = model.predict_parts([salt, alloy])
    assert parts["p_nonmetal"][0] > model.decision_threshold > parts["p_nonmetal"][1]
    assert parts["gap_if_nonmetal"][0] > 3.0  # PBE gap of NaCl: ~5 eV
