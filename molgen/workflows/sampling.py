"""Sample a saved generator into a file, keeping invalid samples marked."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from molgen.backbones.base import Generator
from molgen.core.errors import MolgenError

FORMATS = (".smi", ".csv", ".txt", ".fasta", ".fa", ".sdf")


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
    """A model directory from a shipped model name (``zinc250k``,
    ``model:zinc250k``), a model directory, or a training run directory
    holding ``model/``.

    Raises:
        CheckpointError: none of these.
    """
    from molgen.pretrained import resolve_model_path

    return resolve_model_path(path)


def sample_to_file(
    model: Generator,
    n: int,
    out_path: str | Path | None,
    *,
    seed: int | None = 0,
    valid_only: bool = False,
    progress: bool = False,
    **sample_kwargs,
) -> SampleStats:
    """Draw ``n`` samples and write them one per line.

    Formats by suffix: ``.smi`` (``text<TAB>name``; invalid samples get a
    name ending in ``:invalid``), ``.csv`` (``index,<domain>,valid,canonical``
    plus a column in the domain's export format, e.g. ``cif``) or ``.txt``
    (text; invalid lines followed by ``<TAB>INVALID``) or, for proteins,
    ``.fasta``/``.fa`` (headers ``sample_i``, invalid ones ``sample_i invalid``), or, for molecule
    domains (smiles, selfies, molgraph), ``.sdf`` (2D coordinates, title ``sample_i``, properties
    ``valid`` and ``smiles``; invalid samples cannot be drawn and are left out, with or without
    ``valid_only``). For domains with an
    export format (crystals), a path without a suffix is a folder that gets
    one file per valid sample (``sample_00000.cif``) and the raw text of each
    invalid one (``sample_00001.invalid.txt``).

    Args:
        model: A loaded generator.
        n: Number of samples.
        out_path: Output file, or None to only measure.
        seed: Sampling seed.
        valid_only: Write only valid samples (all are still counted).
        progress: Show a progress bar (on a terminal).
        **sample_kwargs: temperature, top_k, top_p, batch_size, max_length.

    Returns:
        Validity, uniqueness and timing.
    """
    if n <= 0:
        raise MolgenError(f"number of samples must be positive, got {n}")
    domain = model.domain
    suffix = Path(out_path).suffix.lower() if out_path is not None else ""
    folder = out_path is not None and suffix == "" and domain.multiline_text and domain.export_format is not None
    if out_path is not None and suffix not in FORMATS and not folder:
        extra = " or a folder (no suffix)" if domain.multiline_text else ""
        raise MolgenError(f"unsupported output format {suffix or '(none)'!r}; use one of {', '.join(FORMATS)}{extra}")
    if suffix in (".fasta", ".fa") and domain.export_format != "fasta":
        raise MolgenError(f"FASTA output is for protein models; {domain.name} samples go to .smi, .csv or .txt")
    if suffix == ".smi" and domain.multiline_text:
        raise MolgenError(f"{domain.name} samples span several lines: write .csv, .txt or a folder (no suffix)")
    if suffix == ".sdf" and not domain.exports_sdf:
        raise MolgenError(f"SDF output is for molecule models (smiles, selfies, molgraph); {domain.name} samples go to .csv or .txt")
    if out_path is not None:
        from molgen.core.outputs import check_output_file

        if folder:
            Path(out_path).mkdir(parents=True, exist_ok=True)
        else:
            check_output_file(out_path)  # before the work: a long run must not die at its end
    options = model.check_sampling_options(sample_kwargs)
    start = time.perf_counter()
    tally = _Tally()
    from molgen.train.distributed import DistributedContext

    dist = DistributedContext.from_env()
    if dist.enabled:  # under torchrun: each rank draws its share, rank 0 writes them all
        records = tally.count(_draw_shared(model, n, seed, options, dist))
    else:
        # Samples stream to the file chunk by chunk: memory stays bounded by one chunk (plus the distinct
        # keys), and a run that is stopped keeps what it wrote.
        records = tally.count(_draw(model, n, seed, progress, options))
    if not dist.is_main:  # its share went to rank 0, which writes the file
        out_path = None
    if out_path is None:
        for _ in records:
            pass
    elif folder:
        _write_folder(Path(out_path), domain, records, valid_only)
    elif suffix == ".sdf":
        _write_sdf(Path(out_path), domain, records)
    else:
        _write(Path(out_path), suffix, domain, records, valid_only)
    seconds = time.perf_counter() - start
    return SampleStats(tally.n, tally.n_valid, len(tally.keys), seconds, Path(out_path) if out_path else None)


class _Tally:
    """Counts samples, valid ones and distinct keys as they stream past."""

    def __init__(self):
        self.n = self.n_valid = 0
        self.keys: set[str] = set()

    def count(self, records):
        for record in records:
            self.n += 1
            if record[3] is not None:
                self.n_valid += 1
                self.keys.add(record[3])
            yield record


def _draw(model: Generator, n: int, seed: int | None, progress: bool, options: dict):
    """``(index, text, object or None, key or None)`` of ``n`` samples, drawn
    ``batch_size`` at a time from one seeded generator (the same samples for
    a given seed and batch size, with or without the bar)."""
    from molgen.core.progress import progress_bar
    from molgen.core.seeding import make_generator

    domain = model.domain
    gen = make_generator(seed, model.device)
    chunk = int(options.get("batch_size") or 512)
    with progress_bar(n, desc="sampling", unit="sample", enabled=progress) as bar:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            for j, text in enumerate(model.sample_texts(m, generator=gen, **options)):
                yield _record(domain, start + j, text)
            bar.update(m)


def rank_seed(seed: int | None, rank: int, world_size: int) -> int | None:
    """The sampling seed of one rank of a distributed run: a pure function of
    (seed, rank, world size), so the merged output repeats for the same three."""
    if seed is None:
        return None
    import numpy as np

    return int(np.random.SeedSequence([seed, rank, world_size]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _draw_shared(model: Generator, n: int, seed: int | None, options: dict, dist):
    """Records of a distributed run: rank r draws its contiguous share of the
    ``n`` indices with :func:`rank_seed`; rank 0 receives every rank's texts
    (in rank order) and yields them parsed; other ranks yield nothing."""
    import numpy as np
    import torch

    from molgen.core.seeding import make_generator
    from molgen.train.distributed import shard

    count = len(shard(np.arange(n), dist.rank, dist.world_size))
    gen = make_generator(rank_seed(seed, dist.rank, dist.world_size), model.device)
    chunk = int(options.get("batch_size") or 512)
    texts: list[str] = []
    for start in range(0, count, chunk):
        texts.extend(model.sample_texts(min(chunk, count - start), generator=gen, **options))
    shares: list = [None] * dist.world_size
    torch.distributed.all_gather_object(shares, texts)
    if not dist.is_main:
        return
    for i, text in enumerate(t for share in shares for t in share):
        yield _record(model.domain, i, text)


def _record(domain, index: int, text: str) -> tuple:
    """``(index, text, object or None, key or None)`` of one sample."""
    obj = domain.try_parse(text)
    return index, text, obj, (domain.key(obj) if obj is not None else None)


def _write_folder(folder: Path, domain, records, valid_only: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text, obj, _ in records:
        if obj is not None:
            (folder / f"sample_{i:05d}.{domain.export_format}").write_text(domain.export(obj))
        elif not valid_only:
            (folder / f"sample_{i:05d}.invalid.txt").write_text(text)


def _write_sdf(path: Path, domain, records) -> None:
    """Valid samples as SD records (invalid ones have no structure to write)."""
    from rdkit import Chem

    from molgen.datasets.sdf import write_sdf

    def entries():
        for i, text, obj, _ in records:
            if obj is not None:
                props = {"valid": 1, "smiles": Chem.MolToSmiles(obj)}
                if domain.name != "smiles":  # the SMILES property already is the model's own text
                    props[domain.name] = text  # the model's own text (SELFIES, graph-decoded SMILES)
                yield f"sample_{i}", obj, props

    write_sdf(path, entries())


def _write(path: Path, suffix: str, domain, records, valid_only: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        if suffix == ".csv":
            writer = csv.writer(handle)
            extra = [domain.export_format] if domain.multiline_text and domain.export_format else []
            writer.writerow(["index", domain.name, "valid", "canonical", *extra])
            for i, text, obj, key in records:
                if key is not None or not valid_only:
                    out = domain.export(obj) if extra and obj is not None else ""
                    writer.writerow([i, text, int(key is not None), key or "", *([out] if extra else [])])
            return
        for i, text, obj, key in records:
            if key is None and valid_only:
                continue
            if suffix in (".fasta", ".fa"):
                handle.write(f">sample_{i}{'' if key is not None else ' invalid'}\n{text}\n")
            elif "\n" in text or domain.multiline_text:
                # Multi-line objects: blank-line separated blocks, invalid ones marked by a comment.
                handle.write(("" if key is not None else "# invalid sample\n") + text.strip() + "\n\n")
            elif suffix == ".smi":  # SMILES files hold SMILES, also for domains that only export it (SELFIES)
                line = domain.export(obj) if obj is not None and domain.export_format == "smiles" else text
                handle.write(f"{line}\tsample_{i}{'' if key is not None else ':invalid'}\n")
            else:
                handle.write(text if key is not None else f"{text}\tINVALID")
                handle.write("\n")
