"""Vocabulary and padding for the tokens view. Shared by domains (which build
vocabularies) and backbones (which only need sizes and special ids)."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import torch

from molgen.core.errors import CheckpointError, UnknownTokenError

PAD, BOS, EOS, MASK, UNK = "<pad>", "<bos>", "<eos>", "<mask>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, MASK, UNK)


class Vocabulary:
    """Bidirectional token <-> id map with fixed special tokens first.

    Ids 0..4 are PAD, BOS, EOS, MASK, UNK in every vocabulary, so backbones
    can rely on them.

    Args:
        tokens: Ordinary tokens (specials are prepended automatically).
    """

    def __init__(self, tokens: Iterable[str]):
        ordinary = [t for t in tokens if t not in SPECIAL_TOKENS]
        if len(set(ordinary)) != len(ordinary):
            raise ValueError("duplicate tokens in vocabulary")
        self.itos: list[str] = [*SPECIAL_TOKENS, *ordinary]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    pad_id = 0
    bos_id = 1
    eos_id = 2
    mask_id = 3
    unk_id = 4

    @classmethod
    def from_token_lists(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1) -> "Vocabulary":
        """Build a vocabulary from tokenized data, most frequent first.

        Args:
            token_lists: Tokenized examples.
            min_count: Tokens seen fewer times are left out (mapped to UNK).

        Returns:
            The vocabulary.
        """
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        ordered = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str], on_unknown: str = "error") -> list[int]:
        """Map tokens to ids.

        Args:
            tokens: Tokens.
            on_unknown: ``"error"`` raises, ``"unk"`` maps to the UNK id.

        Raises:
            UnknownTokenError: naming the token, when ``on_unknown="error"``.
        """
        stoi = self.stoi
        if on_unknown == "unk":
            return [stoi.get(t, self.unk_id) for t in tokens]
        ids = []
        for token in tokens:
            idx = stoi.get(token)
            if idx is None:
                raise UnknownTokenError(token)
            ids.append(idx)
        return ids

    def to_list(self) -> list[str]:
        """Ordinary tokens in id order (for saving)."""
        return self.itos[len(SPECIAL_TOKENS):]

    @classmethod
    def from_list(cls, tokens: list[str]) -> "Vocabulary":
        """Inverse of :meth:`to_list`."""
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise CheckpointError("vocabulary must be a JSON list of strings")
        return cls(tokens)


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = Vocabulary.pad_id) -> dict[str, torch.Tensor]:
    """Right-pad id sequences into a batch.

    Args:
        sequences: Id lists (already with BOS/EOS).
        pad_id: Padding id.

    Returns:
        ``{"tokens": LongTensor[B, L], "mask": BoolTensor[B, L]}`` with
        ``mask`` True on real tokens.
    """
    if not sequences:
        raise ValueError("cannot pad an empty batch")
    longest = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        tokens[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    lengths = torch.as_tensor([len(s) for s in sequences])
    mask = torch.arange(longest)[None, :] < lengths[:, None]
    return {"tokens": tokens, "mask": mask}
