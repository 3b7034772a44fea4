"""Every tutorial runs on tiny settings, so none goes stale."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from conftest import needs_mirror

#: A tutorial that reads the real data sets says so on a line of its own.
NEEDS_DATA = "# needs: data mirror"


def _tutorial_param(path: Path):
    """A tutorial as a test case, marked ``data`` (and skipped without the
    mirror) when it says it reads the real data sets."""
    marks = [pytest.mark.data, needs_mirror] if NEEDS_DATA in path.read_text() else []
    return pytest.param(path, marks=marks, id=path.name)


TUTORIALS = [_tutorial_param(p) for p in sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.py"))]


@pytest.mark.parametrize("path", TUTORIALS)
def test_tutorial_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MOLGEN_TUTORIAL_STEPS", "3")
    monkeypatch.setenv("MOLGEN_TUTORIAL_SAMPLES", "10")
    monkeypatch.setenv("MOLGEN_TUTORIAL_OUT", str(tmp_path / "out"))
    mirror = os.environ.get("MOLGEN_DATA_MIRROR")
    if mirror:  # a relative mirror path must survive the change of directory
        monkeypatch.setenv("MOLGEN_DATA_MIRROR", str(Path(mirror).resolve()))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(path), run_name="__main__")
    assert os.listdir(tmp_path / "out")
