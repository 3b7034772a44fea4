"""Small builders shared by tests."""

from __future__ import annotations

from conftest import SMALL_CRYSTALS, SMALL_PEPTIDES, SMALL_SMILES

from molgen.core.registry import DOMAINS

TINY_HPARAMS = {
    "autoregressive": dict(d_model=32, n_layers=1, n_heads=2, max_length=128),
    "masked-diffusion": dict(d_model=32, n_layers=1, n_heads=2, max_length=128, sampling_steps=8, elbo_samples=4),
    "vae": dict(d_model=32, n_layers=1, n_heads=2, max_length=128, latent_dim=8, prefix_tokens=2, iw_samples=2),
    "graph-diffusion": dict(
        d_node=32, d_edge=16, d_global=32, n_layers=1, n_heads=2, max_nodes=24, sampling_steps=8, elbo_samples=4, elbo_grid=50
    ),
}

# Texts each token domain is fitted on in the contract test.
_selfies = DOMAINS.get("selfies")()
SMALL_SELFIES = [_selfies.format(_selfies.parse(s)) for s in SMALL_SMILES]
DOMAIN_FIXTURES = {"smiles": SMALL_SMILES, "crystal": SMALL_CRYSTALS, "protein": SMALL_PEPTIDES, "molgraph": SMALL_SMILES,
                   "selfies": SMALL_SELFIES}


def fitted_domain(name: str):
    """A domain with its tokenizer (tokens view) and its node types (graph
    view) fitted on the domain's fixture texts."""
    domain = DOMAINS.get(name)()
    if domain.tokenizer is not None:
        domain.tokenizer.fit(DOMAIN_FIXTURES[name])
    if "graph" in domain.views:
        domain.fit_graph([domain.parse(t) for t in DOMAIN_FIXTURES[name]])
    return domain


def draw_uniform(constraint, vocab, limits, seed: int = 0) -> list[str]:
    """Texts written by uniformly random choices among the tokens a decoding
    constraint allows (reset by the caller), row ``r`` for at most
    ``limits[r]`` tokens: whatever a model prefers, the constraint must hold."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(limits)
    seqs: list[list[int]] = [[] for _ in range(n)]
    for step in range(int(max(limits))):
        rows = np.array([r for r in range(n) if step < limits[r] and not (seqs[r] and seqs[r][-1] == vocab.eos_id)])
        if not len(rows):
            break
        allowed = constraint.allowed(rows)
        allowed[:, [vocab.pad_id, vocab.bos_id, vocab.mask_id, vocab.unk_id]] = False
        tokens = np.array([rng.choice(np.flatnonzero(a)) for a in allowed])
        constraint.advance(rows, tokens)
        for r, t in zip(rows, tokens):
            seqs[r].append(int(t))
    return ["".join(vocab.itos[t] for t in s if t != vocab.eos_id) for s in seqs]
