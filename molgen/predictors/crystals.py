"""Learned crystal property predictors: a CGCNN-style periodic graph network
and a two-stage band-gap model.

:class:`CGCNNPredictor` follows the :class:`~molgen.predictors.base.Predictor`
contract (``fit`` / ``predict -> (mean, std)`` / ``save`` / ``load``, deep
ensemble uncertainty) for pymatgen ``Structure`` inputs. The network is the
crystal graph convolutional network of Xie & Grossman (PRL 120, 145301, 2018),
:class:`molgen.nn.cgcnn.CGCNN`; this module turns structures into its input:

* atoms: a learned embedding of the atomic number, plus (by default) a linear
  projection of a fixed table of standardised element descriptors (group,
  period, electronegativity, radii, ionisation energy, ...), so that elements
  seen rarely in training still start near chemically similar ones;
* edges: the periodic neighbour list of
  :func:`~molgen.domains.crystal.graph.structure_to_graph` (each atom's
  ``max_neighbors`` nearest neighbours within ``cutoff``, across cell
  boundaries, plus any tied with the last, see :func:`nearest_neighbours`),
  with the interatomic distance expanded in Gaussians;
* ``n_conv`` gated convolutions ``v_i <- softplus(v_i + BN(sum_j
  sigmoid(z_ij W_f) * softplus(z_ij W_s)))`` with ``z_ij = [v_i, v_j, e_ij]``;
* mean (or sum) pooling over the atoms of the cell and an MLP head.

Everything depends on interatomic distances and element identities only, so
predictions are invariant to rotations, translations, the choice of unit cell
and the order of sites.

:class:`GapPredictor` handles band gaps, which are exactly zero for most
materials (metals): a CGCNN classifier gives ``P(gap > threshold)`` and a
CGCNN regressor trained on the non-metals only gives the gap of a non-metal;
the prediction is their product.

Example::

    model = CGCNNPredictor(n_models=3, epochs=100).fit(structures, energies)
    mean, std = model.predict(new_structures)
    model.save("heat-cgcnn")
    same = load_predictor("heat-cgcnn")
"""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from molgen.core.errors import CheckpointError, ConfigError, DataError
from molgen.core.serialization import read_json, write_json
from molgen.nn.cgcnn import (
    CGCNN,
    MAX_Z,
    NORMS,
    POOLINGS,
    CrystalGraphBatch,
    PackedCrystalGraphs,
    pack_crystal_graphs,
)
from molgen.predictors.base import Predictor
from molgen.predictors.registry import register, saved_kind

__all__ = [
    "ELEMENT_DESCRIPTOR_NAMES",
    "CGCNNPredictor",
    "GapPredictor",
    "TIE_TOLERANCE",
    "element_descriptors",
    "nearest_neighbours",
]

#: Neighbours this close (A) to an atom's last kept neighbour are kept too
#: (see :func:`nearest_neighbours`); larger than the rounding of stored coordinates.
TIE_TOLERANCE = 1e-2

#: Columns of :func:`element_descriptors` (the block is one-hot over s, p, d, f).
ELEMENT_DESCRIPTOR_NAMES = (
    "group",
    "row",
    "electronegativity",
    "atomic_radius",
    "average_ionic_radius",
    "mendeleev_number",
    "first_ionization_energy",
    "electron_affinity",
    "molar_volume",
    "atomic_mass",
    "block_s",
    "block_p",
    "block_d",
    "block_f",
)


# ----------------------------------------------------------------------------- element features


