"""Graph diffusion: the noise processes, dense batching, and tiny models on
molecular graphs and crystals that really learn, with guidance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import SMALL_CRYSTALS
from pymatgen.core import Lattice, Structure

from molgen.backbones import GraphDiffusion
from molgen.backbones.base import Generator
from molgen.core.errors import MolgenError
from molgen.domains import CrystalDomain
from molgen.domains.molgraph import MolGraphDomain
from molgen.nn.dense_graph import collate_dense
from molgen.nn.lattice import lattice_to_params, params_to_lattice
from molgen.schedulers import CategoricalNoise, GaussianNoise, WrappedNormalNoise, wrapped_normal_score

TINY = dict(d_node=32, d_edge=16, d_global=32, n_layers=2, n_heads=4, sampling_steps=20, elbo_grid=50, elbo_samples=8)


# -- noise processes ---------------------------------------------------------
@pytest.mark.parametrize("limit", [[0.5, 0.3, 0.2], [0.0, 0.0, 1.0]], ids=["marginal", "absorbing"])
def test_categorical_posterior_matches_bayes(limit):
    noise = CategoricalNoise(torch.tensor(limit))
    s, t = torch.tensor([0.3]), torch.tensor([0.7])
    a_s, a_t = noise.alpha_bar(s).item(), noise.alpha_bar(t).item()
    m = noise.limit
    step = a_t / a_s
    q_ts = step * torch.eye(3) + (1 - step) * m  # row i: q(x_t | x_s = i)
    q_s0 = a_s * torch.eye(3) + (1 - a_s) * m  # row k: q(x_s | x_0 = k)
    for x0 in range(3):
        for xt in range(3):
            brute = q_ts[:, xt] * q_s0[x0]
            if brute.sum() == 0:  # x_t impossible from x_0 (absorbing: a kept type never changes)
                continue
            brute = brute / brute.sum()
            closed = noise.reverse_probs(torch.tensor([[xt]]), torch.nn.functional.one_hot(torch.tensor([[x0]]), 3).float(), s, t)
            assert torch.allclose(closed[0, 0], brute, atol=1e-6)


def test_categorical_limits_and_reconstruction_term():
    noise = CategoricalNoise(torch.tensor([0.6, 0.4]))
    x0 = torch.tensor([[0, 1]])
    assert torch.allclose(noise.marginal(x0, torch.tensor([1.0]))[0], noise.limit.expand(2, 2))
    assert torch.allclose(noise.marginal(x0, torch.tensor([0.0]))[0], torch.eye(2), atol=1e-6)
    p0 = torch.tensor([[[0.9, 0.1], [0.3, 0.7]]])
    kl = noise.posterior_kl(x0, x0, p0, torch.tensor([0.0]), torch.tensor([0.01]))
    assert torch.allclose(kl, -torch.log(torch.tensor([[0.9, 0.7]])), atol=1e-3)
    with pytest.raises(ValueError, match="two categories"):
        CategoricalNoise(torch.tensor([1.0]))


def test_wrapped_normal_score_is_the_derivative_of_the_log_density():
    sigma = torch.tensor(0.3, dtype=torch.float64)

    def log_density(d):
        k = torch.arange(-6, 7, dtype=torch.float64)
        return torch.logsumexp(-((d + k) ** 2) / (2 * sigma**2), 0)

    for d in (0.05, 0.3, 0.49, 0.8, -0.4):
        x = torch.tensor(d, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(log_density(x), x)
        assert float(wrapped_normal_score(torch.tensor([d], dtype=torch.float64), sigma.reshape(1), images=6)) == pytest.approx(float(grad), rel=1e-6, abs=1e-9)
    assert float(wrapped_normal_score(torch.tensor([0.5]), torch.tensor([0.3]))) == pytest.approx(0.0, abs=1e-5)


def test_wrapped_noise_and_reverse_step_stay_in_the_cell():
    noise = WrappedNormalNoise()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 5, 3, generator=gen)
    xt, target = noise.add_noise(x0, torch.full((4,), 0.9), gen)
    assert (xt >= 0).all() and (xt < 1).all() and torch.isfinite(target).all()
    back = noise.reverse_step(xt, target, torch.full((4,), 0.5), torch.full((4,), 0.9), gen)
    assert (back >= 0).all() and (back < 1).all()
    assert noise.sigma(torch.tensor(0.0)) == pytest.approx(0.005) and noise.sigma(torch.tensor(1.0)) == pytest.approx(0.5)


def test_gaussian_reverse_step_with_the_true_x0_recovers_it():
    noise = GaussianNoise()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 6, generator=gen)
    xt, eps = noise.add_noise(x0, torch.full((16,), 0.2), gen)
    assert torch.allclose(noise.predict_x0(xt, eps, torch.full((16,), 0.2)), x0, atol=1e-4)
    last = noise.reverse_step(xt, eps, torch.zeros(16), torch.full((16,), 0.2), gen)  # the prediction is eps
    assert torch.allclose(last, x0, atol=1e-4)
    assert torch.allclose(noise.posterior_kl(x0, xt, eps, torch.zeros(16) + 0.1, torch.full((16,), 0.2)), torch.zeros(16))


def test_lattice_parameters_round_trip():
    lattice = Lattice.from_parameters(4.0, 5.0, 6.5, 80, 95, 110)
    params = lattice_to_params(torch.tensor(lattice.matrix, dtype=torch.float64)[None])
    assert np.allclose(params[0, :3].numpy(), [4.0, 5.0, 6.5])
    assert np.allclose(np.degrees(params[0, 3:].numpy()), [80, 95, 110])
    rebuilt = Lattice(params_to_lattice(params)[0].numpy())
    assert np.allclose(rebuilt.parameters, lattice.parameters)
    impossible = params_to_lattice(torch.tensor([[4.0, 4.0, 4.0, math.radians(150), math.radians(150), math.radians(150)]]))
    assert torch.isnan(impossible).any()


def test_dense_collate_is_symmetric_and_padded():
    domain = MolGraphDomain().fit_graph([MolGraphDomain().parse(s) for s in ("CCO", "c1ccccc1", "C#N")])
    graphs = [domain.to_graph(domain.parse(s)) for s in ("CCO", "c1ccccc1", "C#N")]
    batch = collate_dense(graphs, has_edges=True, periodic=False)
    assert batch["node_type"].shape == (3, 6) and batch["node_mask"].sum(1).tolist() == [3, 6, 2]
    assert torch.equal(batch["edge_type"], batch["edge_type"].transpose(1, 2))
    assert int(batch["edge_type"][2, 0, 1]) == domain.graph_spec().edge_types.index("triple")
    assert batch["edge_type"][0, 3:].abs().sum() == 0


# -- tiny models ----------------------------------------------------------------
def _train(model, batch, steps, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model.loss(batch, generator=gen)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


MOLECULES = ["CCO", "CCN", "CCC", "CC=O", "CC#N", "OCCO", "NCCO", "CC(C)O", "CC(=O)O", "CC(N)=O", "C1CC1", "C1CCC1"]


@pytest.mark.parametrize("transition", ["marginal", "absorbing"])
def test_molgraph_model_learns_valid_molecules_and_a_better_elbo(transition):
    torch.manual_seed(0)
    domain = MolGraphDomain()
    domain.fit_graph([domain.parse(s) for s in MOLECULES])
    model = GraphDiffusion.from_domain(domain, max_nodes=8, transition=transition, **TINY)
    model.fit_statistics([domain.to_graph(domain.parse(s)) for s in MOLECULES])
    batch = model.make_batch(MOLECULES)
    before_ll = model.log_likelihood(batch).mean()
    before = model.sample(64, seed=1)
    _train(model, batch, 400)
    after_ll = model.log_likelihood(batch).mean()
    after = model.sample(64, seed=1)
    valid_before = sum(m is not None for m in before) / 64
    valid_after = sum(m is not None for m in after) / 64
    assert after_ll > before_ll + 5
    assert valid_after >= 0.8 and valid_after > valid_before
    sizes = [m.GetNumAtoms() for m in after if m is not None]
    assert max(sizes) <= 4  # the size histogram of the data (largest-fragment policy can only shrink)
    # Same seed, same samples; the number of steps is free.
    assert model.sample_texts(8, seed=3) == model.sample_texts(8, seed=3)
    assert len(model.sample_texts(4, seed=3, steps=5)) == 4
    with pytest.raises(MolgenError, match="periodic"):
        model.sample(2, seed=0, corrector_steps=1)  # molecules have no coordinates to correct
    # Temperature on the type logits: colder draws the dominant element (carbon) more often.
    carbon = domain.graph_spec().node_types.index("C")

    def carbon_fraction(temperature):
        graphs = model.sample_dense(128, seed=4, temperature=temperature)
        return float(np.mean([(g["node_type"] == carbon).float().mean() for g in graphs]))

    cold, plain, hot = carbon_fraction(0.0), carbon_fraction(1.0), carbon_fraction(3.0)
    assert cold > plain > hot
    with pytest.raises(MolgenError, match="temperature"):
        model.sample(2, seed=0, temperature=-1.0)


def test_guidance_shifts_samples_toward_the_condition():
    torch.manual_seed(0)
    no_n = ["CCO", "CCC", "CC=O", "OCCO", "CC(C)O", "CC(=O)O", "C1CC1", "COC"]
    with_n = ["CCN", "NCCN", "CC#N", "NCC=O", "CNC", "NCCO", "CC(N)N", "C1CN1"]
    domain = MolGraphDomain()
    mols = [domain.parse(s) for s in no_n + with_n]
    domain.fit_graph(mols)
    model = GraphDiffusion.from_domain(domain, max_nodes=8, conditions=["has_n"], condition_dropout=0.2, **TINY)
    graphs = []
    for i, mol in enumerate(mols):
        g = domain.to_graph(mol)
        g.condition = torch.tensor([[float(i >= len(no_n))]])
        graphs.append(g)
    model.fit_statistics(graphs)
    assert float(model.condition_mean[0]) == pytest.approx(0.5)
    _train(model, model.collate(graphs), 300)

    def nitrogen_fraction(**kwargs):
        graphs = model.sample_dense(64, seed=2, **kwargs)
        n_index = domain.graph_spec().node_types.index("N")
        return float(np.mean([(g["node_type"] == n_index).float().mean() for g in graphs]))

    low, high = nitrogen_fraction(condition={"has_n": 0.0}), nitrogen_fraction(condition={"has_n": 1.0})
    guided = nitrogen_fraction(condition={"has_n": 1.0}, guidance=2.0)
    plain = nitrogen_fraction()
    assert high > low + 0.1
    assert guided >= high - 0.02 and plain < high
    with pytest.raises(MolgenError, match="unknown condition"):
        model.sample(2, condition={"logp": 1.0})


def test_crystal_model_learns_the_lattice_and_keeps_atoms_apart(tmp_path):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    crystals = []
    for _ in range(16):  # rock salt with small strain and a random origin
        a = 5.6 * (1 + 0.01 * rng.standard_normal())
        shift = rng.random(3)
        frac = (np.array([[0, 0, 0], [0.5, 0.5, 0.5]]) + shift) % 1
        crystals.append(Structure(Lattice.from_parameters(a / math.sqrt(2), a / math.sqrt(2), a / math.sqrt(2), 60, 60, 60), ["Na", "Cl"], frac))
    domain = CrystalDomain()
    domain.fit_graph(crystals)
    model = GraphDiffusion.from_domain(domain, max_nodes=2, **TINY)
    graphs = [domain.to_graph(c) for c in crystals]
    model.fit_statistics(graphs)
    _train(model, model.collate(graphs), 600)
    samples = model.sample(32, seed=0, steps=50)
    valid = [s for s in samples if s is not None]
    assert len(valid) >= 24
    lengths = np.array([s.lattice.abc for s in valid])
    assert abs(np.median(lengths) - 5.6 / math.sqrt(2)) < 0.3
    distances = np.array([s.distance_matrix[0, 1] for s in valid if len(s) == 2])
    # Na-Cl at (1/2, 1/2, 1/2) is 2.8 A apart; an untrained model places them anywhere.
    assert np.mean(np.abs(distances - 2.8) < 0.3) >= 0.7
    # Corrector steps (DiffCSP's predictor-corrector): still seeded, still on the lattice.
    corrected = [s for s in model.sample(16, seed=0, steps=20, corrector_steps=2) if s is not None]
    assert len(corrected) >= 12
    assert model.sample_texts(4, seed=1, corrector_steps=2) == model.sample_texts(4, seed=1, corrector_steps=2)
    path = model.save_pretrained(tmp_path / "model")
    loaded = Generator.from_pretrained(path)
    assert loaded.sample_texts(4, seed=5) == model.sample_texts(4, seed=5)
    assert torch.equal(loaded.lattice_mean, model.lattice_mean)


def test_graph_backbone_refuses_token_only_domains_and_large_graphs():
    from molgen.domains import SmilesDomain

    with pytest.raises(MolgenError, match="graph view"):
        GraphDiffusion.from_domain(SmilesDomain(), **TINY)
    domain = CrystalDomain()
    crystals = [domain.parse(t) for t in SMALL_CRYSTALS]
    domain.fit_graph(crystals)
    model = GraphDiffusion.from_domain(domain, max_nodes=3, **TINY)
    with pytest.raises(MolgenError, match="max_nodes"):
        model.fit_statistics([domain.to_graph(c) for c in crystals])


def test_graph_training_refuses_augmentation(tmp_path):
    from molgen.workflows import RunConfig, run_training

    config = RunConfig.model_validate(dict(domain="molgraph", backbone="graph-diffusion", data=dict(source="qm9", augment=True)))
    with pytest.raises(MolgenError, match="permutation-invariant"):
        run_training(config, tmp_path / "run")
