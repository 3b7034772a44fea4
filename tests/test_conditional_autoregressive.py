"""Property-conditioned autoregressive generation with classifier-free guidance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molgen.backbones.autoregressive import AutoregressiveTransformer
from molgen.cli.common import parse_conditions
from molgen.core.errors import MolgenError
from molgen.core.vocab import pad_batch
from molgen.domains import SmilesDomain

LIGHT, HEAVY = "CCO", "Nc1ccc(Cl)cc1"


def _memorising_model(steps: int = 300):
    """A conditional model taught: condition 0 -> LIGHT, condition 1 -> HEAVY."""
    torch.manual_seed(0)
    domain = SmilesDomain()
    domain.tokenizer.fit([LIGHT, HEAVY])
    model = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=2, n_heads=2, max_length=24,
                                                  conditions=["size"], condition_dropout=0.2)
    tokenizer = domain.tokenizer
    rows = [tokenizer.encode(t) for t in (LIGHT, HEAVY)] * 8  # BOS ... EOS
    batch = pad_batch(rows, tokenizer.vocab.pad_id)
    batch["condition"] = torch.tensor([[0.0], [1.0]] * 8)

    class Data:
        conditions = batch["condition"].numpy()

    model.fit_statistics(Data)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_the_condition_steers_what_is_written():
    model = _memorising_model()
    assert model.sample_texts(2, seed=0, temperature=0, condition={"size": 0.0}) == [LIGHT, LIGHT]
    assert model.sample_texts(2, seed=0, temperature=0, condition={"size": 1.0}) == [HEAVY, HEAVY]
    # Guidance sharpens toward the condition; ranges are drawn per sample; unconditioned draws both.
    guided = model.sample_texts(40, seed=1, condition={"size": 1.0}, guidance=2.0)
    assert guided.count(HEAVY) >= 38
    ranged = model.sample_texts(60, seed=2, condition={"size": (0.0, 1.0)}, guidance=1.0)
    assert ranged.count(LIGHT) >= 10 and ranged.count(HEAVY) >= 10
    free = model.sample_texts(60, seed=3)
    assert {LIGHT, HEAVY} <= set(free)
    assert model.sample_texts(5, seed=4, condition={"size": 1.0}, guidance=1.0) == \
        model.sample_texts(5, seed=4, condition={"size": 1.0}, guidance=1.0)


def test_conditions_are_checked():
    model = _memorising_model(steps=1)
    with pytest.raises(MolgenError, match="give every condition"):
        model.sample_texts(2, seed=0, condition={"logP": 1.0})
    with pytest.raises(MolgenError, match="low > high"):
        model.sample_texts(2, seed=0, condition={"size": (2.0, 1.0)})
    with pytest.raises(MolgenError, match="needs a condition"):
        model.sample_texts(2, seed=0, guidance=1.0)
    plain = AutoregressiveTransformer.from_domain(model.domain, d_model=16, n_layers=1, n_heads=2, max_length=24)
    with pytest.raises(MolgenError, match="trained without conditions"):
        plain.sample_texts(2, seed=0, condition={"size": 1.0})
    assert parse_conditions(["logP=2:3", "QED=0.7"]) == {"logP": (2.0, 3.0), "QED": 0.7}
    with pytest.raises(MolgenError, match="NAME=LOW:HIGH"):
        parse_conditions(["logP=a:b"])


def test_training_computes_the_conditions(tmp_path):
    from molgen.backbones.base import Generator
    from molgen.core.config import validate
    from molgen.workflows import RunConfig, run_training

    config = validate(RunConfig, {
        "data": {"source": "nci-5k", "limit": 200},
        "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "conditions": ["logP", "QED"]},
        "train": {"batch_size": 32, "max_steps": 5, "warmup_steps": 1, "val_every": 5, "progress": False},
    })
    model = Generator.from_pretrained(run_training(config, tmp_path / "run").model_dir)
    assert model.config.conditions == ["logP", "QED"]
    assert 0.0 < float(model.condition_mean[1]) < 1.0 and float(model.condition_std[0]) > 0.1  # QED in (0, 1)
    assert len(model.sample_texts(4, seed=0, condition={"logP": (2.0, 3.0), "QED": (0.7, 0.9)}, guidance=1.0)) == 4
    bad = validate(RunConfig, {"data": {"source": "nci-5k", "limit": 50}, "model": {"conditions": ["nonsense"]},
                               "train": {"max_steps": 1, "progress": False}})
    with pytest.raises(MolgenError, match="neither a computed property"):
        run_training(bad, tmp_path / "bad")
    assert np.isfinite(float(model.condition_std[1]))


def test_reinforcement_learning_proposes_and_scores_under_the_prior_condition():
    """With ``condition``, the agent samples at the targets and agent and prior
    likelihoods are the conditional ones (an unconditional score would charge
    the light molecule log 2 for the other mode)."""
    from molgen.loops.reinforce import PriorRegularizedRL, ReinforceConfig

    model = _memorising_model()
    conditional = PriorRegularizedRL(model, ReinforceConfig(condition={"size": 0.0}, temperature=0.5), seed=0)
    assert conditional.agent.config.condition_dropout == 0.0 and model.config.condition_dropout == 0.2
    texts = conditional.propose(16)
    assert texts and set(texts) == {LIGHT}  # duplicates dropped: one distinct proposal
    scored = conditional.update(texts, [t for t in texts], [0.0] * len(texts))
    free = PriorRegularizedRL(model, ReinforceConfig(replay_capacity=0), seed=0)
    free.propose(16)
    free._last = [model.domain.tokenizer.encode(LIGHT)[1:-1]]
    unconditioned = free.update([LIGHT], [LIGHT], [0.0])
    assert scored["prior_nll"] < 0.1 < unconditioned["prior_nll"]
    with pytest.raises(MolgenError, match="give every condition"):
        PriorRegularizedRL(model, ReinforceConfig(condition={"logP": 1.0}))
    plain = AutoregressiveTransformer.from_domain(model.domain, d_model=16, n_layers=1, n_heads=2, max_length=24)
    with pytest.raises(MolgenError, match="trained without conditions"):
        PriorRegularizedRL(plain, ReinforceConfig(condition={"size": 0.0}))
