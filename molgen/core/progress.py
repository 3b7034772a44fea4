"""Progress bars for long commands: one switch for every command.

Bars go to stderr through tqdm and switch themselves off when stderr is not a
terminal (logs and CI stay clean); ``enabled=False`` (the CLI's ``--quiet``)
turns them off everywhere.
"""

from __future__ import annotations

from typing import Iterable, TypeVar

T = TypeVar("T")


def progress_bar(total: int | None = None, *, desc: str = "", unit: str = "it", enabled: bool = True, initial: int = 0):
    """A tqdm bar (a context manager with ``update(n)``).

    Args:
        total: Expected count (None: unknown).
        desc: Label shown before the bar.
        unit: What is counted.
        enabled: False gives a silent bar.
        initial: Count already done (resumed work).

    Returns:
        The bar.
    """
    from tqdm.auto import tqdm

    # disable=None: off when stderr is not a TTY.
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=None if enabled else True, dynamic_ncols=True, leave=False)


def progress_iter(items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True) -> Iterable[T]:
    """Iterate over ``items`` with a bar (see :func:`progress_bar`)."""
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=desc, unit=unit, disable=None if enabled else True, dynamic_ncols=True, leave=False)