@functools.lru_cache(maxsize=1)
def element_descriptors() -> np.ndarray:
    """Standardised element descriptors from pymatgen, one row per atomic number.

    Returns:
        ``float32`` array ``[MAX_Z + 1, len(ELEMENT_DESCRIPTOR_NAMES)]``; row 0
        (no element) is zero. Numeric columns are standardised over the
        elements that have a value, and missing values (for example the
        electronegativity of noble gases) are set to 0, the column mean. The
        table is stored in a model's weights, so a saved model does not
        depend on the pymatgen version that reloads it.
    """
    from pymatgen.core.periodic_table import Element  # lazy: see CGCNNPredictor._is_input

    def value(getter) -> float:
        try:
            result = getter()
            return float(result) if result is not None else math.nan
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            return math.nan

    numeric = np.full((MAX_Z + 1, 10), np.nan)
    blocks = np.zeros((MAX_Z + 1, 4))
    with warnings.catch_warnings():
        # pymatgen warns for every property an element lacks; NaN says it already.
        warnings.simplefilter("ignore")
        for z in range(1, MAX_Z + 1):
            element = Element.from_Z(z)
            numeric[z] = [
                value(lambda: element.group),
                value(lambda: element.row),
                value(lambda: element.X),
                value(lambda: element.atomic_radius),
                value(lambda: element.average_ionic_radius),
                value(lambda: element.mendeleev_no),
                value(lambda: element.ionization_energies[0]),
                value(lambda: element.electron_affinity),
                value(lambda: element.molar_volume),
                value(lambda: element.atomic_mass),
            ]
            block = getattr(element, "block", None)
            if block in ("s", "p", "d", "f"):
                blocks[z, "spdf".index(block)] = 1.0
    body = numeric[1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN columns cannot happen, but stay quiet
        mean, std = np.nanmean(body, axis=0), np.nanstd(body, axis=0)
    numeric[1:] = np.nan_to_num((body - mean) / np.where(std > 0, std, 1.0), nan=0.0)
    numeric[0] = 0.0
    return np.concatenate([numeric, blocks], axis=1).astype(np.float32)


#: Element feature tables a :class:`CGCNNPredictor` can add to its learned embedding.
ELEMENT_FEATURES = ("none", "descriptors", "chgnet", "descriptors+chgnet")


@functools.lru_cache(maxsize=1)
def chgnet_element_embedding() -> np.ndarray:
    """CHGNet 0.3.0's pretrained atom embedding, one row per atomic number.

    CHGNet learned it from energies, forces, stresses and magnetic moments of
    ~1.5 million MPtrj structures, so it places elements by how they bond in
    far more crystals than any one property set shows a predictor.

    Returns:
        ``float32`` ``[MAX_Z + 1, 64]``, columns standardised over the 94
        elements CHGNet knows; rows 0 and Z > 94 are zero.

    Raises:
        MolgenError: chgnet is not installed (the ``molgen[potential]`` extra).
    """
    import contextlib
    import io

    from molgen.core.errors import MolgenError

    try:
        from chgnet.model import CHGNet
    except ImportError as exc:
        raise MolgenError(f"element_features 'chgnet' needs the optional extra molgen[potential] ({exc})") from None
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weight = CHGNet.load(model_name="0.3.0", verbose=False).atom_embedding.embedding.weight.detach().numpy()
    weight = (weight - weight.mean(axis=0)) / np.where(weight.std(axis=0) > 0, weight.std(axis=0), 1.0)
    table = np.zeros((MAX_Z + 1, weight.shape[1]), dtype=np.float32)
    table[1: 1 + len(weight)] = weight
    return table


def element_feature_table(kind: str) -> np.ndarray | None:
    """The fixed element table of one :data:`ELEMENT_FEATURES` choice (None for ``"none"``)."""
    parts = {"descriptors": element_descriptors, "chgnet": chgnet_element_embedding}
    tables = [parts[name]() for name in kind.split("+") if name in parts]
    return np.concatenate(tables, axis=1) if tables else None


def _element_table_width(kind: str) -> int:
    """Width of :func:`element_feature_table` without computing it (a saved
    model stores the table in its weights, so loading needs only its shape)."""
    return sum({"descriptors": len(ELEMENT_DESCRIPTOR_NAMES), "chgnet": 64}.get(name, 0) for name in kind.split("+"))


# ----------------------------------------------------------------------------- graphs


def nearest_neighbours(graph: Any, max_neighbors: int, tolerance: float = TIE_TOLERANCE) -> Any:
    """Keep each atom's ``max_neighbors`` nearest neighbours, and any tied with the last one.

    A plain "first k after sorting" cut splits shells of equidistant
    neighbours (in a cubic perovskite an oxygen has 14 neighbours at or
    below ``a / sqrt(2)``) by rounding noise, so that translating the cell or
    reordering its sites could change the graph and the prediction. Keeping
    the whole tied shell makes the graph depend on the geometry only.

    Args:
        graph: ``Data`` of :func:`~molgen.domains.crystal.graph.structure_to_graph`
            with ``edge_distance``.
        max_neighbors: Neighbours to keep per centre atom (at least).
        tolerance: Distances within this (A) of the last kept one count as tied.

    Returns:
        A copy of ``graph`` with fewer edges (``edge_index``, ``edge_image``
        and ``edge_distance`` filtered alike).
    """
    centres = graph.edge_index[1].numpy()
    distances = graph.edge_distance.double().numpy()
    order = np.lexsort((distances, centres))
    sorted_centres = centres[order]
    first = np.searchsorted(sorted_centres, sorted_centres, side="left")
    rank = np.arange(len(order)) - first
    counts = np.bincount(centres, minlength=int(graph.num_nodes))
    # Distance of each centre's k-th neighbour (infinite when it has fewer).
    kth = np.full(len(counts), np.inf)
    has_k = counts >= max_neighbors
    kth[has_k] = distances[order][(rank == max_neighbors - 1)]
    keep = distances <= kth[centres] + tolerance
    out = graph.clone()
    mask = torch.from_numpy(keep)
    out.edge_index = graph.edge_index[:, mask]
    out.edge_image = graph.edge_image[mask]
    out.edge_distance = graph.edge_distance[mask]
    return out


# ----------------------------------------------------------------------------- predictor


@register(trainable=True)
class CGCNNPredictor(Predictor):
    """CGCNN property predictor for crystals, as a deep ensemble.

    Inputs are ordered pymatgen ``Structure`` objects (``None`` at predict
    time gives NaN). Distances come from the periodic neighbour list of
    :func:`~molgen.domains.crystal.graph.structure_to_graph`.

    Args:
        task: ``"regression"`` or ``"classification"``.
        atom_dim: Atom state width.
        n_conv: Gated convolutions (3-4 in the CGCNN paper).
        head_hidden: Width of the head's hidden layers.
        head_layers: Hidden layers of the head.
        cutoff: Neighbour search radius (A), also the range of the Gaussian
            distance expansion.
        max_neighbors: Neighbours kept per atom (nearest first, plus any
            tied with the last; None: all within ``cutoff``). CGCNN uses 12.
        n_gaussians: Gaussians of the distance expansion.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` normalisation in the
            convolutions.
        pooling: ``"mean"`` or ``"sum"`` over the atoms of a cell.
        element_features: Fixed element features added (through a linear
            projection) to the learned atom-type embedding, which helps rare
            elements: one of :data:`ELEMENT_FEATURES`; ``"descriptors"``:
            14 standardised pymatgen descriptors, ``"chgnet"``: CHGNet's
            pretrained 64-d atom embedding (needs chgnet to train, not to
            load); True/False mean ``"descriptors"``/``"none"``.
        **kwargs: Training and ensemble settings of
            :class:`~molgen.predictors.base.Predictor` (``n_models``,
            ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``dropout``,
            ``patience``, ``val_fraction``, ``mc_dropout_samples``, ``seed``,
            ``device``).
    """

    name = "cgcnn"
    input_description = "ordered pymatgen Structures"

    def __init__(
        self,
        task: str = "regression",
        atom_dim: int = 64,
        n_conv: int = 3,
        head_hidden: int = 128,
        head_layers: int = 1,
        cutoff: float = 6.0,
        max_neighbors: int | None = 12,
        n_gaussians: int = 41,
        norm: str = "batch",
        pooling: str = "mean",
        element_features: bool | str = True,
        n_models: int = 5,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        dropout: float = 0.0,
        patience: int = 15,
        val_fraction: float = 0.1,
        mc_dropout_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.atom_dim = atom_dim
        self.n_conv = n_conv
        self.head_hidden = head_hidden
        self.head_layers = head_layers
        self.cutoff = cutoff
        self.max_neighbors = max_neighbors
        self.n_gaussians = n_gaussians
        self.norm = norm
        self.pooling = pooling
        if isinstance(element_features, bool):
            element_features = "descriptors" if element_features else "none"
        if element_features not in ELEMENT_FEATURES:
            raise ConfigError(f"unknown element_features {element_features!r}; expected one of {', '.join(ELEMENT_FEATURES)}")
        self.element_features = element_features
        # Set by load(): the table then comes from the saved weights.
        self._table_from_weights = False
        if norm not in NORMS:
            raise ConfigError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        if (
            atom_dim < 1 or n_conv < 1 or head_hidden < 1 or head_layers < 0 or not cutoff > 0 or n_gaussians < 2
            or (max_neighbors is not None and max_neighbors < 1)
        ):
            raise ConfigError(
                f"invalid CGCNNPredictor settings: atom_dim={atom_dim}, n_conv={n_conv}, head_hidden={head_hidden}, "
                f"head_layers={head_layers}, cutoff={cutoff}, max_neighbors={max_neighbors}, n_gaussians={n_gaussians}"
            )
        super().__init__(
            task=task, n_models=n_models, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            dropout=dropout, patience=patience, val_fraction=val_fraction, mc_dropout_samples=mc_dropout_samples,
            seed=seed, device=device,
        )

    def _is_input(self, obj: Any) -> bool:
        # Lazy: the registry imports every family on its first lookup, and a
        # molecular predictor should not pay for pymatgen (~0.2 s, measured).
        from pymatgen.core.structure import IStructure

        return isinstance(obj, IStructure) and len(obj) > 0 and obj.is_ordered

    def _can_featurize(self, obj: Any) -> bool:
        # A collapsed generated cell gets NaN instead of hanging the neighbour search.
        from molgen.domains.crystal.graph import graphable

        return graphable(obj)

    def graphs(self, structures: Sequence[Any]) -> list[Any]:
        """Periodic graphs of structures with this predictor's neighbour settings.

        Args:
            structures: Ordered pymatgen structures.

        Returns:
            PyG ``Data`` objects of :func:`~molgen.domains.crystal.graph.structure_to_graph`
            (all neighbours within ``cutoff``), cut by :func:`nearest_neighbours`
            to ``max_neighbors`` per atom plus ties.
        """
        # Lazy like pymatgen above: importing the domains package takes ~2.7 s (measured).
        from molgen.domains.crystal.graph import structure_to_graph

        graphs = [structure_to_graph(s, cutoff=self.cutoff, max_neighbors=None) for s in structures]
        if self.max_neighbors is None:
            return graphs
        return [nearest_neighbours(g, self.max_neighbors) for g in graphs]

    def _featurize(self, structures: Sequence[Any]) -> PackedCrystalGraphs:
        # Packed once on the CPU; each mini-batch is sliced out and moved to the device.
        return pack_crystal_graphs(self.graphs(structures))

    def _collate(self, features: PackedCrystalGraphs, rows: Sequence[int]) -> CrystalGraphBatch:
        return features.select(rows, device=self.torch_device)

    def _build_network(self, n_tasks: int) -> nn.Module:
        return CGCNN(
            n_tasks, atom_dim=self.atom_dim, n_conv=self.n_conv, head_hidden=self.head_hidden,
            head_layers=self.head_layers, n_gaussians=self.n_gaussians, cutoff=self.cutoff, dropout=self.dropout,
            norm=self.norm, pooling=self.pooling,
            element_table=self._element_table(),
        )

    def _element_table(self) -> torch.Tensor | None:
        if self.element_features == "none":
            return None
        if self._table_from_weights:  # overwritten by the saved buffer
            return torch.zeros(MAX_Z + 1, _element_table_width(self.element_features))
        return torch.from_numpy(element_feature_table(self.element_features))

    def _before_loading_weights(self) -> None:
        self._table_from_weights = True


# ----------------------------------------------------------------------------- band gaps


@register(trainable=False)
class GapPredictor:
    """Band gaps as "is it a non-metal?" times "how large is its gap?".

    Most inorganic materials in the usual data sets are metals with a gap of
    exactly 0; one regressor on all of them spends its capacity on the zeros
    and blurs the gaps of the few insulators. Here a CGCNN classifier
    predicts ``p = P(gap > threshold)`` and a CGCNN regressor, trained on the
    non-metals only, predicts the gap ``g`` a non-metal would have. The
    prediction is the expected gap ``p * g``.

    The std is that of the two-outcome mixture "0 with probability 1 - p,
    g +- s_g with probability p", plus the classifier ensemble's spread
    ``s_p`` propagated through ``p * g``::

        std^2 = p * s_g^2 + p * (1 - p) * g^2 + (g * s_p)^2

    so it is large both when the members disagree and when the classifier is
    unsure whether the material is a metal at all. :meth:`predict_parts`
    returns the separate pieces.

    Args:
        threshold: Gaps above this (eV) count as non-metals.
        classifier_params: Settings of the classifier :class:`CGCNNPredictor`
            (override ``common``; ``task`` is fixed).
        regressor_params: Settings of the regressor (same rules).
        **common: Settings given to both (``n_models``, ``epochs``, ``seed``,
            ``device``, ...).

    Attributes:
        classifier: The :class:`CGCNNPredictor` for ``gap > threshold``.
        regressor: The :class:`CGCNNPredictor` for the gap of non-metals.
        fit_report_: After ``fit``: label counts and both members' reports.
        decision_threshold: ``P(non-metal)`` at which a structure is called a
            non-metal: F1-optimal on the validation rows given to ``fit`` (or to
            :meth:`calibrate_decision`), else 0.5. A classifier trained on few
            non-metals is underconfident (its probabilities track the 4 %
            prior), so 0.5 would call almost nothing a non-metal.
    """

    name = "cgcnn-gap"
    format_version = 1

    def __init__(
        self,
        threshold: float = 1e-3,
        classifier_params: dict[str, Any] | None = None,
        regressor_params: dict[str, Any] | None = None,
        **common: Any,
    ):
        for params in (classifier_params or {}, regressor_params or {}, common):
            if "task" in params:
                raise ConfigError("GapPredictor fixes the members' task; do not pass 'task'")
        if not math.isfinite(threshold) or threshold < 0:
            raise ConfigError(f"GapPredictor threshold must be a finite number >= 0, got {threshold!r}")
        self.threshold = float(threshold)
        self.classifier_params = dict(classifier_params or {})
        self.regressor_params = dict(regressor_params or {})
        self.common = dict(common)
        self.classifier = CGCNNPredictor(task="classification", **{**self.common, **self.classifier_params})
        self.regressor = CGCNNPredictor(task="regression", **{**self.common, **self.regressor_params})
        self.fit_report_: dict[str, Any] = {}
        self.decision_threshold = 0.5

    def labels(self, gaps: Any) -> np.ndarray:
        """Non-metal labels.

        Args:
            gaps: Band gaps (eV), ``[n]``.

        Returns:
            ``[n]`` floats: 1 where ``gap > threshold``, 0 where not, NaN where
            the gap is missing.
        """
        gaps = np.asarray(gaps, dtype=np.float64).reshape(-1)
        with np.errstate(invalid="ignore"):
            return np.where(np.isfinite(gaps), (gaps > self.threshold).astype(np.float64), np.nan)

    def fit(self, objs: Sequence[Any], gaps: Any, *, val: tuple[Sequence[Any], Any] | None = None) -> "GapPredictor":
        """Train the classifier on all rows and the regressor on the non-metals.

        Args:
            objs: Ordered pymatgen structures.
            gaps: Band gaps ``[n]`` (eV, >= 0); NaN rows are ignored.
            val: Optional ``(structures, gaps)`` for early stopping of both
                members (the regressor uses its non-metals; with fewer than 2
                of them it falls back to its internal split).

        Returns:
            self.

        Raises:
            DataError: targets of the wrong shape, or training data without
                both metals and at least 2 non-metals.
        """
        objs = list(objs)
        gaps = np.asarray(gaps, dtype=np.float64)
        if gaps.shape != (len(objs),):
            raise DataError(f"GapPredictor.fit: gaps must have shape [{len(objs)}], got {list(gaps.shape)}")
        labels = self.labels(gaps)
        n_pos, n_neg = int(np.nansum(labels)), int(np.sum(labels == 0))
        if n_pos < 2 or n_neg < 1:
            raise DataError(f"GapPredictor.fit: need metals and >= 2 non-metals, got {n_neg} metals and {n_pos} non-metals")
        val_cls = val_reg = None
        if val is not None:
            val_objs, val_gaps = list(val[0]), np.asarray(val[1], dtype=np.float64).reshape(-1)
            val_labels = self.labels(val_gaps)
            val_cls = (val_objs, val_labels)
            keep = np.flatnonzero(val_labels == 1)
            if len(keep) >= 2:
                val_reg = ([val_objs[i] for i in keep], val_gaps[keep])
        self.classifier.fit(objs, labels, val=val_cls)
        positive = np.flatnonzero(labels == 1)
        self.regressor.fit([objs[i] for i in positive], gaps[positive], val=val_reg)
        if val is not None and np.nansum(val_cls[1]) >= 1:
            self.calibrate_decision(val_cls[0], val_gaps)
        self.fit_report_ = {
            "decision_threshold": self.decision_threshold,
            "threshold": self.threshold,
            "n_metals": n_neg,
            "n_nonmetals": n_pos,
            "classifier": self.classifier.fit_report_,
            "regressor": self.regressor.fit_report_,
        }
        return self

    def calibrate_decision(self, objs: Sequence[Any], gaps: Any) -> float:
        """Set :attr:`decision_threshold` to the ``P(non-metal)`` that
        maximises F1 for "is a non-metal" on held-out structures.

        Args:
            objs: Held-out structures (not the training rows).
            gaps: Their band gaps (eV).

        Returns:
            The threshold.

        Raises:
            DataError: no non-metal among the labelled rows.
        """
        labels = self.labels(gaps)
        keep = np.isfinite(labels)
        p, _ = self.classifier.predict([o for o, k in zip(objs, keep) if k])
        y = labels[keep] == 1
        if not y.any():
            raise DataError("calibrate_decision: the held-out rows hold no non-metal")
        best_f1, best = -1.0, 0.5
        for t in np.unique(p):
            called = p >= t
            tp = float(np.sum(called & y))
            f1 = 2 * tp / (called.sum() + y.sum())
            if f1 > best_f1:
                best_f1, best = f1, float(t)
        self.decision_threshold = best
        return best

    def predict_parts(self, objs: Sequence[Any], *, batch_size: int = 256) -> dict[str, np.ndarray]:
        """The two stages' outputs, separately.

        Args:
            objs: Ordered pymatgen structures; ``None`` gives NaN.
            batch_size: Structures per forward pass.

        Returns:
            ``{"p_nonmetal", "p_nonmetal_std", "gap_if_nonmetal",
            "gap_if_nonmetal_std"}``, each ``[n]``. The conditional gap is
            clipped at 0 (a gap cannot be negative).
        """
        objs = list(objs)
        p, p_std = self.classifier.predict(objs, batch_size=batch_size)
        g, g_std = self.regressor.predict(objs, batch_size=batch_size)
        return {
            "p_nonmetal": p,
            "p_nonmetal_std": p_std,
            "gap_if_nonmetal": np.maximum(g, 0.0),
            "gap_if_nonmetal_std": g_std,
        }

    def predict(self, objs: Sequence[Any], *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Expected band gap and its uncertainty.

        Args:
            objs: Ordered pymatgen structures; ``None`` gives NaN.
            batch_size: Structures per forward pass.

        Returns:
            ``(mean, std)``, each ``[n]`` (eV): ``mean = p * g`` and ``std`` as
            in the class description.
        """
        parts = self.predict_parts(objs, batch_size=batch_size)
        p, s_p = parts["p_nonmetal"], parts["p_nonmetal_std"]
        g, s_g = parts["gap_if_nonmetal"], parts["gap_if_nonmetal_std"]
        variance = p * s_g**2 + p * (1.0 - p) * g**2 + (g * s_p) ** 2
        return p * g, np.sqrt(np.maximum(variance, 0.0))

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` plus ``classifier/`` and ``regressor/`` model directories.

        Args:
            directory: Target folder (created if needed).

        Returns:
            The directory path.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.classifier.save(directory / "classifier")
        self.regressor.save(directory / "regressor")
        write_json(directory / "config.json", {
            "predictor": self.name,
            "format_version": self.format_version,
            "threshold": self.threshold,
            "decision_threshold": self.decision_threshold,
            "classifier": "classifier",
            "regressor": "regressor",
            "fit_report": self.fit_report_,
        })
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> "GapPredictor":
        """Load a model written by :meth:`save`.

        Args:
            directory: The model directory.
            device: Where to put the networks.

        Returns:
            The predictor, ready to ``predict``.

        Raises:
            CheckpointError: missing or corrupted files, or another kind of model.
        """
        directory = Path(directory)
        config = read_json(directory / "config.json")
        if saved_kind(config, directory) != cls.name:
            raise CheckpointError(f"{directory} does not hold a {cls.name!r} model")
        if config.get("format_version") != cls.format_version:
            raise CheckpointError(f"{directory}: unsupported {cls.name} format {config.get('format_version')!r}")
        try:
            model = cls(threshold=float(config["threshold"]))
            model.classifier = CGCNNPredictor.load(directory / str(config["classifier"]), device=device)
            model.regressor = CGCNNPredictor.load(directory / str(config["regressor"]), device=device)
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise CheckpointError(f"corrupted {cls.name} directory {directory}: {exc}") from None
        if model.classifier.task != "classification" or model.regressor.task != "regression":
            raise CheckpointError(f"corrupted {cls.name} directory {directory}: member tasks are swapped")
        model.classifier_params = model.classifier.get_params()
        model.regressor_params = model.regressor.get_params()
        model.fit_report_ = config.get("fit_report", {})
        model.decision_threshold = float(config.get("decision_threshold", 0.5))
        return model
