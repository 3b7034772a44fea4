"""Masked discrete diffusion: schedule, a tiny model that learns, CLI."""

from __future__ import annotations

import pytest
import torch
from conftest import SMALL_SMILES

from molgen.backbones.masked_diffusion import MaskedDiffusion
from molgen.domains import SmilesDomain
from molgen.schedulers import MaskingSchedule


def test_schedules_are_monotone_with_positive_weights():
    t = torch.linspace(0.01, 1.0, 50)
    for kind in MaskingSchedule.KINDS:
        s = MaskingSchedule(kind)
        alpha = s.alpha(t)
        assert alpha[0] > 0.95 and alpha[-1].abs() < 1e-6
        assert (alpha[1:] <= alpha[:-1]).all()
        assert (s.weight(t) > 0).all()
        assert s.unmask_probability(torch.tensor(1.0), torch.tensor(0.0)) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        MaskingSchedule("quadratic")


def _elbo_before_and_after_training(model, steps: int = 150) -> tuple[float, float]:
    """Mean ELBO (nats per molecule) of the fixture before and after ``steps`` AdamW steps on it."""
    batch = model.make_batch(SMALL_SMILES)
    before = model.log_likelihood(batch).mean().item()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return before, model.log_likelihood(batch).mean().item()


def test_tiny_model_learns():
    torch.manual_seed(0)
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    model = MaskedDiffusion.from_domain(domain, d_model=64, n_layers=2, n_heads=4, max_length=48, elbo_samples=8)
    before, after = _elbo_before_and_after_training(model)
    # ~-109 nats per molecule untrained, ~-35 after 100-150 steps (measured); sample
    # validity of such a tiny diffusion model is still low, so the ELBO is the check.
    assert after > before + 50
    texts = model.sample_texts(8, seed=0, steps=16)
    assert len(texts) == 8 and all(isinstance(t, str) for t in texts)


def test_sampled_lengths_follow_the_training_histogram_and_learn():
    from molgen.core.errors import MolgenError
    from molgen.train import TokenBatches

    torch.manual_seed(0)
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    model = MaskedDiffusion.from_domain(domain, d_model=64, n_layers=2, n_heads=4, max_length=48, elbo_samples=8,
                                        length_model="sampled")
    with pytest.raises(MolgenError, match="fit_statistics"):
        model.sample_ids(2, seed=0)
    from molgen.core.errors import ConfigError

    with pytest.raises(ConfigError, match="length_model"):
        MaskedDiffusion.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=48, length_model="eos")
    data = TokenBatches(SMALL_SMILES, domain.tokenizer, batch_size=4)
    model.fit_statistics(data)
    seen = {int(n) - 2 for n in data.lengths}  # token counts without BOS/EOS
    # Every sample has a training length (EOS and PAD are placed, never predicted), untrained or not.
    assert all(len(ids) in seen for ids in model.sample_ids(40, seed=0, steps=4, semantic=False))
    # Under the SMILES constraint a row may end early, where nothing valid extends it.
    assert all(len(ids) <= max(seen) for ids in model.sample_ids(40, seed=0))

    before, after = _elbo_before_and_after_training(model)
    # Measured: -48 nats per molecule untrained (the length is given, so it starts far above the
    # padded canvas's -109), -30 after 150 steps.
    assert after > before + 12
    # The histogram travels with the weights.
    clone = MaskedDiffusion.from_domain(domain, d_model=64, n_layers=2, n_heads=4, max_length=48, length_model="sampled")
    clone.load_state_dict(model.state_dict())
    assert torch.equal(clone.length_counts, model.length_counts)


def test_confidence_order_reveals_the_most_probable_positions():
    masked = torch.tensor([[False, True, True, True], [False, True, False, False]])
    # Masked positions in row order: row 0 has three, row 1 one.
    logits = torch.tensor([[0.0, 5.0], [0.0, 1.0], [0.0, 3.0], [0.0, 0.0]])
    proposal = torch.tensor([1, 1, 1, 1])
    reveal = MaskedDiffusion._most_confident(masked, logits, proposal, torch.tensor(0.5))
    # Row 0: round(1.5) = 2 of its 3 masked positions, the two most confident; row 1: at least one.
    assert reveal.tolist() == [True, False, True, True]
    # An end-of-sequence proposal ranks after content however confident it is
    # (else PAD cascades from the end of the canvas to its start).
    ends = torch.tensor([True, False, False, False])
    reveal = MaskedDiffusion._most_confident(masked, logits, proposal, torch.tensor(0.5), ends)
    assert reveal.tolist() == [False, True, True, True]

    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    model = MaskedDiffusion.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=48)
    a = model.sample_texts(6, seed=1, steps=8, order="confidence")
    assert a == model.sample_texts(6, seed=1, steps=8, order="confidence") and len(a) == 6


def test_left_to_right_order_and_confidence_noise():
    masked = torch.tensor([[False, True, False, True, True], [False, False, True, True, False]])
    reveal = MaskedDiffusion._leftmost(masked, torch.tensor(0.5))
    # Row 0: round(1.5) = 2 of 3 masked positions, the two leftmost; row 1: round(1.0) = 1.
    assert reveal.tolist() == [True, True, False, True, False]

    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    model = MaskedDiffusion.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=48)
    a = model.sample_texts(6, seed=1, steps=8, order="confidence", confidence_noise=2.0)
    assert a == model.sample_texts(6, seed=1, steps=8, order="confidence", confidence_noise=2.0)
    assert len(model.sample_texts(4, seed=1, steps=8, order="left-to-right")) == 4
