"""Device selection. The library never moves models on its own; the CLI calls
:func:`select_device` and passes the result down."""

from __future__ import annotations

import torch

from molgen.core.errors import ConfigError


def select_device(preference: str = "auto") -> torch.device:
    """Resolve a device preference.

    Args:
        preference: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``,
            ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The device.

    Raises:
        ConfigError: CUDA was asked for but is not available.
    """
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {preference!r}: use auto, cpu or cuda[:N]") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {preference!r} requested but CUDA is not available")
    return device

