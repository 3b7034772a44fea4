"""Test set-up: an isolated MOLGEN_HOME and the shared data mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "data"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets a private cache; the data mirror defaults to ../shared/data."""
    home = tmp_path_factory.getbasetemp() / "molgen_home"
    monkeypatch.setenv("MOLGEN_HOME", str(home))
    if not os.environ.get("MOLGEN_DATA_MIRROR") and DEFAULT_MIRROR.is_dir():
        monkeypatch.setenv("MOLGEN_DATA_MIRROR", str(DEFAULT_MIRROR))


def mirror_available() -> bool:
    """Whether the shared data mirror is reachable."""
    path = os.environ.get("MOLGEN_DATA_MIRROR") or str(DEFAULT_MIRROR)
    return (Path(path) / "moses" / "test.csv.gz").is_file()


needs_mirror = pytest.mark.skipif(not mirror_available(), reason="shared data mirror (MOLGEN_DATA_MIRROR) not found")

# Small hand-picked drug-like molecules for fast fixtures.
SMALL_SMILES = [
    "CCO",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "c1ccc2ccccc2c1",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(O)c1ccccc1O",
    "C1CCNCC1",
    "Clc1ccc(Br)cc1",
    "C[C@@H](N)C(=O)O",
    "N#Cc1ccccc1",
    "CC(C)(C)OC(=O)N1CCC(CC1)C(=O)O",
    "c1ccncc1",
]

# Hand-built crystals in the compact text of the crystal domain (rock salt,
# perovskite, CsCl, diamond, fcc copper, wurtzite).
SMALL_CRYSTALS = [
    "4.0 4.0 4.0\n60 60 60\nNa 0.00 0.00 0.00\nCl 0.50 0.50 0.50",
    "3.9 3.9 3.9\n90 90 90\nO 0.00 0.50 0.50\nO 0.50 0.00 0.50\nO 0.50 0.50 0.00\nTi 0.50 0.50 0.50\nSr 0.00 0.00 0.00",
    "4.1 4.1 4.1\n90 90 90\nCl 0.50 0.50 0.50\nCs 0.00 0.00 0.00",
    "3.8 3.8 3.8\n60 60 60\nSi 0.00 0.00 0.00\nSi 0.75 0.75 0.75",
    "3.6 3.6 3.6\n90 90 90\nCu 0.00 0.00 0.00\nCu 0.00 0.50 0.50\nCu 0.50 0.00 0.50\nCu 0.50 0.50 0.00",
    "3.2 3.2 5.2\n90 90 120\nO 0.33 0.67 0.38\nO 0.67 0.33 0.88\nZn 0.33 0.67 0.00\nZn 0.67 0.33 0.50",
]

# Well-known antimicrobial peptides (magainin 2, melittin, LL-37, indolicidin,
# cecropin A fragment, buforin II).
SMALL_PEPTIDES = [
    "GIGKFLHSAKKFGKAFVGEIMNS",
    "GIGAVLKVLTTGLPALISWIKRKRQQ",
    "LLGDFFRKSKEKIGKEFKRIVQRIKDFLRNLVPRTES",
    "ILPWKWPWWPWRR",
    "KWKLFKKIEKVGQNIRDGIIKAGPAVAVVGQATQIAK",
    "TRSSRAGLQFPVGRVHRLLRK",
]


def reconstruction_rate(model, domain) -> float:
    """Fraction of SMALL_SMILES a VAE decodes (greedily, from the posterior
    mean) back to the same molecule."""
    mean, _ = model.encode(SMALL_SMILES)
    decoded = model.decode(mean)
    hits = [domain.try_parse(d) is not None and domain.same(domain.parse(d), domain.parse(s)) for d, s in zip(decoded, SMALL_SMILES)]
    return sum(hits) / len(hits)


@pytest.fixture(scope="session")
def tiny_vae():
    """A tiny SMILES VAE trained for 250 steps on SMALL_SMILES (~8 s), with
    its untrained scores: ``(model, domain, batch, untrained)``."""
    import torch

    from molgen.backbones.vae import SequenceVAE
    from molgen.domains import SmilesDomain

    torch.manual_seed(0)
    domain = SmilesDomain()
    domain.tokenizer.fit(SMALL_SMILES)
    model = SequenceVAE.from_domain(
        domain, d_model=64, n_layers=2, n_heads=4, max_length=64, latent_dim=16, kl_warmup_steps=100, free_bits=0.25
    )
    batch = model.make_batch(SMALL_SMILES)
    model.eval()
    untrained = {
        "elbo": model.log_likelihood(batch).mean().item(),
        "valid": sum(s is not None for s in model.sample(100, seed=0, semantic=False)) / 100,
        "reconstruction": reconstruction_rate(model, domain),
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        model.train()
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model, domain, batch, untrained


@pytest.fixture(scope="session")
def tiny_prior_dir(tmp_path_factory):
    """A small SMILES prior saved as a model directory: the autoregressive
    backbone trained 250 steps on 1,500 NCI molecules shipped with RDKit
    (~10 s); about half its samples are valid."""
    from molgen.core.config import validate
    from molgen.workflows import RunConfig, run_training

    config = validate(RunConfig, {
        "data": {"source": "nci-5k", "limit": 1500},
        "model": {"d_model": 48, "n_layers": 2, "n_heads": 2},
        "train": {"batch_size": 64, "lr": 3e-3, "max_steps": 250, "warmup_steps": 20, "val_every": 250, "progress": False},
    })
    return run_training(config, tmp_path_factory.mktemp("prior")).model_dir
