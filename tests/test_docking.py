"""Docking through dockstring (optional extra ``molgen[docking]``): one real
AutoDock Vina call, and failures that become NaN with a reason."""

from __future__ import annotations

import math

import pytest

from molgen.core.errors import MolgenError
from molgen.domains import SmilesDomain
from molgen.scoring import Objective, Term, build_component


def _installed() -> bool:
    try:
        import dockstring  # noqa: F401
        import openbabel  # noqa: F401
    except ImportError:
        return False
    return True


needs_dockstring = pytest.mark.skipif(not _installed(), reason="optional extra molgen[docking] not installed")


def test_missing_extra_gives_the_install_hint(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dockstring(name, *args, **kwargs):
        if name == "dockstring":
            raise ImportError("No module named 'dockstring'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dockstring)
    with pytest.raises(MolgenError, match=r"pip install 'molgen\[docking\]'"):
        build_component("docking", {"target": "DRD2"})


@needs_dockstring
def test_unknown_target_is_a_clear_error():
    with pytest.raises(MolgenError, match="NOT_A_TARGET"):
        build_component("docking", {"target": "NOT_A_TARGET"})


@pytest.mark.slow
@needs_dockstring
def test_real_vina_docking_scores_and_keeps_the_pose():
    domain = SmilesDomain()
    component = build_component("docking", {"target": "DRD2", "num_cpus": 2})
    # Paracetamol docks in about a minute on 2 CPU cores; a two-fragment
    # SMILES cannot be docked and must come back as NaN with the reason.
    mols = [domain.parse("CC(=O)Nc1ccc(O)cc1"), domain.parse("CCO.c1ccccc1"), None]
    objective = Objective([Term(component, 1.0)])
    table = objective(mols)
    score = table.raw[component.name]
    assert -12 < score[0] < -2, score  # Vina kcal/mol for a small ligand
    assert math.isnan(score[1]) and table.reasons[1]
    assert math.isnan(score[2]) and table.reasons[2] == "invalid object"
    assert "M  END" in next(iter(component.fn.poses.values()))


def test_obabel_next_to_the_interpreter_is_found_without_an_activated_venv(tmp_path, monkeypatch):
    from molgen.scoring import docking

    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(docking.sys, "executable", str(bin_dir / "python"))
    monkeypatch.setattr(docking.sysconfig, "get_path", lambda name: str(bin_dir))
    with pytest.raises(MolgenError, match="'obabel' command"):
        docking._ensure_obabel_on_path()
    obabel = bin_dir / "obabel"
    obabel.write_text("#!/bin/sh\n")
    obabel.chmod(0o755)
    docking._ensure_obabel_on_path()
    assert docking.os.environ["PATH"].split(docking.os.pathsep)[0] == str(bin_dir)
