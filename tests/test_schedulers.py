"""Every noise process implements the one Noise interface: corrupt, draw the
prior, step back, and score a step, with the shapes the interface promises."""

from __future__ import annotations

import pytest
import torch

from molgen.schedulers import CategoricalNoise, GaussianNoise, IdentityNoise, MaskingSchedule, Noise, WrappedNormalNoise

B, N = 4, 5


def _cases():
    """(noise, clean x0, a perfect prediction from (x0, aux), per-entry shape)."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 3, (B, N), generator=gen)
    onehot = torch.nn.functional.one_hot(ids, 3).float()
    tokens = torch.randint(0, 4, (B, N), generator=gen)
    return [
        (CategoricalNoise(torch.tensor([0.5, 0.3, 0.2])), ids, lambda x0, aux: onehot, (B, N)),
        (IdentityNoise(), ids, lambda x0, aux: onehot, (B, N)),
        (MaskingSchedule("cosine", mask_id=4), tokens, lambda x0, aux: torch.nn.functional.one_hot(tokens, 5).float(), (B, N)),
        (GaussianNoise(clip_x0=10.0), torch.randn(B, 6, generator=gen), lambda x0, aux: aux, (B,)),
        (WrappedNormalNoise(), torch.rand(B, N, 3, generator=gen), lambda x0, aux: aux, (B, N)),
    ]


@pytest.mark.parametrize("case", range(5), ids=["categorical", "identity", "masking", "gaussian", "wrapped-normal"])
def test_every_noise_implements_the_interface(case):
    noise, x0, perfect, entry_shape = _cases()[case]
    assert isinstance(noise, Noise)
    gen = torch.Generator().manual_seed(1)
    t, s = torch.full((B,), 0.6), torch.full((B,), 0.3)
    xt, aux = noise.add_noise(x0, t, gen)
    assert xt.shape == x0.shape and xt.dtype == x0.dtype
    prediction = perfect(x0, aux)
    xs = noise.reverse_step(xt, prediction, s, t, gen)
    assert xs.shape == x0.shape
    kl = noise.posterior_kl(x0, xt, prediction, s, t)
    assert kl.shape == entry_shape and torch.isfinite(kl).all()
    assert torch.allclose(kl, torch.zeros(entry_shape), atol=1e-4)  # a perfect prediction pays nothing
    assert noise.prior_kl(x0).shape == entry_shape
    prior = noise.sample_prior(tuple(x0.shape), gen)
    assert prior.shape == x0.shape


def test_the_same_seed_draws_the_same_noise():
    for noise, x0, perfect, _ in _cases():
        a = noise.add_noise(x0, torch.full((B,), 0.5), torch.Generator().manual_seed(3))[0]
        b = noise.add_noise(x0, torch.full((B,), 0.5), torch.Generator().manual_seed(3))[0]
        assert torch.equal(a, b)


def test_masking_noise_masks_only_maskable_positions_and_reveals_with_the_schedule():
    noise = MaskingSchedule("linear", mask_id=9)
    x0 = torch.arange(8).repeat(3, 1)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, 0] = False
    xt, masked = noise.add_noise(x0, torch.tensor([0.0, 0.5, 1.0]), torch.Generator().manual_seed(0), maskable=maskable)
    assert not masked[0].any() and masked[2, 1:].all() and not masked[:, 0].any()
    assert torch.equal(xt[masked], torch.full((int(masked.sum()),), 9)) and torch.equal(xt[~masked], x0[~masked])
    start = noise.sample_prior((2, 8))
    assert (start == 9).all()
    p0 = torch.nn.functional.one_hot(torch.full((2, 8), 3), 10).float()
    done = noise.reverse_step(start, p0, torch.zeros(2), torch.full((2,), 0.5), torch.Generator().manual_seed(0))
    assert (done == 3).all()  # at s = 0 every masked token is revealed
    with pytest.raises(ValueError, match="mask_id"):
        MaskingSchedule("linear").sample_prior((1, 2))


def test_gaussian_clip_bounds_the_estimated_x0_in_sampling_only():
    noise = GaussianNoise(clip_x0=1.0)
    xt, eps = torch.full((2, 6), 3.0), torch.zeros(2, 6)
    last = noise.reverse_step(xt, eps, torch.zeros(2), torch.full((2,), 0.01), torch.Generator().manual_seed(0))
    assert float(last.max()) < 1.01  # the step mean is close to the (clamped) x0 near t = 0
    unclipped = GaussianNoise().reverse_step(xt, eps, torch.zeros(2), torch.full((2,), 0.01), torch.Generator().manual_seed(0))
    assert float(unclipped.max()) > 2.0
