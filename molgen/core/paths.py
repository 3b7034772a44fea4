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


def shipped_folder(name: str, shipped: dict[str, str], folder: Path, marker: str, kind: str) -> Path:
    """The folder of something shipped inside the package, found by name.

    Args:
        name: A key of ``shipped``.
        shipped: Shipped names -> descriptions.
        folder: Where this installation keeps it.
        marker: A file the folder must hold.
        kind: What it is, for messages ("model", "predictor").

    Returns:
        ``folder``.

    Raises:
        CheckpointError: unknown name (listing the shipped ones) or files
            missing from this installation.
    """
    from molgen.core.errors import CheckpointError

    if name not in shipped:
        raise CheckpointError(f"no shipped {kind} named {name!r}; shipped: {', '.join(sorted(shipped))}")
    if not (folder / marker).is_file():
        raise CheckpointError(f"shipped {kind} {name!r} is missing from this installation ({folder})")
    return folder
