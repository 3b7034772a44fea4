"""core/: registries, typed config, seeding, devices, safetensors persistence."""

from __future__ import annotations

import json

import pytest
import torch

from molgen.core.config import StrictModel, load_config, validate
from molgen.core.device import select_device
from molgen.core.errors import CheckpointError, ConfigError, RegistryError
from molgen.core.registry import BACKBONES, DATASETS, DOMAINS, Registry
from molgen.core.seeding import make_generator
from molgen.core.serialization import (
    flatten_state,
    load_model_dir,
    save_model_dir,
    unflatten_state,
)


def test_registry_lookup_error_lists_valid_names():
    reg = Registry("widget")
    reg.register("alpha", 1)
    reg.register("beta", 2)
    with pytest.raises(RegistryError, match=r"unknown widget 'gamma'; valid names: alpha, beta"):
        reg.get("gamma")
    assert reg.get("beta") == 2


def test_global_registries_autoload():
    assert "smiles" in DOMAINS.names()
    assert "autoregressive" in BACKBONES.names()
    assert {"moses-train", "moses-test", "nci-5k"} <= set(DATASETS.names())


class _Section(StrictModel):
    size: int = 3
    name: str = "x"


class _Config(StrictModel):
    section: _Section = _Section()
    rate: float = 0.1


def test_config_rejects_unknown_key_naming_it(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("rate = 0.5\n[section]\nsize = 4\ncolour = 'red'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'section.colour'"):
        load_config(_Config, path)


def test_config_reads_valid_toml_and_reports_bad_types(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("rate = 0.5\n[section]\nsize = 4\n")
    cfg = load_config(_Config, path)
    assert cfg.rate == 0.5 and cfg.section.size == 4
    with pytest.raises(ConfigError, match="'section.size'"):
        validate(_Config, {"section": {"size": "many"}})
    bad = tmp_path / "bad.toml"
    bad.write_text("rate = = 1")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(_Config, bad)
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Config, tmp_path / "missing.toml")


def test_seeded_generators_repeat_and_differ():
    a = torch.rand(5, generator=make_generator(1))
    b = torch.rand(5, generator=make_generator(1))
    c = torch.rand(5, generator=make_generator(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            select_device("cuda")


def test_model_dir_round_trip_and_corruption(tmp_path):
    state = {"w": torch.randn(3, 4), "b": torch.arange(3)}
    path = save_model_dir(tmp_path / "m", {"kind": "test"}, state)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    config, loaded = load_model_dir(path)
    assert config == {"kind": "test"} and torch.equal(loaded["w"], state["w"])
    # Saving again replaces the directory atomically.
    save_model_dir(path, {"kind": "again"}, state)
    assert load_model_dir(path)[0] == {"kind": "again"}

    (path / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupted weights"):
        load_model_dir(path)
    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_model_dir(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_model_dir(tmp_path / "nowhere")


def test_optimizer_state_flattens_without_pickle():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, skeleton = flatten_state(opt.state_dict())
    json.dumps(skeleton)  # the non-tensor part is plain JSON
    restored = unflatten_state(tensors, json.loads(json.dumps(skeleton)))
    opt2 = torch.optim.AdamW(model.parameters())
    opt2.load_state_dict(restored)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_registry_error_is_key_error_with_plain_message():
    with pytest.raises(KeyError) as info:
        DOMAINS.get("nope")
    assert str(info.value).startswith("unknown domain 'nope'; valid names:")
