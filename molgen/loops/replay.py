"""Experience replay: the best distinct sequences seen so far, replayed into
each policy update (REINVENT's experience memory)."""

from __future__ import annotations

import torch


class ReplayBuffer:
    """Keeps the ``capacity`` highest-reward distinct texts.

    Args:
        capacity: Texts kept (0 disables replay).
        weighting: How :meth:`sample` draws: ``"uniform"``, or ``"score"``
            (probability proportional to the reward, as REINVENT 1.0's and
            PMO's experience memory).
    """

    WEIGHTINGS = ("uniform", "score")

    def __init__(self, capacity: int = 100, weighting: str = "uniform"):
        if weighting not in self.WEIGHTINGS:
            raise ValueError(f"unknown replay weighting {weighting!r}; use one of {', '.join(self.WEIGHTINGS)}")
        self.capacity = capacity
        self.weighting = weighting
        self.entries: dict[str, tuple[str, float]] = {}  # key -> (text, reward)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, keys, texts, rewards) -> None:
        """Offer entries (invalid ones have key None and are ignored); keep the best."""
        if self.capacity <= 0:
            return
        for key, text, reward in zip(keys, texts, rewards):
            if key is None or not reward == reward:  # NaN
                continue
            old = self.entries.get(key)
            if old is None or reward > old[1]:
                self.entries[key] = (text, float(reward))
        if len(self.entries) > self.capacity:
            best = sorted(self.entries.items(), key=lambda item: -item[1][1])[: self.capacity]
            self.entries = dict(best)

    def remove(self, keys) -> int:
        """Drop the entries of ``keys`` (unknown keys are ignored).

        Returns:
            How many entries were removed.
        """
        found = [key for key in keys if key in self.entries]
        for key in found:
            del self.entries[key]
        return len(found)

    def sample(self, k: int, generator: torch.Generator) -> tuple[list[str], list[float]]:
        """``k`` distinct entries (fewer when the buffer is smaller), drawn
        uniformly or in proportion to their rewards.

        Returns:
            ``(texts, rewards)``.
        """
        items = list(self.entries.values())
        if not items or k <= 0:
            return [], []
        if self.weighting == "score":
            # A small floor keeps zero-reward entries drawable once the rest are taken.
            weights = torch.tensor([max(r, 0.0) + 1e-10 for _, r in items], dtype=torch.float64)
            order = torch.multinomial(weights, min(k, len(items)), replacement=False, generator=generator).tolist()
        else:
            order = torch.randperm(len(items), generator=generator)[:k].tolist()
        return [items[i][0] for i in order], [items[i][1] for i in order]

    def state(self) -> list[list]:
        """JSON-able contents."""
        return [[key, text, reward] for key, (text, reward) in self.entries.items()]

    def load_state(self, state: list[list]) -> None:
        """Restore from :meth:`state`."""
        self.entries = {key: (text, float(reward)) for key, text, reward in state}
