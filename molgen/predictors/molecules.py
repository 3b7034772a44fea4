"""Learned molecular property predictors: a fingerprint MLP and a D-MPNN.

Both follow the :class:`~molgen.predictors.base.Predictor` contract
(``fit`` / ``predict -> (mean, std)`` / ``save`` / ``load``) and get their
uncertainty from a deep ensemble. Both are registered in
:data:`molgen.predictors.registry.PREDICTORS`, and
:func:`~molgen.predictors.registry.load_predictor` reloads any saved one.

Example::

    model = MPNNPredictor(task="regression", n_models=5).fit(mols, y)
    mean, std = model.predict(new_mols)
    model.save("logp-mpnn")
    same = load_predictor("logp-mpnn")
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import scatter

from molgen.core.errors import ConfigError
from molgen.predictors.base import Predictor
from molgen.predictors.descriptors import DESCRIPTOR_NAMES, DescriptorScaler, rdkit_descriptors
from molgen.predictors.mol_features import ATOM_FEATURE_DIM, BOND_FEATURE_DIM, mol_to_graph
from molgen.predictors.registry import register

__all__ = ["DirectedMPNN", "FingerprintMLP", "MPNNPredictor"]


def _feed_forward(n_in: int, hidden: int, n_layers: int, n_out: int, dropout: float) -> nn.Sequential:
    """``n_layers`` hidden ReLU layers with dropout, then a linear output."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- fingerprint MLP


