"""Every tutorial runs on tiny settings, so none goes stale."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGEN_TUTORIAL_STEPS", "3")
    monkeypatch.setenv("MOLGEN_TUTORIAL_SAMPLES", "10")
    monkeypatch.setenv("MOLGEN_TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    assert os.listdir(tmp_path / "out")
