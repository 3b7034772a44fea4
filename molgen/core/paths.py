"""Filesystem locations: ``MOLGEN_HOME`` cache and the data mirror."""

from __future__ import annotations

import os
from pathlib import Path


def molgen_home() -> Path:
    """Root of molgen's cache (``$MOLGEN_HOME``, default ``~/.cache/molgen``)."""
    return Path(os.environ.get("MOLGEN_HOME") or Path.home() / ".cache" / "molgen").expanduser()


def data_mirror() -> Path | None:
    """Local mirror of the data sets (``$MOLGEN_DATA_MIRROR``), if set."""
    value = os.environ.get("MOLGEN_DATA_MIRROR")
    return Path(value).expanduser() if value else None
