"""Sample a saved generator into a file, keeping invalid samples marked."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from molgen.backbones.base import Generator
from molgen.core.errors import CheckpointError, MolgenError
from molgen.core.serialization import CONFIG_NAME

FORMATS = (".smi", ".csv", ".txt")


@dataclass
class SampleStats:
    """Figures of one sampling call."""

    n: int
    n_valid: int
    n_unique: int
    seconds: float
    path: Path | None

    @property
    def validity(self) -> float:
        """Fraction of samples that parse as valid objects."""
        return self.n_valid / self.n if self.n else 0.0

    @property
    def uniqueness(self) -> float:
        """Unique canonical keys among valid samples."""
        return self.n_unique / self.n_valid if self.n_valid else 0.0

    @property
    def per_second(self) -> float:
        """Samples drawn per second (decoding and validation included)."""
        return self.n / self.seconds if self.seconds else float("inf")


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory, or a training run directory holding ``model/``.

    Raises:
        CheckpointError: neither exists.
    """
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    if (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    if not path.exists():
        raise CheckpointError(f"model directory not found: {path}")
    raise CheckpointError(f"{path} holds no {CONFIG_NAME} (is it a molgen model or run directory?)")


def sample_to_file(
    model: Generator,
    n: int,
    out_path: str | Path | None,
    *,
    seed: int | None = 0,
    valid_only: bool = False,
    **sample_kwargs,
) -> SampleStats:
    """Draw ``n`` samples and write them one per line.

    Formats by suffix: ``.smi`` (``text<TAB>name``; invalid samples get a
    name ending in ``:invalid``), ``.csv`` (``index,<domain>,valid,canonical``)
    or ``.txt`` (text; invalid lines followed by ``<TAB>INVALID``).

    Args:
        model: A loaded generator.
        n: Number of samples.
        out_path: Output file, or None to only measure.
        seed: Sampling seed.
        valid_only: Write only valid samples (all are still counted).
        **sample_kwargs: temperature, top_k, top_p, batch_size, max_length.

    Returns:
        Validity, uniqueness and timing.
    """
    if n <= 0:
        raise MolgenError(f"number of samples must be positive, got {n}")
    suffix = Path(out_path).suffix.lower() if out_path is not None else ""
    if out_path is not None and suffix not in FORMATS:
        raise MolgenError(f"unsupported output format {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    domain = model.domain
    start = time.perf_counter()
    texts = model.sample_texts(n, seed=seed, **sample_kwargs)
    keys: list[str | None] = []
    for text in texts:
        obj = domain.try_parse(text)
        keys.append(domain.key(obj) if obj is not None else None)
    seconds = time.perf_counter() - start
    valid_keys = [k for k in keys if k is not None]
    if out_path is not None:
        _write(Path(out_path), suffix, domain.name, texts, keys, valid_only)
    return SampleStats(n, len(valid_keys), len(set(valid_keys)), seconds, Path(out_path) if out_path else None)


def _write(path: Path, suffix: str, column: str, texts, keys, valid_only: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        if suffix == ".csv":
            writer = csv.writer(handle)
            writer.writerow(["index", column, "valid", "canonical"])
            for i, (text, key) in enumerate(zip(texts, keys)):
                if key is not None or not valid_only:
                    writer.writerow([i, text, int(key is not None), key or ""])
            return
        for i, (text, key) in enumerate(zip(texts, keys)):
            if key is None and valid_only:
                continue
            if suffix == ".smi":
                handle.write(f"{text}\tsample_{i}{'' if key is not None else ':invalid'}\n")
            else:
                handle.write(text if key is not None else f"{text}\tINVALID")
                handle.write("\n")