@register(trainable=True)
class FingerprintMLP(Predictor):
    """Morgan fingerprint + multilayer perceptron, as a deep ensemble.

    Args:
        task: ``"regression"`` or ``"classification"``.
        radius: Morgan radius (2 = ECFP4).
        n_bits: Fingerprint length.
        counts: Use count fingerprints instead of bits (counts help additive
            properties such as logP).
        hidden: Width of the hidden layers.
        n_layers: Number of hidden layers (each ReLU + dropout).
        **kwargs: Training and ensemble settings of
            :class:`~molgen.predictors.base.Predictor` (``n_models``,
            ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``dropout``,
            ``patience``, ``val_fraction``, ``mc_dropout_samples``, ``seed``,
            ``device``).
    """

    name = "fingerprint-mlp"

    def __init__(
        self,
        task: str = "regression",
        radius: int = 2,
        n_bits: int = 2048,
        counts: bool = False,
        hidden: int = 512,
        n_layers: int = 2,
        n_models: int = 5,
        epochs: int = 30,
        batch_size: int = 50,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        dropout: float = 0.2,
        patience: int = 10,
        val_fraction: float = 0.1,
        mc_dropout_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.radius = radius
        self.n_bits = n_bits
        self.counts = counts
        self.hidden = hidden
        self.n_layers = n_layers
        if radius < 0 or n_bits < 1 or hidden < 1 or n_layers < 1:
            raise ConfigError(f"invalid FingerprintMLP settings: radius={radius}, n_bits={n_bits}, hidden={hidden}, n_layers={n_layers}")
        super().__init__(
            task=task, n_models=n_models, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            dropout=dropout, patience=patience, val_fraction=val_fraction, mc_dropout_samples=mc_dropout_samples,
            seed=seed, device=device,
        )

    def fingerprints(self, mols: Sequence[Chem.Mol]) -> np.ndarray:
        """Morgan fingerprints of molecules.

        Args:
            mols: RDKit molecules.

        Returns:
            ``float32`` array ``[n, n_bits]`` (bits, or counts with ``counts``).
        """
        generator = rdFingerprintGenerator.GetMorganGenerator(radius=self.radius, fpSize=self.n_bits)
        encode = generator.GetCountFingerprintAsNumPy if self.counts else generator.GetFingerprintAsNumPy
        out = np.zeros((len(mols), self.n_bits), dtype=np.float32)
        for row, mol in enumerate(mols):
            out[row] = encode(mol)
        return out

    def _featurize(self, mols: Sequence[Chem.Mol]) -> torch.Tensor:
        features = torch.from_numpy(self.fingerprints(mols))
        if self.counts:
            # Compress counts so one frequent substructure does not dominate the input scale.
            features = torch.log1p(features)
        return features.to(self.torch_device)

    def _collate(self, features: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        return features[torch.as_tensor(rows, dtype=torch.long, device=features.device)]

    def _build_network(self, n_tasks: int) -> nn.Module:
        return _feed_forward(self.n_bits, self.hidden, self.n_layers, n_tasks, self.dropout)


# ----------------------------------------------------------------------------- D-MPNN


class DirectedMPNN(nn.Module):
    """Directed message passing network (chemprop's D-MPNN) with an FFN head.

    Hidden states live on directed bonds. With atom features ``x``, bond
    features ``e`` and ``v -> w`` a directed bond::

        h0[v->w]  = ReLU(W_i [x_v, e_vw])
        m[v->w]   = sum_{k->v, k != w} h[k->v]        # skip the reverse bond
        h[v->w]   = ReLU(h0[v->w] + W_h m[v->w])       # depth - 1 times
        a_v       = ReLU(W_o [x_v, sum_{k->v} h[k->v]])
        molecule  = mean (or sum) of a_v over atoms -> FFN

    so information travels ``depth`` bonds. Skipping the reverse bond stops a
    message from echoing straight back ("totters"), the point of the directed
    formulation. Atoms without bonds get a zero message and still produce
    ``a_v``, so ions and single atoms work.

    Args:
        hidden: Width of bond and atom hidden states.
        depth: Message passing depth (>= 1).
        ffn_hidden: Width of the head's hidden layers.
        ffn_layers: Hidden layers of the head.
        n_tasks: Outputs.
        dropout: Dropout probability.
        aggregation: ``"mean"``, ``"sum"`` or ``"norm"`` (sum / 100) pooling.
        n_descriptors: Width of whole-molecule descriptors (``batch.desc``,
            raw RDKit values) appended to the pooled embedding before the head
            (chemprop's ``rdkit_2d_normalized`` idea); 0: none. They are
            normalised inside the network by buffers set with
            :meth:`set_descriptor_scaling`, so the saved weights carry them.
    """

    def __init__(
        self, hidden: int, depth: int, ffn_hidden: int, ffn_layers: int, n_tasks: int, dropout: float, aggregation: str,
        n_descriptors: int = 0,
    ):
        super().__init__()
        self.depth = depth
        self.aggregation = aggregation
        self.w_i = nn.Linear(ATOM_FEATURE_DIM + BOND_FEATURE_DIM, hidden, bias=False)
        self.w_h = nn.Linear(hidden, hidden, bias=False)
        self.w_o = nn.Linear(ATOM_FEATURE_DIM + hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.n_descriptors = n_descriptors
        if n_descriptors:
            self.register_buffer("desc_mean", torch.zeros(n_descriptors))
            self.register_buffer("desc_std", torch.ones(n_descriptors))
        self.head = _feed_forward(hidden + n_descriptors, ffn_hidden, ffn_layers, n_tasks, dropout)

    def set_descriptor_scaling(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Set the descriptor normalisation (from a fitted :class:`DescriptorScaler`)."""
        self.desc_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.desc_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def encode(self, batch: Batch) -> torch.Tensor:
        """Molecule embeddings.

        Args:
            batch: Graphs from :func:`~molgen.predictors.mol_features.mols_to_batch`
                (edge ``e``'s reverse must be ``e ^ 1``).

        Returns:
            ``[num_graphs, hidden]``.
        """
        x, (src, dst) = batch.x, batch.edge_index
        n_atoms = x.shape[0]
        reverse = torch.arange(src.shape[0], device=x.device) ^ 1
        h0 = torch.relu(self.w_i(torch.cat([x[src], batch.edge_attr], dim=1)))
        h = self.dropout(h0)
        for _ in range(self.depth - 1):
            # Sum of all bonds entering v, minus the reverse of v->w itself.
            incoming = scatter(h, dst, dim=0, dim_size=n_atoms, reduce="sum")
            h = self.dropout(torch.relu(h0 + self.w_h(incoming[src] - h[reverse])))
        incoming = scatter(h, dst, dim=0, dim_size=n_atoms, reduce="sum")
        atoms = self.dropout(torch.relu(self.w_o(torch.cat([x, incoming], dim=1))))
        reduce = "mean" if self.aggregation == "mean" else "sum"
        pooled = scatter(atoms, batch.batch, dim=0, dim_size=batch.num_graphs, reduce=reduce)
        return pooled / 100.0 if self.aggregation == "norm" else pooled

    def forward(self, batch: Batch) -> torch.Tensor:
        """Raw outputs ``[num_graphs, n_tasks]``."""
        embedding = self.encode(batch)
        if self.n_descriptors:
            # DescriptorScaler's transform, in torch: signed log, standardise, clip.
            raw = batch.desc
            z = (torch.sign(raw) * torch.log1p(raw.abs()) - self.desc_mean) / self.desc_std
            embedding = torch.cat([embedding, z.clamp(-6.0, 6.0)], dim=1)
        return self.head(embedding)


@register(trainable=True)
class MPNNPredictor(Predictor):
    """Chemprop-style D-MPNN property predictor, as a deep ensemble.

    Args:
        task: ``"regression"`` or ``"classification"``.
        hidden: Width of the message passing hidden states.
        depth: Message passing depth (bonds a message travels).
        ffn_hidden: Width of the feed-forward head's hidden layers.
        ffn_layers: Hidden layers of the head.
        aggregation: Pooling of atom states: ``"mean"`` (chemprop default;
            size-independent), ``"sum"`` (suits extensive properties such as
            logP or weight) or ``"norm"`` (sum / 100).
        descriptors: Append the ~200 normalised RDKit 2D descriptors to the
            learned embedding (helps small data sets and new scaffolds).
        **kwargs: Training and ensemble settings of
            :class:`~molgen.predictors.base.Predictor` (``n_models``,
            ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``dropout``,
            ``patience``, ``val_fraction``, ``mc_dropout_samples``, ``seed``,
            ``device``).
    """

    name = "mpnn"

    def __init__(
        self,
        task: str = "regression",
        hidden: int = 300,
        depth: int = 3,
        ffn_hidden: int = 300,
        ffn_layers: int = 1,
        aggregation: str = "mean",
        descriptors: bool = False,
        n_models: int = 5,
        epochs: int = 30,
        batch_size: int = 50,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        dropout: float = 0.0,
        patience: int = 10,
        val_fraction: float = 0.1,
        mc_dropout_samples: int = 0,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ):
        self.hidden = hidden
        self.depth = depth
        self.ffn_hidden = ffn_hidden
        self.ffn_layers = ffn_layers
        self.aggregation = aggregation
        self.descriptors = descriptors
        self._descriptor_stats: tuple[np.ndarray, np.ndarray] | None = None
        if aggregation not in ("mean", "sum", "norm"):
            raise ConfigError(f"unknown aggregation {aggregation!r}; expected mean, sum or norm")
        if hidden < 1 or depth < 1 or ffn_hidden < 1 or ffn_layers < 0:
            raise ConfigError(
                f"invalid MPNNPredictor settings: hidden={hidden}, depth={depth}, ffn_hidden={ffn_hidden}, ffn_layers={ffn_layers}"
            )
        super().__init__(
            task=task, n_models=n_models, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            dropout=dropout, patience=patience, val_fraction=val_fraction, mc_dropout_samples=mc_dropout_samples,
            seed=seed, device=device,
        )

    def fit(self, objs, y, *, val=None) -> "MPNNPredictor":
        """Train the ensemble (see :meth:`Predictor.fit`); with ``descriptors``
        the descriptor normalisation is first fitted on the training molecules."""
        if self.descriptors:
            mols = self._check_mols(objs, "fit")
            scaler = DescriptorScaler().fit(rdkit_descriptors(mols))
            self._descriptor_stats = (scaler.mean_, scaler.std_)
        return super().fit(objs, y, val=val)

    def embed(self, objs: Sequence[Chem.Mol | None], *, batch_size: int = 256) -> np.ndarray:
        """Learned molecule embeddings (the first member's message-passing
        output, before the head), e.g. for a latent-space applicability domain.

        Args:
            objs: RDKit molecules (``None`` -> a NaN row).
            batch_size: Molecules per forward pass.

        Returns:
            ``[n, hidden]`` float32.
        """
        self._check_fitted()
        objs = list(objs)
        out = np.full((len(objs), self.hidden), np.nan, dtype=np.float32)
        valid = [i for i, m in enumerate(objs) if m is not None]
        if not valid:
            return out
        # Graphs only: the encoder does not read the RDKit descriptors (the costly part of _featurize).
        features = [mol_to_graph(objs[i]) for i in valid]
        network = self.members_[0]
        network.eval()
        with torch.no_grad():
            rows = [network.encode(self._collate(features, list(range(s, min(len(valid), s + batch_size)))))
                    for s in range(0, len(valid), batch_size)]
        out[valid] = torch.cat(rows).float().cpu().numpy()
        return out

    def _featurize(self, mols: Sequence[Chem.Mol]) -> list[Data]:
        # Graphs stay on the CPU; each mini-batch is moved to the device when collated.
        graphs = [mol_to_graph(m) for m in mols]
        if self.descriptors and graphs:
            for graph, row in zip(graphs, torch.from_numpy(rdkit_descriptors(mols).astype(np.float32))):
                graph.desc = row[None, :]  # [1, d]: batching stacks them to [num_graphs, d]
        return graphs

    def _collate(self, features: list[Data], rows: Sequence[int]) -> Batch:
        return Batch.from_data_list([features[i] for i in rows]).to(self.torch_device)

    def _build_network(self, n_tasks: int) -> nn.Module:
        network = DirectedMPNN(self.hidden, self.depth, self.ffn_hidden, self.ffn_layers, n_tasks, self.dropout, self.aggregation,
                               n_descriptors=len(DESCRIPTOR_NAMES) if self.descriptors else 0)
        if self.descriptors and self._descriptor_stats is not None:  # a loaded model gets them from its state dict
            network.set_descriptor_scaling(*self._descriptor_stats)
        return network
