"""CHGNet relaxation oracle: a real relaxation of SrTiO3, the screening and
sanity statuses (with the optimizer stubbed), the elemental-reference cache
and the install hint."""

from __future__ import annotations

import json
import math
import sys

import pytest
from pymatgen.core import Lattice, Structure

from molgen.core.config import validate
from molgen.core.errors import ConfigError, MolgenError
from molgen.physics import relaxation as potential
from molgen.physics.relaxation import (
    CHGNetRelaxer,
    RelaxResult,
    RelaxSettings,
    elemental_references,
    formation_energy_per_atom,
    references_path,
    relax_structure,
)


def srtio3(a: float = 4.0) -> Structure:
    """Cubic perovskite SrTiO3 (5 atoms)."""
    return Structure(
        Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """CHGNet's tiny graphs gain nothing from threads and slow down badly when
    a core is busy (18 s instead of 0.6 s for SrTiO3 with 2 threads on 2
    shared cores), so this module runs torch single-threaded."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fresh_references(monkeypatch, tmp_path):
    """Empty reference caches: in memory, and on disk in a MOLGEN_HOME of this
    test's own (the suite's shared one may hold references of other tests)."""
    monkeypatch.setattr(potential, "_REFERENCES", {})
    monkeypatch.setenv("MOLGEN_HOME", str(tmp_path / "home"))


@pytest.fixture
def stub_model(monkeypatch):
    """No CHGNet: the calculator is a placeholder, the optimizer is set per test."""
    monkeypatch.setattr(potential, "_calculator", lambda model, device: object())

    def returns(energy_per_atom: float, volume_scale: float = 1.0, converged: bool = True):
        def run(calculator, structure, **kwargs):
            final = structure.copy()
            final.scale_lattice(structure.volume * volume_scale)
            return potential._Outcome(final, energy_per_atom * len(structure), 7, converged)

        monkeypatch.setattr(potential, "_run_relaxation", run)

    return returns


@pytest.fixture(scope="module")
def relaxed_srtio3(tmp_path_factory):
    """A real CHGNet relaxation with the formation proxy (relaxes Sr, Ti and O
    references once, into a private MOLGEN_HOME): ``(result, home)``."""
    pytest.importorskip("chgnet")
    home = tmp_path_factory.mktemp("potential_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOLGEN_HOME", str(home))
        patch.setattr(potential, "_REFERENCES", {})
        result = CHGNetRelaxer().relax(srtio3())
    return result, home


def test_real_relaxation_of_srtio3(relaxed_srtio3):
    result, home = relaxed_srtio3
    assert result.status == "ok" and result.error is None
    assert -8.7 < result.energy_per_atom < -8.1
    assert result.formation_energy_per_atom is not None and result.formation_energy_per_atom < -2.0
    assert 0 < result.steps < RelaxSettings().steps
    assert result.initial_volume == pytest.approx(64.0)
    assert result.final_volume == pytest.approx(result.final_structure.volume)
    cached = json.loads((home / "potential" / "chgnet-0.3.0-references.json").read_text())
    assert set(cached["references"]) == {"O", "Sr", "Ti"}
    # JSON round trip.
    again = RelaxResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again.energy_per_atom == result.energy_per_atom
    assert again.final_structure == result.final_structure


def test_relax_structure_payload_uses_the_cached_model(relaxed_srtio3):
    out = relax_structure({"structure": srtio3(3.95).as_dict(), "settings": {"formation_energy": False}})
    assert out["status"] == "ok", out["error"]
    assert out["formation_energy_per_atom"] is None
    assert out["seconds"] < 30  # no model reload
    assert math.isclose(out["energy_per_atom"], relaxed_srtio3[0].energy_per_atom, abs_tol=0.02)


def test_overlapping_atoms_are_rejected_before_the_model(monkeypatch):
    def no_model(*args):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(potential, "_calculator", no_model)
    structure = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.05, 0, 0]])
    result = relax_structure({"structure": structure.as_dict()})
    assert result["status"] == "rejected"
    assert "0.200 A apart" in result["error"]
    assert result["energy_per_atom"] is None and result["final_structure"] is None


def test_model_exception_becomes_failed(stub_model, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(potential, "_run_relaxation", boom)
    result = relax_structure({"structure": srtio3().as_dict()})
    assert result["status"] == "failed" and result["error"] == "RuntimeError: boom"
    # A malformed payload fails the same way instead of raising.
    assert relax_structure({"structure": {"nonsense": 1}})["status"] == "failed"
    assert relax_structure({"structure": srtio3().as_dict(), "settings": {"stepz": 3}})["error"].startswith("ConfigError")


@pytest.mark.parametrize(
    "energy, volume_scale, fragment",
    [(math.nan, 1.0, "non-finite energy"), (-80.0, 1.0, "outside the bounds"), (-5.0, 10.0, "volume changed")],
)
def test_runaway_relaxations_are_diverged(stub_model, energy, volume_scale, fragment):
    stub_model(energy, volume_scale)
    result = CHGNetRelaxer(RelaxSettings(formation_energy=False)).relax(srtio3())
    assert result.status == "diverged" and fragment in result.error
    assert result.formation_energy_per_atom is None
    json.dumps(result.to_dict(), allow_nan=False)  # still valid JSON


def test_step_limit_is_unconverged_with_energies(stub_model, fresh_references, monkeypatch):
    stub_model(-8.0, converged=False)
    monkeypatch.setattr(potential, "elemental_references", lambda elements, settings, device: {"Sr": -1.0, "Ti": -7.0, "O": -5.0})
    result = CHGNetRelaxer(RelaxSettings(steps=7)).relax(srtio3())
    assert result.status == "unconverged" and "within 7 steps" in result.error
    assert result.energy_per_atom == -8.0 and result.steps == 7
    assert result.formation_energy_per_atom == pytest.approx((-40.0 - (-1.0 - 7.0 - 15.0)) / 5)


def test_reference_cache_is_written_reused_and_repaired(fresh_references, monkeypatch):
    computed: list[str] = []

    def fake_reference(symbol, model, device):
        computed.append(symbol)
        return {"energy_per_atom": -float(len(symbol)), "structure": "fake", "steps": 1, "converged": True}

    monkeypatch.setattr(potential, "_relax_reference", fake_reference)
    settings = RelaxSettings()
    assert elemental_references(["Sr"], settings) == {"Sr": -2.0}
    assert elemental_references(["Sr", "O"], settings) == {"O": -1.0, "Sr": -2.0}
    assert computed == ["Sr", "O"]  # only the missing element is computed
    path = references_path(settings.model)
    assert set(json.loads(path.read_text())["references"]) == {"O", "Sr"}

    # A new process (empty memory) reads the file instead of relaxing.
    monkeypatch.setattr(potential, "_REFERENCES", {})
    monkeypatch.setattr(potential, "_relax_reference", lambda *args: pytest.fail("recomputed a cached reference"))
    assert elemental_references(["O", "Sr"], settings) == {"O": -1.0, "Sr": -2.0}

    # A corrupt file is recomputed and rewritten.
    path.write_text("{not json")
    monkeypatch.setattr(potential, "_REFERENCES", {})
    monkeypatch.setattr(potential, "_relax_reference", fake_reference)
    assert elemental_references(["O"], settings) == {"O": -1.0}
    assert computed == ["Sr", "O", "O"]
    assert json.loads(path.read_text())["references"]["O"]["energy_per_atom"] == -1.0


def test_formation_energy_arithmetic():
    references = {"Sr": -1.0, "Ti": -7.0, "O": -5.0}
    assert formation_energy_per_atom(srtio3(), -8.0, references) == pytest.approx(-3.4)
    assert formation_energy_per_atom(srtio3(), -8.0, {"Sr": -1.0}) is None
    assert formation_energy_per_atom(srtio3(), math.nan, references) is None


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="valid names: chgnet-0.3.0"):
        validate(RelaxSettings, {"model": "mace"})
    with pytest.raises(ConfigError, match="low < high"):
        validate(RelaxSettings, {"energy_bounds": [5.0, -5.0]})


def test_missing_chgnet_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "chgnet", None)
    monkeypatch.setitem(sys.modules, "chgnet.model", None)
    monkeypatch.setattr(potential, "_CALCULATORS", {})
    with pytest.raises(MolgenError, match=r"pip install 'molgen\[potential\]'"):
        CHGNetRelaxer()
    result = relax_structure({"structure": srtio3().as_dict()})
    assert result["status"] == "failed" and "molgen[potential]" in result["error"]
