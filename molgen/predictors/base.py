"""The contract of learned property predictors, with uncertainty.

:class:`Predictor` is an sklearn-style base class: ``fit(objs, y)``,
``predict(objs) -> (mean, std)``, ``save(directory)`` / ``load(directory)``.
Subclasses (:mod:`molgen.predictors.molecules`, :mod:`molgen.predictors.crystals`)
only say how to featurise their objects, how to batch features and which
network to build; the base class owns targets, training, early stopping,
ensembling and serialisation.

Uncertainty comes from a **deep ensemble**: ``n_models`` networks trained from
different seeds (``seed, seed + 1, ...``) on the same data. The predicted mean
is the ensemble mean and the std is the spread of the members (population
std, so a single member gives std 0). With ``mc_dropout_samples > 0`` every
member is additionally run that many times with dropout on, and mean/std are
taken over all ``n_models * mc_dropout_samples`` passes. Regression outputs
are in the original target units; classification outputs are probabilities
(sigmoid), one column per task. No per-member predicted variance is used: the
std measures model (epistemic) disagreement only, which keeps the heads and
the loss plain MSE / BCE.

Saved predictors use the one format of :mod:`molgen.predictors.registry`:
``config.json`` (kind, hyper-parameters, target scaling, fit report) and
``model.safetensors`` (member weights); nothing is ever pickled.
"""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from rdkit import Chem
from torch import nn

from molgen.core.errors import CheckpointError, ConfigError, DataError
from molgen.core.progress import progress_bar
from molgen.core.serialization import load_tensors, read_json, save_tensors, write_json
from molgen.predictors.registry import load_predictor, saved_kind

TASK_TYPES = ("regression", "classification")
FORMAT_VERSION = 1

__all__ = ["FORMAT_VERSION", "TASK_TYPES", "Predictor"]


def _fork_rng(device: torch.device):
    # Module initialisation and dropout draw from the global RNG, which takes
    # no generator argument; fork it so seeding a member never leaks into (or
    # depends on) the caller's random state.
    devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


