"""The generated parts of a graph in graph diffusion, one :class:`GraphField`
each, so that the model loops over fields instead of asking "is it
periodic?" (MatterGen's one corruption per field). A field names its state
entry, its denoiser head and loss, builds its noise, and says what it is per
(node, pair of nodes, graph). Node and edge types live here; the crystal
fields (fractional coordinates, lattice) in :mod:`crystal_fields`.
"""

from __future__ import annotations

from typing import Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from molgen.nn.graph_transformer import masked_mean
from molgen.nn.sampling import tempered_probs
from molgen.schedulers.base import IdentityNoise, Noise
from molgen.schedulers.categorical import CategoricalNoise

Scope = Literal["node", "pair", "graph"]


class GraphField:
    """One generated part of a graph state.

    Attributes:
        key: Entry of the (clean, noisy) state, e.g. ``"node_type"``.
        output: Entry of the denoiser's predictions, e.g. ``"node_logits"``.
        loss_name: Entry of :meth:`GraphDiffusion.loss`'s result.
        head: Attribute of the model holding the output head (its saved parameter names).
        sample_key: Entry of a sampled graph.
        scope: ``"node"`` ``[B, N, ...]``, ``"pair"`` ``[B, N, N, ...]`` or ``"graph"`` ``[B, ...]``.
        categorical: Ids with a cross-entropy loss (else vectors of ``dim`` with a squared error).
        learned: False for a field that is given, not generated (its loss is zeroed).
    """

    key: str
    output: str
    loss_name: str
    head: str
    sample_key: str
    scope: Scope
    categorical: bool = False
    learned: bool = True
    dim: int = 0

    def clean(self, batch: Mapping[str, torch.Tensor], stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The field's clean value in a dense batch."""
        return batch[self.key]

    def noise(self, stats: Mapping[str, torch.Tensor]) -> Noise:
        """The field's noise process, given the model's statistics buffers."""
        raise NotImplementedError

    def weight(self, config) -> float:
        """Weight of the field's loss in the total."""
        return 1.0

    def make_head(self, config) -> nn.Module:
        """The output head (built once, stored on the model under :attr:`head`)."""
        raise NotImplementedError

    def readout(self, head: nn.Module, h: torch.Tensor, e: torch.Tensor, g: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The head applied to the denoiser's node, pair or global features."""
        if self.scope == "pair":
            logits = head(e)
            return 0.5 * (logits + logits.transpose(1, 2))  # undirected edges
        if self.scope == "graph":
            return head(torch.cat([g, masked_mean(h, mask)], -1))
        return head(h)

    def prior_shape(self, batch: int, width: int) -> tuple[int, ...]:
        """Shape of a prior draw for ``batch`` graphs of ``width`` nodes."""
        lead = {"node": (batch, width), "pair": (batch, width, width), "graph": (batch,)}[self.scope]
        return lead if self.categorical else (*lead, self.dim)

    def constrain(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Keep a state value consistent with the node mask (identity unless overridden)."""
        return x

    def weights(self, mask: torch.Tensor) -> torch.Tensor | None:
        """Which entries count in losses and KLs: real nodes, real pairs
        ``i < j``, or None (every graph)."""
        if self.scope == "node":
            return mask
        if self.scope == "pair":
            pair = mask.unsqueeze(1) & mask.unsqueeze(2)
            return torch.triu(pair, diagonal=1)
        return None

    def prediction(self, output: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """The denoiser's output as its noise's prediction (identity unless overridden)."""
        return output

    def item_loss(self, output: torch.Tensor, clean: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
        """Per-entry training loss: cross-entropy of ids or squared error of vectors."""
        if self.categorical:
            return F.cross_entropy(output.movedim(-1, 1), clean, reduction="none")
        return ((output - target) ** 2).sum(-1)

    def decode(self, x: torch.Tensor, stats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A batch of sampled values as they go into sampled graphs."""
        return x

    def per_graph(self, x: torch.Tensor, i: int, size: int) -> torch.Tensor:
        """Graph ``i`` of ``size`` nodes out of a decoded batch."""
        if self.scope == "pair":
            return x[i, :size, :size]
        if self.scope == "graph":
            return x[i : i + 1]
        return x[i, :size]


class TypeField(GraphField):
    """Categorical types with marginal, uniform or absorbing transitions.

    Args:
        num_types: Real types ``K``.
        transition: ``"marginal"`` (limit: the statistics buffer
            :attr:`marginal_buffer`), ``"uniform"`` or ``"absorbing"`` (an extra
            mask category ``K`` that every type decays to).
    """

    categorical = True
    marginal_buffer: str

    def __init__(self, num_types: int, transition: str):
        self.num_types = num_types
        self.transition = transition
        # Absorbing noise adds one input category (the mask); the outputs stay the real types.
        self.mask_slots = 1 if transition == "absorbing" else 0

    @property
    def input_classes(self) -> int:
        """Categories of a noisy state (the real types and the mask, if any)."""
        return self.num_types + self.mask_slots

    def noise(self, stats: Mapping[str, torch.Tensor]) -> Noise:
        k = self.num_types
        if self.transition == "uniform":
            return CategoricalNoise.uniform(max(k, 2))
        if self.transition == "absorbing":  # all mass on the extra (mask) category k
            return CategoricalNoise(F.one_hot(torch.tensor(k), k + 1).float())
        return CategoricalNoise(stats[self.marginal_buffer][: max(k, 2)])

    def prediction(self, output: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Clean-type probabilities over the noise's categories (the mask, when
        there is one, gets none)."""
        probs = tempered_probs(output, temperature)
        return F.pad(probs, (0, self.mask_slots)) if self.mask_slots else probs

    def one_hot(self, x: torch.Tensor) -> torch.Tensor:
        """Denoiser input features of a state value."""
        return F.one_hot(x, self.input_classes).float()


class NodeTypes(TypeField):
    """Node types; with one type (e.g. carbon polymorphs) they are given, not generated."""

    key, output, loss_name, head, sample_key, scope = "node_type", "node_logits", "node_loss", "node_out", "node_type", "node"
    marginal_buffer = "node_marginal"

    def __init__(self, num_types: int, transition: str):
        super().__init__(num_types, transition)
        self.learned = num_types > 1

    def noise(self, stats: Mapping[str, torch.Tensor]) -> Noise:
        return super().noise(stats) if self.learned else IdentityNoise()

    def make_head(self, config) -> nn.Module:
        return nn.Linear(config.d_node, self.num_types)

    def constrain(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Padding nodes hold type 0."""
        return x * mask


class EdgeTypes(TypeField):
    """Edge types of node pairs (type 0 = no edge), symmetric."""

    key, output, loss_name, head, sample_key, scope = "edge_type", "edge_logits", "edge_loss", "edge_out", "adjacency", "pair"
    marginal_buffer = "edge_marginal"

    def weight(self, config) -> float:
        return config.edge_weight

    def make_head(self, config) -> nn.Module:
        return nn.Linear(config.d_edge, self.num_types)

    def constrain(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Keep the upper triangle, mirror it, zero the diagonal and padding."""
        upper = torch.triu(x, diagonal=1)
        pair = mask.unsqueeze(1) & mask.unsqueeze(2)
        return (upper + upper.transpose(1, 2)) * pair
