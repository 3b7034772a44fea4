"""A consensus of unlike predictors: a descriptor forest and a D-MPNN, averaged.

Models that see molecules differently (fixed descriptors and trees versus a
learned graph representation) make partly independent errors, so their mean
is more accurate than either, and where they disagree the molecule is
usually outside what the training data pins down: the spread between the
members' means is a second, ensemble-free uncertainty signal. The std
reported is ``sqrt(mean_k s_k^2 + var_k m_k)`` (each member's own std and the
disagreement of the member means), so a :class:`~molgen.predictors.calibrated.CalibratedPredictor`
around it can weigh both.

Saved as ``config.json`` (the member kinds and settings) plus each fitted
member in ``member<k>/`` in its own format; nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch

from molgen.core.errors import CheckpointError, ConfigError
from molgen.core.serialization import write_json
from molgen.predictors.registry import PREDICTORS, load_predictor, read_saved_config, register

__all__ = ["ConsensusPredictor", "DEFAULT_MEMBERS", "combine_members"]

FORMAT_VERSION = 1

#: The default pair: RDKit-descriptor forest and D-MPNN with descriptors.
DEFAULT_MEMBERS: tuple[dict[str, Any], ...] = (
    {"kind": "descriptor-forest", "features": "descriptors"},
    {"kind": "mpnn", "descriptors": True},
)


def combine_members(means: Sequence[Any], stds: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The consensus of member predictions: mean of the means, and
    ``sqrt(mean_k s_k^2 + var_k m_k)`` as the std.

    Args:
        means: One array per member, all the same shape.
        stds: The members' stds, same shapes.

    Returns:
        ``(mean, std)`` of that shape (NaN where any member is NaN).
    """
    means = np.stack([np.asarray(m, dtype=np.float64) for m in means])
    stds = np.stack([np.asarray(s, dtype=np.float64) for s in stds])
    with np.errstate(invalid="ignore"):
        return means.mean(axis=0), np.sqrt(np.mean(stds ** 2, axis=0) + means.var(axis=0))


def _settings_of(cls: type) -> set[str]:
    """Constructor settings a member class takes."""
    import inspect

    return set(inspect.signature(cls.__init__).parameters) - {"self", "task", "seed", "device"}


