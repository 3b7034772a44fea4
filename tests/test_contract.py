"""Contract: every registered backbone on every domain offering its view
builds, trains a step, samples, decodes, saves and loads identically."""

from __future__ import annotations

import pytest
import torch
from helpers import DOMAIN_FIXTURES, TINY_HPARAMS, fitted_domain

from molgen.backbones.base import Generator
from molgen.core.registry import BACKBONES, DOMAINS

PAIRS = [
    (backbone, domain)
    for backbone, backbone_cls in BACKBONES.items()
    for domain, domain_cls in DOMAINS.items()
    if backbone_cls.view in domain_cls.views
]


def test_every_backbone_has_a_domain():
    assert {b for b, _ in PAIRS} == set(BACKBONES.names())


@pytest.mark.parametrize("backbone, domain_name", PAIRS)
def test_backbone_domain_contract(backbone, domain_name, tmp_path):
    torch.manual_seed(0)
    domain = fitted_domain(domain_name)
    model = BACKBONES.get(backbone).from_domain(domain, **TINY_HPARAMS.get(backbone, {}))
    texts = DOMAIN_FIXTURES[domain_name][:4]
    batch = model.make_batch(texts)

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    loss = model.loss(batch)["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))

    samples = model.sample(5, seed=0)
    assert len(samples) == 5
    assert all(s is None or domain.is_valid(s) for s in samples)

    model.eval()
    ll = model.log_likelihood(batch)
    assert ll.shape == (len(texts),) and torch.isfinite(ll).all()
    path = model.save_pretrained(tmp_path / "model")
    loaded = Generator.from_pretrained(path)
    assert type(loaded) is type(model)
    assert torch.allclose(loaded.log_likelihood(loaded.make_batch(texts)), ll, atol=1e-5)
    assert loaded.sample_texts(5, seed=0) == model.sample_texts(5, seed=0)


def test_typed_sampling_options_match_each_sampler():
    """A backbone's sampling config names exactly the keyword options its sampler takes."""
    from molgen.backbones.base import keyword_options
    from molgen.backbones.graph_diffusion import GraphDiffusion
    from molgen.backbones.vae import SequenceVAE

    for name, cls in BACKBONES.items():
        if cls is SequenceVAE:
            sampler_options = keyword_options(cls.sample_ids, cls.decode_ids)
        elif cls is GraphDiffusion:
            sampler_options = keyword_options(cls.sample_dense)
        else:
            sampler_options = keyword_options(cls.sample_ids)
        assert set(cls.sampling_cls.model_fields) == sampler_options, name
