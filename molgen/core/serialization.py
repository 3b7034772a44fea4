"""Model directories: ``config.json`` + ``model.safetensors``. Nothing is ever
pickled or unpickled."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from molgen.core.errors import CheckpointError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def json_safe(data: Any) -> Any:
    """``data`` with every non-finite float (NaN, +-Infinity) replaced by
    None and NumPy scalars and arrays turned into Python values.

    Args:
        data: Nested dicts, lists and tuples of plain values.

    Returns:
        A copy that strict JSON can hold (tuples become lists).
    """
    if isinstance(data, np.ndarray):
        data = data.tolist()
    elif isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [json_safe(value) for value in data]
    return data


def dumps_json(data: Any, **kwargs: Any) -> str:
    """JSON text of ``data`` with NaN and Infinity written as ``null``.

    Python's ``json`` writes bare ``NaN``/``Infinity`` by default, which
    strict readers (JavaScript, jq, pandas with ``orient``...) reject; every
    JSON file or printout molgen makes goes through here.

    Args:
        data: The value (see :func:`json_safe`).
        **kwargs: Passed to :func:`json.dumps` (``indent``, ``sort_keys``).

    Returns:
        The text.

    Raises:
        TypeError: a value JSON cannot hold. (``allow_nan=False`` is a guard:
            :func:`json_safe` has already replaced every non-finite float.)
    """
    return json.dumps(json_safe(data), allow_nan=False, **kwargs)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it when the block ends
    without an error (and is deleted when it raises), so a crash never
    leaves a half-written file behind. molgen's one atomic writer: JSON,
    tensors and CSV tables all go through it.

    Args:
        path: The file to write.

    Yields:
        The temporary path to write (in the same folder, so the final rename is atomic).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, newline: str | None = None) -> Iterator[IO[str]]:
    """Open ``path`` for writing text atomically (see :func:`atomic_path`).

    Args:
        path: The file to write.
        newline: As for :func:`open` (``""`` for the csv module).

    Yields:
        The open file; it replaces ``path`` once closed without an error.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "x", newline=newline) as handle:
            yield handle


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (:func:`atomic_open`). NaN and Infinity are
    written as ``null`` (:func:`dumps_json`)."""
    text = dumps_json(data, indent=2, sort_keys=True)  # before the file: a bad value leaves nothing behind
    with atomic_open(path) as handle:
        handle.write(text + "\n")


def read_json(path: Path) -> Any:
    """Read JSON, turning any failure into :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing {path.name} in {path.parent}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"corrupted {path}: {exc}") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors with safetensors, atomically."""
    with atomic_path(path) as tmp:
        # safetensors rejects shared storage and non-contiguous views.
        save_file({k: v.detach().contiguous().cpu().clone() for k, v in tensors.items()}, str(tmp))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file, turning any failure into :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing {path.name} in {path.parent}")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"corrupted weights file {path}: {exc}") from None


def save_model_dir(
    path: str | Path,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
    extra_json: dict[str, Any] | None = None,
) -> Path:
    """Write a model directory (``config.json`` + ``model.safetensors``).

    The directory is assembled next to its destination and swapped in, so an
    interrupted save never destroys the previous copy.

    Args:
        path: Destination directory.
        config: JSON-serialisable description (class, hyper-parameters, domain).
        state_dict: Model weights.
        extra_tensors: More safetensors files, ``{file name: tensors}``
            (optimizer state in checkpoints).
        extra_json: More JSON files, ``{file name: data}``.

    Returns:
        The directory path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))
    try:
        write_json(staging / CONFIG_NAME, config)
        save_tensors(staging / WEIGHTS_NAME, state_dict)
        for name, tensors in (extra_tensors or {}).items():
            save_tensors(staging / name, tensors)
        for name, data in (extra_json or {}).items():
            write_json(staging / name, data)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_model_dir(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a model directory written by :func:`save_model_dir`.

    Args:
        path: The directory.
        device: Where to put the tensors.

    Returns:
        ``(config, state_dict)``.

    Raises:
        CheckpointError: missing directory, missing or corrupted files.
    """
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"model directory not found: {path}")
    config = read_json(path / CONFIG_NAME)
    if not isinstance(config, dict):
        raise CheckpointError(f"corrupted {path / CONFIG_NAME}: expected a JSON object")
    return config, load_tensors(path / WEIGHTS_NAME, device)


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested structure (e.g. an optimizer ``state_dict``) into a flat
    dict of tensors and a JSON-serialisable skeleton with references.

    Args:
        state: Nested dicts/lists of tensors and plain values.
        prefix: Key prefix for the tensors.

    Returns:
        ``(tensors, skeleton)``; :func:`unflatten_state` reverses it.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, key: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[key] = obj
            return {"__tensor__": key}
        if isinstance(obj, dict):
            # JSON keys are strings; remember int keys (optimizer param ids).
            return {
                "__dict__": [[k, walk(v, f"{key}.{k}")] for k, v in obj.items()],
            }
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(obj)]
        return obj

    skeleton = walk(state, prefix or "s")
    return tensors, skeleton


def unflatten_state(tensors: dict[str, torch.Tensor], skeleton: Any) -> Any:
    """Inverse of :func:`flatten_state`."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, dict) and "__tensor__" in obj:
            try:
                return tensors[obj["__tensor__"]]
            except KeyError:
                raise CheckpointError(f"checkpoint is missing tensor {obj['__tensor__']!r}") from None
        if isinstance(obj, dict) and "__dict__" in obj:
            return {k: walk(v) for k, v in obj["__dict__"]}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        return obj

    return walk(skeleton)
