"""Typed configuration: TOML files validated by pydantic models that reject
unknown keys, with errors that name the offending key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from molgen.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are
    validated on assignment too, and no number may be NaN or infinite (one
    ``inf`` weight or sigma would otherwise turn a whole run into NaN)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


def format_validation_error(exc: ValidationError, where: str = "") -> str:
    """One readable line per problem, each naming the dotted key."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}")
        else:
            problems.append(f"{key!r}: {err['msg']}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(problems)


def validate(model_cls: type[M], data: dict[str, Any], where: str = "") -> M:
    """Validate ``data`` against ``model_cls``.

    Args:
        model_cls: A :class:`StrictModel` subclass.
        data: Raw values (from TOML, JSON or keyword arguments).
        where: Context for the error message (file name or section).

    Returns:
        The validated model.

    Raises:
        ConfigError: naming each bad or unknown key.
    """
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict.

    Raises:
        ConfigError: missing file or TOML syntax error.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a byte-order mark (Windows editors) is not TOML
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(model_cls: type[M], path: str | Path) -> M:
    """Read and validate a TOML config file.

    Args:
        model_cls: The config model.
        path: TOML file.

    Returns:
        The validated config.
    """
    return validate(model_cls, read_toml(path), where=str(path))