class Predictor:
    """Base class of learned molecular property predictors (deep ensembles).

    Subclasses set :attr:`name` and implement :meth:`_featurize`,
    :meth:`_collate`, :meth:`_build_network` and :meth:`_forward`; their
    ``__init__`` must store every argument under the same attribute name
    (sklearn convention) so that :meth:`get_params` and :meth:`save` see it.

    Args:
        task: ``"regression"`` (targets standardised internally, predictions
            in original units) or ``"classification"`` (binary or multi-label,
            labels 0/1, predictions are probabilities).
        n_models: Ensemble members, trained with seeds ``seed, seed + 1, ...``.
        epochs: Maximum training epochs per member.
        batch_size: Molecules per optimisation step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        dropout: Dropout probability inside the network.
        patience: Epochs without validation improvement before stopping early.
        val_fraction: Share of the training rows held out for early stopping
            when ``fit`` gets no ``val`` (0 disables early stopping).
        mc_dropout_samples: Dropout-on passes per member at prediction time
            (0: plain deterministic ensemble).
        seed: Base seed of initialisation, batch order, split and dropout.
        device: Torch device for training and prediction.

    Attributes:
        fit_report_: After ``fit``, a JSON-ready dict: rows given, rows dropped
            because all their targets were NaN, train/validation sizes and
            each member's best epoch and validation loss.
    """

    #: Registry name, written to ``config.json`` as ``"predictor"``.
    name: ClassVar[str] = ""
    #: Rescale the ensemble std on the validation split after fitting
    #: (regression; see :meth:`_fit_std_scale`). Set False on an instance to skip.
    calibrate_std: ClassVar[bool] = True
    #: Fewest finite validation rows the std scale is fitted from; below it
    #: the raw ensemble spread is kept (a scale from ~10 rows is noise: in
    #: active-learning round 1 it swung UCB from exploit to explore-only).
    min_calibration_rows: ClassVar[int] = 30
    #: What :meth:`_is_input` accepts, in words (for error messages).
    input_description: ClassVar[str] = "RDKit molecules"

    def __init__(
        self,
        task: str = "regression",
        n_models: int = 5,
        epochs: int = 30,
        batch_size: int = 50,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        dropout: float = 0.1,
        patience: int = 10,
        val_fraction: float = 0.1,
        mc_dropout_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.task = task
        self.n_models = n_models
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.patience = patience
        self.val_fraction = val_fraction
        self.mc_dropout_samples = mc_dropout_samples
        self.seed = seed
        self.device = device
        self._validate_base()
        self.members_: list[nn.Module] = []
        self.n_tasks_: int | None = None
        self.target_ndim_: int = 1
        self.target_mean_: np.ndarray | None = None
        self.target_std_: np.ndarray | None = None
        self.fit_report_: dict[str, Any] = {}

    # -- hooks for subclasses -------------------------------------------------

    def _featurize(self, mols: Sequence[Chem.Mol]) -> Any:
        """Features of valid molecules, indexable by :meth:`_collate`."""
        raise NotImplementedError

    def _collate(self, features: Any, rows: Sequence[int]) -> Any:
        """Network input for ``features[rows]``, on :attr:`device`."""
        raise NotImplementedError

    def _build_network(self, n_tasks: int) -> nn.Module:
        """A fresh (randomly initialised) network with ``n_tasks`` outputs."""
        raise NotImplementedError

    def _forward(self, network: nn.Module, inputs: Any) -> torch.Tensor:
        """Raw outputs ``[batch, n_tasks]`` (standardised values or logits)."""
        return network(inputs)

    def _is_input(self, obj: Any) -> bool:
        """Whether ``obj`` is something :meth:`_featurize` accepts.

        The default is an RDKit molecule; predictors of other objects
        (crystals, sequences) override this and :attr:`input_description`.
        """
        return isinstance(obj, Chem.Mol)

    # -- parameters -----------------------------------------------------------

    def _validate_base(self) -> None:
        if self.task not in TASK_TYPES:
            raise ConfigError(f"unknown task type {self.task!r}; expected one of {', '.join(TASK_TYPES)}")
        checks = {
            "n_models": self.n_models >= 1,
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "dropout": 0 <= self.dropout < 1,
            "patience": self.patience >= 1,
            "val_fraction": 0 <= self.val_fraction < 1,
            "mc_dropout_samples": self.mc_dropout_samples >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid {type(self).__name__} settings: " + ", ".join(f"{n}={getattr(self, n)!r}" for n in bad))
        if self.mc_dropout_samples > 0 and self.dropout == 0:
            raise ConfigError("mc_dropout_samples > 0 needs dropout > 0")

    def _before_loading_weights(self) -> None:
        """Hook of :meth:`load` between construction and building the networks
        whose saved weights follow (e.g. skip computing what they overwrite)."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (sklearn style), without ``device``.

        Returns:
            ``{argument: value}`` for every ``__init__`` argument of the class.
        """
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "device")]
        return {name: getattr(self, name) for name in names}

    @property
    def torch_device(self) -> torch.device:
        """:attr:`device` as a ``torch.device``."""
        return torch.device(self.device)

    # -- targets ----------------------------------------------------------------

    def _check_mols(self, mols: Sequence[Any], what: str) -> list[Chem.Mol]:
        mols = list(mols)
        bad = [i for i, m in enumerate(mols) if not self._is_input(m)]
        if bad:
            raise DataError(f"{what}: {len(bad)} entries are not {self.input_description} (first at row {bad[0]}); drop them first")
        return mols

    def _check_targets(self, y: Any, n: int, what: str) -> np.ndarray:
        try:
            array = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{what}: targets are not numeric ({exc})") from None
        if array.ndim not in (1, 2) or array.shape[0] != n:
            raise DataError(f"{what}: targets must have shape [{n}] or [{n}, t], got {list(array.shape)}")
        array = array.reshape(n, -1)
        if np.isinf(array).any():
            raise DataError(f"{what}: targets contain infinite values")
        if self.task == "classification":
            labels = array[np.isfinite(array)]
            if not np.isin(labels, (0.0, 1.0)).all():
                raise DataError(f"{what}: classification labels must be 0, 1 or NaN")
        return array

    def _loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # NaN targets (missing labels) are masked out; the loss is averaged over
        # the labels that are present so sparse tasks are not down-weighted per row.
        mask = ~torch.isnan(targets)
        filled = torch.where(mask, targets, torch.zeros_like(targets))
        if self.task == "regression":
            per_entry = (outputs - filled) ** 2
        else:
            per_entry = nn.functional.binary_cross_entropy_with_logits(outputs, filled, reduction="none")
        return (per_entry * mask).sum() / mask.sum().clamp(min=1)

    # -- training ---------------------------------------------------------------

    def fit(self, objs: Sequence[Chem.Mol], y: Any, *, val: tuple[Sequence[Chem.Mol], Any] | None = None) -> "Predictor":
        """Train the ensemble.

        Args:
            objs: RDKit molecules (``None`` is not allowed here; filter first).
            y: Targets ``[n]`` (one task) or ``[n, t]``. NaN marks a missing
                label and is masked out of the loss; rows whose targets are
                all NaN are dropped and counted in :attr:`fit_report_`.
            val: Optional ``(molecules, targets)`` for early stopping. Without
                it a seeded ``val_fraction`` of the rows is held out instead.

        Returns:
            self.

        Raises:
            DataError: non-molecules, bad target shapes or labels, or no
                trainable rows.
        """
        self._validate_base()
        mols = self._check_mols(objs, "fit")
        targets = self._check_targets(y, len(mols), "fit")
        keep = ~np.isnan(targets).all(axis=1)
        mols = [m for m, k in zip(mols, keep) if k]
        targets = targets[keep]
        if len(mols) == 0:
            raise DataError("fit: no molecule has a finite target")
        report: dict[str, Any] = {"n_input": int(len(keep)), "n_dropped_all_nan": int((~keep).sum())}

        if val is not None:
            val_mols = self._check_mols(val[0], "fit(val=...)")
            val_targets = self._check_targets(val[1], len(val_mols), "fit(val=...)")
            if val_targets.shape[1] != targets.shape[1]:
                raise DataError(f"fit: validation has {val_targets.shape[1]} tasks, training has {targets.shape[1]}")
            val_keep = ~np.isnan(val_targets).all(axis=1)
            val_mols, val_targets = [m for m, k in zip(val_mols, val_keep) if k], val_targets[val_keep]
            train_mols, train_targets = mols, targets
            report["val_source"] = "given"
        else:
            n_val = int(round(self.val_fraction * len(mols))) if len(mols) >= 10 else 0
            order = np.random.default_rng(self.seed).permutation(len(mols))
            val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
            val_mols, val_targets = [mols[i] for i in val_idx], targets[val_idx]
            train_mols, train_targets = [mols[i] for i in train_idx], targets[train_idx]
            report["val_source"] = "internal-split" if n_val else "none"
        report.update(n_train=len(train_mols), n_val=len(val_mols))

        self.n_tasks_ = int(targets.shape[1])
        self.target_ndim_ = 1 if np.asarray(y).ndim == 1 else 2
        if self.task == "regression":
            # Standardise per task so one learning rate suits any target scale.
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(train_targets, axis=0)
                std = np.nanstd(train_targets, axis=0)
            self.target_mean_ = np.nan_to_num(mean, nan=0.0)
            self.target_std_ = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        else:
            self.target_mean_ = np.zeros(self.n_tasks_)
            self.target_std_ = np.ones(self.n_tasks_)

        device = self.torch_device
        train_x = self._featurize(train_mols)
        train_y = torch.tensor((train_targets - self.target_mean_) / self.target_std_, dtype=torch.float32, device=device)
        val_x = self._featurize(val_mols) if val_mols else None
        val_y = torch.tensor((val_targets - self.target_mean_) / self.target_std_, dtype=torch.float32, device=device)

        self.members_, report["members"] = [], []
        # ``show_progress`` is a run-time switch (the CLI's), not a hyper-parameter: it is not saved.
        with progress_bar(self.n_models, desc="ensemble members", unit="model", enabled=getattr(self, "show_progress", False)) as bar:
            for k in range(self.n_models):
                network, summary = self._fit_member(self.seed + k, train_x, train_y, val_x, val_y)
                self.members_.append(network)
                report["members"].append(summary)
                bar.update(1)
        self.std_scale_ = np.ones(self.n_tasks_)
        if self.task == "regression" and val_mols and self.calibrate_std:
            self.std_scale_ = self._fit_std_scale(val_mols, val_targets)
            report["std_scale"] = self.std_scale_.tolist()
            report["std_scale_rows"] = np.isfinite(val_targets).sum(axis=0).tolist()
        self.fit_report_ = report
        return self

    def _fit_std_scale(self, mols: Sequence[Chem.Mol], targets: np.ndarray) -> np.ndarray:
        """Per-task factor that makes the ensemble std match the validation
        errors (z-scaling, Levi et al. 2022): ``s = sqrt(mean((err / std)^2))``.
        An ensemble's spread is usually far smaller than its error on new
        scaffolds; scaling it keeps the ranking and fixes the size."""
        passes = self.predict_members(mols)
        mean, std = passes.mean(axis=0), passes.std(axis=0)
        scale = np.ones(self.n_tasks_)
        for t in range(self.n_tasks_):
            ok = np.isfinite(targets[:, t]) & (std[:, t] > 1e-12)
            if ok.sum() >= self.min_calibration_rows:
                z = (targets[ok, t] - mean[ok, t]) / std[ok, t]
                scale[t] = float(np.sqrt(np.mean(z**2)))
        return scale

    def _fit_member(self, seed: int, train_x: Any, train_y: torch.Tensor, val_x: Any, val_y: torch.Tensor):
        device = self.torch_device
        generator = torch.Generator().manual_seed(seed)  # batch order
        n = train_y.shape[0]
        with _fork_rng(device):
            torch.manual_seed(seed)  # initialisation and dropout masks
            network = self._build_network(self.n_tasks_).to(device)
            optimizer = torch.optim.AdamW(network.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            best_loss, best_state, best_epoch, stale, epoch = math.inf, None, -1, 0, 0
            for epoch in range(self.epochs):
                network.train()
                train_loss, seen = 0.0, 0
                for batch in torch.randperm(n, generator=generator).split(self.batch_size):
                    rows = batch.tolist()
                    loss = self._loss(self._forward(network, self._collate(train_x, rows)), train_y[batch.to(device)])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    train_loss += loss.item() * len(rows)
                    seen += len(rows)
                if val_x is None:
                    continue
                val_loss = self._evaluate_loss(network, val_x, val_y)
                if val_loss < best_loss:
                    best_loss, best_epoch, stale = val_loss, epoch, 0
                    best_state = copy.deepcopy(network.state_dict())
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
            if best_state is not None:
                network.load_state_dict(best_state)
        network.eval()
        summary = {
            "seed": seed,
            "epochs_run": epoch + 1,
            "best_epoch": best_epoch if best_state is not None else epoch,
            "best_val_loss": best_loss if best_state is not None else None,
            "last_train_loss": train_loss / max(seen, 1),
        }
        return network, summary

    @torch.no_grad()
    def _evaluate_loss(self, network: nn.Module, features: Any, targets: torch.Tensor, batch_size: int = 256) -> float:
        network.eval()
        n = targets.shape[0]
        outputs = torch.cat([
            self._forward(network, self._collate(features, list(range(start, min(n, start + batch_size)))))
            for start in range(0, n, batch_size)
        ])
        return float(self._loss(outputs, targets))

    # -- prediction ---------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not self.members_:
            raise RuntimeError(f"{type(self).__name__} is not trained: call fit() or load()")

    @torch.no_grad()
    def predict_members(self, objs: Sequence[Chem.Mol | None], *, batch_size: int = 256) -> np.ndarray:
        """Every ensemble pass, in target units (or probabilities).

        Args:
            objs: RDKit molecules; ``None`` entries give NaN rows.
            batch_size: Molecules per forward pass.

        Returns:
            ``[n_passes, n, n_tasks]`` with ``n_passes = n_models`` (times
            ``mc_dropout_samples`` when MC dropout is on).
        """
        self._check_fitted()
        objs = list(objs)
        valid = [i for i, m in enumerate(objs) if m is not None]
        if any(not self._is_input(objs[i]) for i in valid):
            raise DataError(f"predict: entries must be {self.input_description} or None")
        valid = [i for i in valid if self._can_featurize(objs[i])]
        passes = self.n_models * max(1, self.mc_dropout_samples)
        out = np.full((passes, len(objs), self.n_tasks_), np.nan)
        if not valid:
            return out
        features = self._featurize([objs[i] for i in valid])
        device = self.torch_device
        chunks = [list(range(s, min(len(valid), s + batch_size))) for s in range(0, len(valid), batch_size)]
        results = []
        for k, network in enumerate(self.members_):
            if self.mc_dropout_samples == 0:
                network.eval()
                results.append(torch.cat([self._forward(network, self._collate(features, c)) for c in chunks]))
                continue
            with _fork_rng(device):
                # Seeded so that repeated predictions (and a reloaded model) agree.
                torch.manual_seed(self.seed + k)
                network.eval()
                for module in network.modules():
                    if isinstance(module, nn.Dropout):
                        module.train()
                for _ in range(self.mc_dropout_samples):
                    results.append(torch.cat([self._forward(network, self._collate(features, c)) for c in chunks]))
                network.eval()
        raw = torch.stack(results).double().cpu().numpy()
        if self.task == "regression":
            values = raw * self.target_std_ + self.target_mean_
        else:
            values = 1.0 / (1.0 + np.exp(-raw))
        out[:, valid] = values
        return out

    def _can_featurize(self, obj: Any) -> bool:
        """Whether an input of the right type can be featurised; the rest get NaN
        like ``None`` (a family overrides this for inputs its featuriser would choke on)."""
        return True

    def predict(self, objs: Sequence[Chem.Mol | None], *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Predicted mean and uncertainty.

        Args:
            objs: RDKit molecules; ``None`` entries (unparsable inputs) give
                NaN mean and std at their rows.
            batch_size: Molecules per forward pass.

        Returns:
            ``(mean, std)``, each ``[n]`` when the model was fitted on 1-D
            targets, else ``[n, n_tasks]``. Regression: target units;
            classification: probability of label 1 and its spread.
        """
        passes = self.predict_members(objs, batch_size=batch_size)
        with np.errstate(invalid="ignore"):
            mean, std = passes.mean(axis=0), passes.std(axis=0) * getattr(self, "std_scale_", 1.0)
        if self.target_ndim_ == 1:
            mean, std = mean[:, 0], std[:, 0]
        return mean, std

    # -- persistence --------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``.

        Args:
            directory: Target folder (created if needed; the two files are
                replaced atomically).

        Returns:
            The directory path.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            f"member{k}.{key}": value for k, network in enumerate(self.members_) for key, value in network.state_dict().items()
        }
        tensors["target_mean"] = torch.tensor(self.target_mean_, dtype=torch.float64)
        tensors["target_std"] = torch.tensor(self.target_std_, dtype=torch.float64)
        tensors["std_scale"] = torch.tensor(getattr(self, "std_scale_", np.ones(self.n_tasks_)), dtype=torch.float64)
        save_tensors(directory / "model.safetensors", tensors)
        write_json(directory / "config.json", {
            "predictor": self.name,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "n_tasks": self.n_tasks_,
            "target_ndim": self.target_ndim_,
            "fit_report": self.fit_report_,
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "Predictor":
        """Load a predictor written by :meth:`save`.

        Args:
            directory: The model directory.
            device: Where to put the networks.

        Returns:
            The predictor, ready to ``predict``. Called on the base class it
            dispatches on ``config.json``'s ``"predictor"`` name.

        Raises:
            CheckpointError: missing or corrupted files, or a directory saved
                by a different predictor class.
        """
        directory = Path(directory)
        config = read_json(directory / "config.json")
        kind = saved_kind(config, directory)
        if cls is Predictor:
            return load_predictor(directory, device=device)
        if kind != cls.name:
            raise CheckpointError(f"{directory} holds a {kind!r} predictor, not {cls.name!r}")
        if config.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{directory}: unsupported predictor format {config.get('format_version')!r}")
        tensors = load_tensors(directory / "model.safetensors", device=device)
        try:
            model = cls(**config["params"], device=device)
            model._before_loading_weights()
            model.n_tasks_ = int(config["n_tasks"])
            model.target_ndim_ = int(config["target_ndim"])
            model.fit_report_ = config.get("fit_report", {})
            model.target_mean_ = tensors.pop("target_mean").cpu().numpy()
            model.target_std_ = tensors.pop("target_std").cpu().numpy()
            scale = tensors.pop("std_scale", None)
            model.std_scale_ = np.ones(model.n_tasks_) if scale is None else scale.cpu().numpy()
            for k in range(model.n_models):
                prefix = f"member{k}."
                state = {key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)}
                network = model._build_network(model.n_tasks_).to(model.torch_device)
                network.load_state_dict(state)
                network.eval()
                model.members_.append(network)
        except (KeyError, TypeError, RuntimeError, ConfigError) as exc:
            raise CheckpointError(f"corrupted predictor directory {directory}: {exc}") from None
        return model
