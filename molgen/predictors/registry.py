"""Predictor registries and the one loader of saved predictors.

The saved format, shared by every kind: a directory holding ``config.json``
whose ``"predictor"`` names the kind and ``"format_version"`` its layout, and
``model.safetensors`` with the weights (a composite model, such as the
two-stage band-gap model, holds its members as sub-directories in the same
format). Nothing is pickled. :func:`load_predictor` reads the kind and hands
the directory to the class registered under it.

The families (:mod:`~molgen.predictors.molecules`,
:mod:`~molgen.predictors.crystals`, :mod:`~molgen.predictors.peptides`)
register their classes when imported; the registries import them on first
lookup, so this module (and :mod:`~molgen.predictors.base`, which dispatches
through it) never imports a family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch

from molgen.core.errors import CheckpointError
from molgen.core.registry import Registry
from molgen.core.serialization import read_json
from molgen.pretrained.predictors import predictor_dir

__all__ = ["KINDS", "PREDICTORS", "load_predictor", "read_saved_config", "register", "saved_kind"]

T = TypeVar("T", bound=type)

_FAMILIES = ("molgen.predictors.molecules", "molgen.predictors.forest", "molgen.predictors.consensus",
             "molgen.predictors.calibrated",
             "molgen.predictors.crystals", "molgen.predictors.peptides")
#: Kinds whose older files name them as ``"kind"`` (the AMP classifier's format before the unification).
_LEGACY_KINDS = frozenset({"amp-cnn"})


class _ClassRegistry(Registry):
    """A :class:`~molgen.core.registry.Registry` that also reads like a dict
    of classes (``PREDICTORS[name]``, ``sorted(PREDICTORS)``)."""

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


#: Every saved kind (``config.json``'s ``"predictor"``) -> its class (with a ``load(directory, device=)``).
KINDS: _ClassRegistry = _ClassRegistry("predictor", autoload=_FAMILIES)
#: Deep-ensemble predictors that ``fit-predictor`` trains: name -> class with
#: ``cls(task=..., seed=..., **hparams)``, ``fit``, ``predict -> (mean, std)``.
PREDICTORS: _ClassRegistry = _ClassRegistry("predictor", autoload=_FAMILIES)


def register(*, trainable: bool) -> Callable[[T], T]:
    """Class decorator: file a predictor class under its ``name``.

    Args:
        trainable: Also list it in :data:`PREDICTORS` (a deep ensemble that
            ``fit-predictor`` can build from ``task``, ``seed`` and hyper-parameters).

    Returns:
        The decorator (it returns the class unchanged).
    """

    def add(cls: T) -> T:
        KINDS.register(cls.name, cls)
        if trainable:
            PREDICTORS.register(cls.name, cls)
        return cls

    return add


def saved_kind(config: Any, directory: Path) -> str:
    """The kind named by a saved predictor's ``config.json``.

    Args:
        config: The parsed ``config.json``.
        directory: Its directory (for messages).

    Returns:
        The kind (files of the older AMP format, ``{"kind": "amp-cnn"}``, count as ``amp-cnn``).

    Raises:
        CheckpointError: the config describes no property predictor.
    """
    if isinstance(config, dict):
        if "predictor" in config:
            return str(config["predictor"])
        if config.get("kind") in _LEGACY_KINDS:
            return str(config["kind"])
    raise CheckpointError(f"{directory / 'config.json'} does not describe a property predictor")


def read_saved_config(directory: Path, kind: str, versions: tuple[int, ...]) -> dict[str, Any]:
    """A saved predictor's ``config.json``, checked to be of ``kind`` in a known format.

    Args:
        directory: The saved predictor's directory.
        kind: The kind the caller loads (its ``name``).
        versions: The ``format_version`` values the caller can read.

    Returns:
        The parsed config.

    Raises:
        CheckpointError: missing file, another kind, or an unknown format.
    """
    config = read_json(Path(directory) / "config.json")
    if not isinstance(config, dict) or config.get("predictor") != kind or config.get("format_version") not in versions:
        raise CheckpointError(f"{directory} does not hold a {kind!r} predictor of format {' or '.join(map(str, versions))}")
    return config


def load_predictor(directory: str | Path, device: str | torch.device = "cpu") -> Any:
    """Load any saved predictor, choosing the class from ``config.json``.

    Args:
        directory: A directory written by a predictor's ``save``, or the name
            of a shipped predictor (:data:`~molgen.pretrained.predictors.SHIPPED_PREDICTORS`).
        device: Where to put the networks.

    Returns:
        The loaded predictor.

    Raises:
        CheckpointError: missing or corrupted files.
        RegistryError: the saved kind is not registered (listing the known ones).
    """
    directory = predictor_dir(directory)
    kind = saved_kind(read_json(directory / "config.json"), directory)
    return KINDS.get(kind).load(directory, device=device)
