"""A learned antimicrobial-peptide classifier with an sklearn-style API.

:class:`AMPClassifier` is a small convolutional network over residues (two
kernel widths, max and mean pooling) joined with global descriptors (amino-acid
composition and the physicochemical properties of
:mod:`molgen.properties.peptides`). :class:`CompositionBaseline` is the usual
baseline: amino-acid composition and L2-regularised logistic regression.
The classifier saves in the one predictor format of
:mod:`molgen.predictors.registry` (``config.json`` + ``model.safetensors``, no
pickle) and still reads its older ``{"kind": "amp-cnn"}`` files; the trained
one ships as ``amp-classifier`` (:mod:`molgen.pretrained.predictors`) with its
held-out ROC-AUC and accuracy in its config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from molgen.core.errors import CheckpointError
from molgen.core.serialization import load_tensors, read_json, save_tensors, write_json
from molgen.domains.protein import AMINO_ACIDS
from molgen.predictors.metrics import roc_auc
from molgen.predictors.registry import register, saved_kind
from molgen.pretrained.predictors import shipped_predictor_dir
from molgen.properties.peptides import PEPTIDE_PROPERTIES, peptide_properties

__all__ = ["AMPClassifier", "CompositionBaseline", "composition", "global_features"]

#: Name of the shipped classifier that :meth:`AMPClassifier.load` reads by default.
SHIPPED_NAME = "amp-classifier"

_INDEX = {aa: i + 1 for i, aa in enumerate(AMINO_ACIDS)}  # 0 is padding


def composition(seqs: Sequence[str]) -> np.ndarray:
    """Amino-acid composition, ``[n, 20]`` fractions."""
    out = np.zeros((len(seqs), 20))
    for row, seq in enumerate(seqs):
        for ch in seq:
            out[row, _INDEX[ch] - 1] += 1
        out[row] /= max(len(seq), 1)
    return out


def global_features(seqs: Sequence[str]) -> np.ndarray:
    """Composition plus physicochemical properties, ``[n, 20 + 12]`` (NaN -> 0)."""
    props = np.array([[peptide_properties(s)[k] for k in PEPTIDE_PROPERTIES] for s in seqs]).reshape(len(seqs), -1)
    return np.nan_to_num(np.concatenate([composition(seqs), props], axis=1))


class _Network(nn.Module):
    def __init__(self, n_global: int, embed: int = 32, channels: int = 64, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.embed = nn.Embedding(len(AMINO_ACIDS) + 1, embed, padding_idx=0)
        self.conv_short = nn.Conv1d(embed, channels, 5, padding=2)
        self.conv_long = nn.Conv1d(embed, channels, 9, padding=4)
        self.head = nn.Sequential(
            nn.Linear(4 * channels + n_global, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, ids: torch.Tensor, globals_: torch.Tensor) -> torch.Tensor:
        mask = (ids > 0).unsqueeze(1)
        x = self.embed(ids).transpose(1, 2)
        pooled = []
        for conv in (self.conv_short, self.conv_long):
            h = torch.relu(conv(x))
            pooled.append(h.masked_fill(~mask, float("-inf")).amax(-1))
            pooled.append((h * mask).sum(-1) / mask.sum(-1).clamp(min=1))
        return self.head(torch.cat([*pooled, globals_], dim=1)).squeeze(-1)


@register(trainable=False)
class AMPClassifier:
    """CNN + descriptor classifier of antimicrobial peptides.

    Args:
        max_length: Residues read per sequence (longer ones are truncated).
        epochs: Training epochs.
        lr: AdamW learning rate.
        batch_size: Sequences per step.
        seed: Seed of initialisation and batch order.
    """

    #: Registry name, written to ``config.json`` as ``"predictor"``.
    name = "amp-cnn"
    format_version = 1

    def __init__(self, max_length: int = 200, epochs: int = 40, lr: float = 2e-3, batch_size: int = 64, seed: int = 0):
        self.max_length = max_length
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.network: _Network | None = None
        self.mean = self.std = None
        self.metrics: dict[str, Any] = {}

    def _ids(self, seqs: Sequence[str]) -> torch.Tensor:
        width = max(1, min(self.max_length, max(len(s) for s in seqs)))
        ids = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            codes = [_INDEX[ch] for ch in seq[:width]]
            ids[row, : len(codes)] = torch.tensor(codes)
        return ids

    def _globals(self, seqs: Sequence[str]) -> torch.Tensor:
        return torch.tensor((global_features(seqs) - self.mean) / self.std, dtype=torch.float32)

    def fit(self, seqs: Sequence[str], labels: Sequence[int], val: tuple[Sequence[str], Sequence[int]] | None = None) -> "AMPClassifier":
        """Train; with ``val``, keep the epoch of best validation ROC-AUC.

        Args:
            seqs: Canonical sequences.
            labels: 1 = antimicrobial, 0 = not.
            val: Optional validation sequences and labels.

        Returns:
            self.
        """
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        feats = global_features(seqs)
        self.mean, self.std = feats.mean(0), feats.std(0) + 1e-6
        self.network = _Network(feats.shape[1])
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.lr, weight_decay=1e-2)
        y = torch.tensor(labels, dtype=torch.float32)
        g = self._globals(seqs)
        best = (-1.0, None)
        for _ in range(self.epochs):
            self.network.train()
            for batch in torch.randperm(len(seqs), generator=generator).split(self.batch_size):
                rows = batch.tolist()
                logits = self.network(self._ids([seqs[i] for i in rows]), g[batch])
                loss = nn.functional.binary_cross_entropy_with_logits(logits, y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if val is not None:
                auc = roc_auc(val[1], self.predict_proba(val[0]))
                if auc > best[0]:
                    best = (auc, {k: v.clone() for k, v in self.network.state_dict().items()})
        if best[1] is not None:
            self.network.load_state_dict(best[1])
            self.metrics["val_roc_auc"] = best[0]
        return self

    @torch.no_grad()
    def predict_proba(self, seqs: Sequence[str], batch_size: int = 512) -> np.ndarray:
        """Probability of being antimicrobial, ``[n]``."""
        if self.network is None:
            raise RuntimeError("the classifier is not trained: call fit() or load()")
        if len(seqs) == 0:
            return np.zeros(0)
        self.network.eval()
        out = []
        for start in range(0, len(seqs), batch_size):
            part = list(seqs[start : start + batch_size])
            out.append(torch.sigmoid(self.network(self._ids(part), self._globals(part))).numpy())
        return np.concatenate(out)

    def predict(self, seqs: Sequence[str], threshold: float = 0.5) -> np.ndarray:
        """1 where the probability is at least ``threshold``."""
        return (self.predict_proba(seqs) >= threshold).astype(int)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (sklearn style).

        Returns:
            ``{argument: value}``.
        """
        return {"max_length": self.max_length, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size, "seed": self.seed}

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory``.

        Args:
            directory: Target folder (created if needed).

        Returns:
            The directory path.
        """
        if self.network is None:
            raise RuntimeError("the classifier is not trained: call fit() or load()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = dict(self.network.state_dict())
        tensors["feature_mean"] = torch.tensor(self.mean)
        tensors["feature_std"] = torch.tensor(self.std)
        save_tensors(directory / "model.safetensors", tensors)
        write_json(directory / "config.json", {
            "predictor": self.name, "format_version": self.format_version, "params": self.get_params(),
            "n_global": int(len(self.mean)), "metrics": self.metrics,
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path | None = None, device: str | torch.device = "cpu") -> "AMPClassifier":
        """Load a saved classifier.

        Args:
            directory: A directory written by :meth:`save` (or in the older
                ``{"kind": "amp-cnn"}`` format); default: the shipped classifier.
            device: Accepted for the registry's common signature; the
                classifier runs on the CPU, so only ``"cpu"`` is supported.

        Returns:
            The classifier, ready to ``predict_proba``.

        Raises:
            CheckpointError: missing or corrupted files, or another kind of model.
        """
        if torch.device(device).type != "cpu":
            raise CheckpointError(f"{cls.__name__} runs on the CPU only, not {device!r}")
        directory = Path(directory) if directory is not None else shipped_predictor_dir(SHIPPED_NAME)
        config = read_json(directory / "config.json")
        if saved_kind(config, directory) != cls.name:
            raise CheckpointError(f"{directory} does not hold a {cls.name!r} model")
        # The older format kept the constructor arguments at the top level and had no version.
        legacy = "predictor" not in config
        if not legacy and config.get("format_version") != cls.format_version:
            raise CheckpointError(f"{directory}: unsupported {cls.name} format {config.get('format_version')!r}")
        tensors = load_tensors(directory / "model.safetensors")
        try:
            params = config if legacy else config["params"]
            model = cls(params["max_length"], params["epochs"], params["lr"], params["batch_size"], params["seed"])
            model.mean = tensors.pop("feature_mean").double().numpy()
            model.std = tensors.pop("feature_std").double().numpy()
            model.network = _Network(config["n_global"])
            model.network.load_state_dict(tensors)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"corrupted {cls.name} directory {directory}: {exc}") from None
        model.metrics = config.get("metrics", {})
        return model


class CompositionBaseline:
    """Amino-acid composition + L2 logistic regression (LBFGS), the baseline.

    Args:
        l2: Weight of the L2 penalty.
    """

    def __init__(self, l2: float = 1e-3):
        self.l2 = l2
        self.weight: torch.Tensor | None = None

    def fit(self, seqs: Sequence[str], labels: Sequence[int]) -> "CompositionBaseline":
        """Fit the logistic regression; returns self."""
        x = torch.tensor(composition(seqs), dtype=torch.float64)
        x = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
        y = torch.tensor(labels, dtype=torch.float64)
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], max_iter=500, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(x @ w, y) + self.l2 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        self.weight = w.detach()
        return self

    def predict_proba(self, seqs: Sequence[str]) -> np.ndarray:
        """Probability of being antimicrobial."""
        x = torch.tensor(composition(seqs), dtype=torch.float64)
        return torch.sigmoid(x @ self.weight[:-1] + self.weight[-1]).numpy()
