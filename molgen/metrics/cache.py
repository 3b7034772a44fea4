"""On-disk cache of statistics of a reference set, keyed by the set's content
hash, so a second evaluation against the same reference skips that work.
Arrays are stored as safetensors and everything else as JSON: no pickle."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from safetensors.numpy import load_file, save_file

from molgen.core.paths import molgen_home
from molgen.core.serialization import read_json, write_json

#: Bump when the meaning of a cached artefact changes.
CACHE_VERSION = 1


def content_hash(texts: Sequence[str]) -> str:
    """sha256 of the texts joined by newlines (order matters)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def default_cache_root() -> Path:
    """``MOLGEN_HOME/metrics``."""
    return molgen_home() / "metrics"


class StatsCache:
    """Named artefacts of one data set under ``root/<hash[:16]>-v<version>/``.

    Args:
        root: Cache root; None disables caching (everything is recomputed).
        data_hash: Content hash of the data set.
    """

    def __init__(self, root: Path | None, data_hash: str) -> None:
        self.directory = None if root is None else Path(root) / f"{data_hash[:16]}-v{CACHE_VERSION}"
        self.hits: list[str] = []

    def arrays(self, name: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Load the arrays stored as ``name``, or compute and store them."""
        path = None if self.directory is None else self.directory / f"{name}.safetensors"
        if path is not None and path.is_file():
            try:
                loaded = load_file(str(path))
                self.hits.append(name)
                return loaded
            except Exception:  # a torn or foreign file: recompute and overwrite
                pass
        value = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            save_file({k: np.ascontiguousarray(v) for k, v in value.items()}, str(tmp))
            tmp.replace(path)
        return value

    def json(self, name: str, compute: Callable[[], Any]) -> Any:
        """Load the JSON value stored as ``name``, or compute and store it."""
        path = None if self.directory is None else self.directory / f"{name}.json"
        if path is not None and path.is_file():
            try:
                loaded = read_json(path)
                self.hits.append(name)
                return loaded
            except Exception:
                pass
        value = compute()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_json(path, value)
        return value
