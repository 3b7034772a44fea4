"""Models shipped inside the package (safetensors + JSON), found by name.

Each shipped model is a folder of ``molgen/pretrained/data/``: ``config.json``
and ``model.safetensors`` (what :meth:`Generator.from_pretrained` loads) and
``card.json``, written by ``benchmarks/measure_shipped_models.py``: domain,
backbone, training data, size, the sampling options it is meant to be used
with, and its quality as measured by that script.

Names and paths: wherever molgen takes a model (``molgen sample MODEL``,
``--prior``, ``--generator``, ``Generator.from_pretrained``), ``model:NAME``
is always the shipped model, a value with a path separator (``./zinc250k``,
``runs/x``) is always a path, and a bare ``NAME`` is the shipped model unless
a directory of that name exists here too, which is an error that asks for one
of the two spellings. Data set names never enter this lookup, so ``zinc250k``
the model and ``zinc250k`` the data set cannot be confused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molgen.core.errors import CheckpointError, MolgenError
from molgen.core.paths import shipped_folder

DATA_DIR = Path(__file__).resolve().parent / "data"
MODEL_PREFIX = "model:"
CARD_NAME = "card.json"
CONFIG_NAME = "config.json"

#: Shipped model name -> one-line description (the card's, when one is shipped).
PRETRAINED: dict[str, str] = {
    "zinc250k": "autoregressive SMILES transformer trained on ZINC250k (PMO's prior data)",
    "perov5": "autoregressive crystal-text transformer trained on the Perov-5 training split",
    "amp": "autoregressive peptide transformer trained on the antimicrobial peptides of amp-positive-train",
    "qm9": "graph-diffusion model of QM9 molecular graphs (heavy atoms)",
    "mp20": "autoregressive crystal-text transformer trained on the MP-20 binary/ternary training split, conditionable on band gap",
}


@dataclass
class ModelCard:
    """What a shipped model is and how good it is.

    Attributes:
        name: Shipped name.
        path: Model directory.
        domain: Domain name (``smiles``, ``crystal``, ...).
        backbone: Backbone name.
        data: Training data set.
        parameters: Trainable parameters.
        size_bytes: Size of the weights file.
        description: One line.
        sampling: Sampling options the model is meant to be used with.
        quality: Measured quality figures (metric -> value).
        measured: How and when ``quality`` was measured.
    """

    name: str
    path: Path
    domain: str
    backbone: str
    data: str = ""
    parameters: int | None = None
    size_bytes: int = 0
    description: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)


def pretrained_dir(name: str) -> Path:
    """Directory of a shipped model.

    Args:
        name: A key of :data:`PRETRAINED` (a ``model:`` prefix is accepted).

    Returns:
        The model directory (``config.json`` + ``model.safetensors``).

    Raises:
        CheckpointError: unknown name (listing the shipped ones) or files
            missing from this installation.
    """
    name = name[len(MODEL_PREFIX):] if name.startswith(MODEL_PREFIX) else name
    return shipped_folder(name, PRETRAINED, DATA_DIR / name, "model.safetensors", "model")


def installed_models() -> list[str]:
    """Names of the shipped models present in this installation."""
    return [name for name in PRETRAINED if (DATA_DIR / name / "model.safetensors").is_file()]


def model_card(name: str) -> ModelCard:
    """The card of a shipped model (from its ``card.json``, else from its
    ``config.json`` alone, with no quality figures).

    Args:
        name: Shipped model name.

    Returns:
        The card.

    Raises:
        CheckpointError: unknown or missing model, or an unreadable card.
    """
    folder = pretrained_dir(name)
    name = folder.name
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
        card = json.loads((folder / CARD_NAME).read_text()) if (folder / CARD_NAME).is_file() else {}
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"shipped model {name!r}: unreadable card or config ({exc})") from None
    if not isinstance(card, dict) or not isinstance(config, dict):
        raise CheckpointError(f"shipped model {name!r}: card.json and config.json must hold JSON objects")
    domain = config.get("domain", {})
    return ModelCard(
        name=name,
        path=folder,
        domain=card.get("domain") or (domain.get("name", "") if isinstance(domain, dict) else ""),
        backbone=card.get("backbone") or config.get("backbone", ""),
        data=card.get("data") or config.get("extra", {}).get("data", {}).get("source", ""),
        parameters=card.get("parameters"),
        size_bytes=(folder / "model.safetensors").stat().st_size,
        description=card.get("description") or PRETRAINED[name],
        sampling=dict(card.get("sampling") or {}),
        quality={k: v for k, v in (card.get("quality") or {}).items() if isinstance(v, (int, float))},
        measured=dict(card.get("measured") or {}),
    )


def resolve_model_path(spec: str | Path) -> Path:
    """A model directory from a shipped name, ``model:NAME`` or a path.

    Args:
        spec: ``model:NAME``, a bare shipped ``NAME``, or a model or training
            run directory.

    Returns:
        The directory holding ``config.json`` (a run directory's ``model/``).

    Raises:
        CheckpointError: nothing by that name or path (listing the shipped
            names), or a bare name that is both a shipped model and a
            directory here.
    """
    text = str(spec)
    if text.startswith(MODEL_PREFIX):
        return pretrained_dir(text)
    path = Path(text).expanduser()
    bare = isinstance(spec, str) and "/" not in text and "\\" not in text
    if bare and text in PRETRAINED:
        if path.exists():
            raise MolgenError(
                f"{text!r} is both a shipped model and a path here: write {MODEL_PREFIX}{text} for the shipped "
                f"model or ./{text} for the directory"
            )
        return pretrained_dir(text)
    if (path / CONFIG_NAME).is_file():
        return path
    if (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    shipped = ", ".join(installed_models())
    if not path.exists():
        raise CheckpointError(f"no model directory and no shipped model named {text!r} (shipped: {shipped}; "
                              f"`molgen models` lists them)")
    raise CheckpointError(f"{path} holds no {CONFIG_NAME} (is it a molgen model or run directory?)")


def shipped_name(path: str | Path) -> str | None:
    """The shipped name of a model directory, or None for a user's model."""
    try:
        resolved = Path(path).resolve()
    except OSError:
        return None
    return resolved.name if resolved.parent == DATA_DIR and resolved.name in PRETRAINED else None
