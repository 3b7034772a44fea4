"""Every model shipped under molgen/pretrained/data has a card that describes
it and loads, and samples valid objects with the card's sampling options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from molgen.backbones.base import Generator

DATA = Path(__file__).resolve().parents[1] / "molgen" / "pretrained" / "data"
SHIPPED = sorted(p.name for p in DATA.iterdir() if (p / "model.safetensors").is_file())

CARD_KEYS = {"name", "domain", "backbone", "data", "parameters", "description", "sampling", "quality", "measured"}
MEASURED_KEYS = {"date", "machine", "n_samples", "seed", "threads", "command"}

# Few denoising steps keep a graph-diffusion model's check fast (its default is 100).
FAST_STEPS = 20


def read_card(name: str) -> dict:
    return json.loads((DATA / name / "card.json").read_text())


def test_the_four_domains_ship_a_model():
    assert {"zinc250k", "perov5", "amp", "qm9"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_card_describes_the_model(name):
    card = read_card(name)
    assert CARD_KEYS <= set(card), f"card.json of {name} lacks {CARD_KEYS - set(card)}"
    assert MEASURED_KEYS <= set(card["measured"])
    config = json.loads((DATA / name / "config.json").read_text())
    assert card["name"] == name
    assert card["domain"] == config["domain"]["name"] and card["backbone"] == config["backbone"]
    assert card["data"] == config["extra"]["data"]["source"]
    assert "path" not in config["extra"]["data"], "local paths must not be shipped"
    assert isinstance(card["description"], str) and "\n" not in card["description"]
    assert isinstance(card["sampling"], dict)
    assert card["quality"] and all(isinstance(v, float) for v in card["quality"].values())
    assert 0.0 < card["quality"]["valid"] <= 1.0
    assert card["measured"]["n_samples"] > 0 and isinstance(card["measured"]["seed"], int)


@pytest.mark.parametrize("name", SHIPPED)
def test_model_loads_and_samples_with_card_options(name):
    card = read_card(name)
    model = Generator.from_pretrained(DATA / name)
    assert model.num_parameters() == card["parameters"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    options = dict(card["sampling"])
    assert set(options) <= model.sampling_options()
    if "steps" in model.sampling_options():
        options["steps"] = FAST_STEPS
    objects = model.sample(8, seed=0, **options)
    assert len(objects) == 8
    valid = sum(obj is not None for obj in objects)
    if "steps" in options:  # a shortened denoising chain: some valid graphs
        assert valid >= 1
    else:  # the model as shipped: most samples valid
        assert valid >= 5, f"{name}: only {valid} of 8 samples valid"