@register(trainable=True)
class ConsensusPredictor:
    """Average of several predictors of different kinds, fitted on the same rows.

    Args:
        task: ``"regression"`` or ``"classification"``.
        members: One dict per member: ``{"kind": registered name, **its
            constructor settings}`` (default: descriptor forest + D-MPNN with
            descriptors).
        seed: Seed of every member (member ``k`` gets ``seed + k``).
        device: Device of the neural members.
        **shared: Settings passed to every member whose constructor takes
            them (e.g. ``n_models``, ``epochs`` for the neural ones).

    Example::

        model = ConsensusPredictor().fit(train_mols, y)
        mean, std = model.predict(new_mols)
    """

    name: ClassVar[str] = "consensus"
    input_description: ClassVar[str] = "RDKit molecules"

    def __init__(self, task: str = "regression", members: Sequence[dict[str, Any]] | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", **shared: Any):
        self.task, self.seed, self.device = task, seed, device
        self.members = [dict(m) for m in (DEFAULT_MEMBERS if members is None else members)]
        self.shared = dict(shared)
        if len(self.members) < 2:
            raise ConfigError("a consensus needs at least two members")
        for spec in self.members:
            if not isinstance(spec, dict) or spec.get("kind") not in PREDICTORS or spec.get("kind") == self.name:
                raise ConfigError(f"consensus member {spec!r}: 'kind' must name a trainable predictor "
                                  f"({', '.join(n for n in sorted(PREDICTORS) if n != self.name)})")
        unused = sorted(k for k in self.shared if not any(k in _settings_of(PREDICTORS[m["kind"]]) for m in self.members))
        if unused:
            raise ConfigError(f"no consensus member has a setting {', '.join(unused)}")
        self.models_: list[Any] = []
        self.n_tasks_: int | None = None
        self.target_ndim_ = 1
        self.fit_report_: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, without ``device``."""
        return {"task": self.task, "members": self.members, "seed": self.seed, **self.shared}

    def _build(self, k: int, spec: dict[str, Any]):
        cls = PREDICTORS[spec["kind"]]
        accepted = _settings_of(cls)
        settings = {key: value for key, value in self.shared.items() if key in accepted}
        settings.update({key: value for key, value in spec.items() if key != "kind"})
        return cls(task=self.task, seed=self.seed + k, device=self.device, **settings)

    def fit(self, objs: Sequence[Any], y: Any, *, val: tuple[Sequence[Any], Any] | None = None) -> "ConsensusPredictor":
        """Fit every member on the same rows.

        Args:
            objs: RDKit molecules.
            y: Targets ``[n]`` or ``[n, t]`` (NaN: missing).
            val: Optional held-out ``(molecules, targets)`` each member may use.

        Returns:
            self.
        """
        objs = list(objs)
        self.models_ = [self._build(k, spec).fit(objs, y, val=val) for k, spec in enumerate(self.members)]
        self.n_tasks_, self.target_ndim_ = self.models_[0].n_tasks_, self.models_[0].target_ndim_
        self.fit_report_ = {"members": [{"kind": spec["kind"], **getattr(m, "fit_report_", {})}
                                        for spec, m in zip(self.members, self.models_)]}
        return self

    @classmethod
    def from_fitted(cls, models: Sequence[Any], members: Sequence[dict[str, Any]] | None = None) -> "ConsensusPredictor":
        """Combine predictors already fitted on the same rows.

        Args:
            models: Fitted predictors (at least two, same targets).
            members: Their specs as :meth:`__init__` takes them (default:
                each model's kind and parameters).

        Returns:
            The consensus, ready to predict and save.
        """
        specs = members or [{"kind": m.name, **{k: v for k, v in m.get_params().items() if k not in ("task", "seed")}}
                            for m in models]
        consensus = cls(task=models[0].task, members=specs, seed=getattr(models[0], "seed", 0))
        consensus.models_ = list(models)
        consensus.n_tasks_, consensus.target_ndim_ = models[0].n_tasks_, models[0].target_ndim_
        return consensus

    def _check_fitted(self) -> None:
        if not self.models_:
            raise RuntimeError("ConsensusPredictor is not trained: call fit() or load()")

    def predict(self, objs: Sequence[Any], **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean of the members' means; std from their own stds and their disagreement.

        Args:
            objs: RDKit molecules; ``None`` gives NaN.

        Returns:
            ``(mean, std)``: ``[n]`` for 1-D training targets, else ``[n, n_tasks]``.
        """
        self._check_fitted()
        objs = list(objs)
        outputs = [m.predict(objs) for m in self.models_]
        return combine_members([o[0] for o in outputs], [o[1] for o in outputs])

    def embed(self, objs: Sequence[Any]) -> np.ndarray | None:
        """The learned embedding of the first member that has one (None if none does)."""
        self._check_fitted()
        for model in self.models_:
            if hasattr(model, "embed"):
                return model.embed(objs)
        return None

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and every member in ``member<k>/``.

        Returns:
            The directory.
        """
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for k, model in enumerate(self.models_):
            model.save(directory / f"member{k}")
        write_json(directory / "config.json", {"predictor": self.name, "format_version": FORMAT_VERSION, "params": self.get_params(),
                                               "n_tasks": self.n_tasks_, "target_ndim": self.target_ndim_, "fit_report": self.fit_report_})
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "ConsensusPredictor":
        """Load a consensus written by :meth:`save`.

        Raises:
            CheckpointError: missing or corrupted files.
        """
        directory = Path(directory)
        config = read_saved_config(directory, cls.name, (FORMAT_VERSION,))
        try:
            model = cls(**config["params"], device=device)
            model.models_ = [load_predictor(directory / f"member{k}", device=device) for k in range(len(model.members))]
            model.n_tasks_, model.target_ndim_ = int(config["n_tasks"]), int(config["target_ndim"])
            model.fit_report_ = config.get("fit_report", {})
        except (KeyError, TypeError, ConfigError) as exc:
            raise CheckpointError(f"corrupted predictor directory {directory}: {exc}") from None
        return model
