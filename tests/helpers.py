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
