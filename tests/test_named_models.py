"""Shipped models by name: lookup rules, the CLI, and the sampling defaults
that come with a model (crystals under their grammar and site exclusion)."""

from __future__ import annotations

import json

import pytest

from molgen.backbones.base import Generator, TokenGenerator
from molgen.cli.main import main
from molgen.core.errors import MolgenError
from molgen.pretrained import MODEL_PREFIX, installed_models, model_card, pretrained_dir, resolve_model_path, shipped_name


def test_names_prefix_and_paths_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("zinc250k") == pretrained_dir("zinc250k")
    assert resolve_model_path(MODEL_PREFIX + "zinc250k") == pretrained_dir("zinc250k")
    assert resolve_model_path(str(pretrained_dir("perov5"))) == pretrained_dir("perov5")
    assert shipped_name(pretrained_dir("perov5")) == "perov5"
    assert shipped_name(tmp_path) is None


def test_a_name_that_is_also_a_directory_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zinc250k").mkdir()
    with pytest.raises(MolgenError, match="model:zinc250k"):
        resolve_model_path("zinc250k")
    assert resolve_model_path("model:zinc250k") == pretrained_dir("zinc250k")
    with pytest.raises(MolgenError, match="holds no config.json"):
        resolve_model_path("./zinc250k")


def test_unknown_name_lists_the_shipped_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MolgenError, match="zinc250k"):
        resolve_model_path("no-such-model")
    with pytest.raises(MolgenError, match="shipped"):
        resolve_model_path("model:no-such-model")


def test_from_pretrained_takes_a_name():
    model = Generator.from_pretrained("zinc250k")
    assert model.domain.name == "smiles"
    assert sum(s is not None for s in model.sample(16, seed=0)) >= 10


def test_every_installed_model_has_a_card():
    names = installed_models()
    assert {"zinc250k", "perov5"} <= set(names)
    for name in names:
        card = model_card(name)
        assert card.domain and card.backbone and card.size_bytes > 0


def test_crystal_sampling_is_constrained_by_default():
    model = Generator.from_pretrained("perov5")
    assert model.grammar_flags(None, None) == (True, True)
    assert model.grammar_flags(False, None) == (False, False)
    assert model.grammar_flags(True, False) == (True, False)
    smiles = Generator.from_pretrained("zinc250k")
    assert smiles.grammar_flags(None, None) == (False, True)  # no grammar; the SMILES syntax rule is on
    # The default is the constrained sampler: the same draws as asking for it.
    assert model.sample_texts(4, seed=3) == model.sample_texts(4, seed=3, constrained=True, semantic=True)


def test_an_untrained_crystal_model_samples_parsable_text_by_default():
    import torch

    from molgen.backbones.autoregressive import AutoregressiveTransformer
    from molgen.domains.crystal import CrystalDomain

    torch.manual_seed(0)
    domain = CrystalDomain()
    model = AutoregressiveTransformer.from_domain(domain, d_model=32, n_layers=1, n_heads=2, max_length=60)
    default = [domain.try_parse(t) for t in model.sample_texts(16, seed=0)]
    free = [domain.try_parse(t) for t in model.sample_texts(16, seed=0, constrained=False)]
    # Untrained: free text almost never parses; under the grammar only random angles that close no cell fail.
    assert sum(o is not None for o in default) >= sum(o is not None for o in free) + 4


def test_cli_models_lists_cards(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "zinc250k" in out and "perov5" in out
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} >= {"zinc250k", "perov5"}


def test_cli_samples_a_shipped_model_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", "zinc250k", "-n", "20", "-q", "-o", "z.smi"]) == 0
    lines = (tmp_path / "z.smi").read_text().splitlines()
    assert len(lines) == 20
    assert main(["sample", "model:perov5", "-n", "6", "-q", "-o", "p.csv"]) == 0
    assert "validity 1.000" in capsys.readouterr().out  # constrained + site exclusion by default
    seen = []
    original = TokenGenerator.sample_texts
    monkeypatch.setattr(TokenGenerator, "sample_texts", lambda self, n, **kw: seen.append(kw) or original(self, n, **kw))
    assert main(["sample", "perov5", "-n", "2", "-q", "--no-constrained", "-o", "free.csv"]) == 0
    assert seen[-1]["constrained"] is False
    assert main(["sample", "perov5", "-n", "2", "-q", "--no-semantic", "-o", "loose.csv"]) == 0
    assert seen[-1].get("constrained") in (None, True) and seen[-1]["semantic"] is False


def test_cli_ambiguous_name_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "perov5").mkdir()
    assert main(["sample", "perov5", "-n", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("molgen: error:") and "model:perov5" in err[0]


def test_sampling_with_a_progress_bar_draws_the_same(tmp_path):
    from molgen.workflows.sampling import sample_to_file

    model = Generator.from_pretrained("zinc250k")
    a = sample_to_file(model, 10, tmp_path / "a.smi", seed=1, batch_size=4, progress=True)
    b = sample_to_file(model, 10, tmp_path / "b.smi", seed=1, batch_size=4, progress=False)
    assert (tmp_path / "a.smi").read_text() == (tmp_path / "b.smi").read_text()
    assert a.n == b.n == 10
