"""Deterministic, resumable batching of token sequences.

The batch at step ``s`` is a pure function of (data, seed, s), so a resumed
run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from molgen.core.errors import DataError, UnknownTokenError
from molgen.core.vocab import pad_batch


class SeededBatches:
    """Shuffled, size-bucketed batch order that is a pure function of
    (sizes, seed, step). Subclasses set ``lengths`` and ``batch_size`` and
    turn a row selection into tensors in :meth:`batch`."""

    BUCKET = 50
    lengths: np.ndarray
    batch_size: int
    seed: int

    def _init_order(self) -> None:
        self.batches_per_epoch = max(1, len(self.lengths) // self.batch_size)
        self._epoch_cache: tuple[int, list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        if self._epoch_cache is not None and self._epoch_cache[0] == epoch:
            return self._epoch_cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        usable = self.batches_per_epoch * self.batch_size
        if usable > len(order):  # fewer examples than one batch: use them all
            usable = len(order)
        order = order[:usable]
        chunk = self.batch_size * self.BUCKET
        batches = []
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches.extend(np.array_split(part, max(1, len(part) // self.batch_size)))
        batches = [batches[i] for i in rng.permutation(len(batches))]
        self._epoch_cache = (epoch, batches)
        return batches

    def _rows(self, step: int) -> np.ndarray:
        epoch, index = divmod(step, self.batches_per_epoch)
        return self._epoch_batches(epoch)[index]

    def rows(self, step: int) -> np.ndarray:
        """Row indices of the global batch at optimisation step ``step`` (0-based)."""
        return self._rows(step)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """The batch used at optimisation step ``step`` (0-based)."""
        return self.batch_of(self._rows(step), step)

    def batch_of(self, rows: np.ndarray, step: int) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        """Tensors of the given rows of step ``step``'s batch (a rank's share, a micro-batch)."""
        raise NotImplementedError


class GraphBatches(SeededBatches):
    """Size-bucketed, shuffled dense batches of graph-view graphs.

    Args:
        graphs: PyG ``Data`` of the graph view.
        collate: ``list[Data] -> dict`` of dense tensors (the backbone's).
        batch_size: Graphs per batch.
        seed: Seed of the order.
    """

    def __init__(self, graphs: Sequence, collate: Callable[[Sequence], dict[str, torch.Tensor]], batch_size: int, seed: int = 0):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        if not graphs:
            raise DataError("no graphs to train on")
        self.graphs = list(graphs)
        self.collate = collate
        self.batch_size = batch_size
        self.seed = seed
        self.dropped_too_long = 0
        self.lengths = np.array([int(g.num_nodes) for g in self.graphs])
        self._init_order()

    def batch_of(self, rows: np.ndarray, step: int) -> dict[str, torch.Tensor]:
        """Dense tensors of the given graphs."""
        return self.collate([self.graphs[r] for r in rows])

    def fixed_batches(self, limit: int | None = None) -> list[dict[str, torch.Tensor]]:
        """Consecutive unshuffled batches (validation), at most ``limit``."""
        out = []
        for start in range(0, len(self.graphs), self.batch_size):
            if limit is not None and len(out) >= limit:
                break
            out.append(self.collate(self.graphs[start : start + self.batch_size]))
        return out


class TokenBatches(SeededBatches):
    """Length-bucketed, shuffled batches of encoded texts.

    Each epoch draws a seeded permutation, sorts chunks of 50 batches by
    length (less padding), and shuffles the resulting batches.

    Args:
        texts: Object texts.
        tokenizer: Tokenizer with a vocabulary.
        batch_size: Sequences per batch.
        seed: Seed of the order (and of augmentation).
        augment: Optional ``(text, rng) -> text`` applied per draw (e.g.
            randomized SMILES); its output is encoded with unknown tokens
            mapped to UNK.
        on_unknown: ``"error"`` or ``"unk"`` for tokens missing from the
            vocabulary.
        lines: Source line numbers, for error messages.
        max_length: Sequences longer than this (incl. BOS/EOS) are dropped.
    """

    def __init__(
        self,
        texts: Sequence[str],
        tokenizer,
        batch_size: int,
        seed: int = 0,
        augment: Callable[[str, np.random.Generator], str] | None = None,
        on_unknown: str = "error",
        lines: Sequence[int] | None = None,
        max_length: int | None = None,
        conditions: np.ndarray | None = None,
    ):
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        kept_rows: list[int] = []
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.seed = seed
        self.augment = augment
        self.encoded: list[list[int]] = []
        self.texts: list[str] = []
        self.dropped_too_long = 0
        for i, text in enumerate(texts):
            try:
                ids = tokenizer.encode(text, on_unknown)
            except UnknownTokenError as exc:
                where = f"line {lines[i]}" if lines is not None else f"entry {i}"
                raise DataError(
                    f"{where}: unknown token {exc.token!r} in {text!r} (not in the model's vocabulary; "
                    f"pass --on-unknown-token unk to map it to <unk>)"
                ) from None
            if max_length is not None and len(ids) > max_length:
                self.dropped_too_long += 1
                continue
            self.encoded.append(ids)
            self.texts.append(text)
            kept_rows.append(i)
        if not self.encoded:
            raise DataError("no sequences left to train on (all longer than max_length?)")
        #: ``[n, k]`` property values per kept sequence (a conditional model's targets), or None.
        self.conditions = None if conditions is None else np.asarray(conditions, dtype=np.float32)[kept_rows]
        self.max_length = max_length
        self.lengths = np.array([len(ids) for ids in self.encoded])
        self._init_order()

    def batch_of(self, rows: np.ndarray, step: int) -> dict[str, torch.Tensor]:
        """Padded tensors of the given rows; an augmented row's draw depends on
        (seed, step, row) only, so it is the same whichever rank or micro-batch
        holds the row."""
        if self.augment is None:
            seqs = [self.encoded[r] for r in rows]
        else:
            seqs = []
            for r in rows:
                rng = np.random.default_rng([self.seed, step, 1, int(r)])
                ids = self.tokenizer.encode(self.augment(self.texts[r], rng), "unk")
                too_long = self.max_length is not None and len(ids) > self.max_length
                seqs.append(self.encoded[r] if too_long else ids)
        return self._with_conditions(pad_batch(seqs, self.tokenizer.vocab.pad_id), rows)

    def _with_conditions(self, batch: dict[str, torch.Tensor], rows) -> dict[str, torch.Tensor]:
        if self.conditions is not None:
            batch["condition"] = torch.from_numpy(self.conditions[np.asarray(rows)])
        return batch

    def fixed_batches(self, limit: int | None = None) -> list[dict[str, torch.Tensor]]:
        """Consecutive unshuffled batches (validation), at most ``limit``."""
        out = []
        for start in range(0, len(self.encoded), self.batch_size):
            if limit is not None and len(out) >= limit:
                break
            rows = range(start, min(start + self.batch_size, len(self.encoded)))
            out.append(self._with_conditions(pad_batch(self.encoded[start : start + self.batch_size],
                                                       self.tokenizer.vocab.pad_id), rows))
        return out
