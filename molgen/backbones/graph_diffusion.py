"""Graph diffusion over the graph view: discrete node and edge types
(DiGress, Vignac et al. 2023) and, for periodic graphs, wrapped-normal
fractional coordinates and Gaussian lattice parameters (DiffCSP, Jiao et al.
2023), with one graph-transformer denoiser.

* Types: marginal, uniform or absorbing (mask) categorical transitions; the
  denoiser predicts the clean types and the reverse step is the exact
  posterior mixture, so the number of sampling steps is free.
* Coordinates and lattice (periodic graphs): see :mod:`crystal_fields`.
* Each generated part is a field (:mod:`graph_fields`) with one noise
  process behind the common :class:`~molgen.schedulers.Noise` interface;
  training, the ELBO and sampling loop over the fields.
* Size: the number of nodes is drawn from the training histogram.
* Conditioning: a property vector, standardised, embedded per property with a
  learned "absent" embedding; each property is dropped with
  ``condition_dropout`` in training, and sampling mixes conditional and
  unconditional predictions with a guidance weight (classifier-free guidance).
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
from pydantic import Field
from torch import nn

from molgen.backbones.base import GraphGenerator
from molgen.backbones.crystal_fields import crystal_parts, lattice_statistics
from molgen.backbones.graph_fields import EdgeTypes, GraphField, NodeTypes
from molgen.core.config import StrictModel
from molgen.core.errors import MolgenError
from molgen.core.registry import BACKBONES
from molgen.core.seeding import resolve_generator
from molgen.nn.dense_graph import collate_dense
from molgen.nn.graph_transformer import GraphTransformer, sinusoidal_embedding
from molgen.schedulers.base import Noise


class GraphDiffusionConfig(StrictModel):
    """Hyper-parameters of :class:`GraphDiffusion`."""

    d_node: int = Field(128, gt=0, description="node width")
    d_edge: int = Field(64, gt=0, description="edge width")
    d_global: int = Field(128, gt=0, description="global width")
    n_layers: int = Field(4, gt=0)
    n_heads: int = Field(8, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    max_nodes: int = Field(32, gt=0, description="largest graph of the node-count histogram")
    transition: Literal["marginal", "uniform", "absorbing"] = Field(
        "marginal", description="limit distribution of the type noise; 'absorbing' adds a mask category that every "
        "type decays to and sampling unmasks (D3PM absorbing, MatterGen's atom types)")
    sampling_steps: int = Field(100, gt=0, description="default number of denoising steps")
    elbo_grid: int = Field(500, gt=1, description="time steps of the discretised ELBO")
    elbo_samples: int = Field(16, gt=0, description="time steps drawn per log-likelihood estimate")
    edge_weight: float = Field(5.0, ge=0, description="weight of the edge-type loss (DiGress: 5)")
    coord_weight: float = Field(1.0, ge=0)
    lattice_weight: float = Field(1.0, ge=0)
    sigma_min: float = Field(0.005, gt=0, description="coordinate noise at t=0 (fractional units)")
    sigma_max: float = Field(0.5, gt=0, description="coordinate noise at t=1")
    fourier_features: int = Field(8, gt=0, description="frequencies of the fractional-difference features")
    distance_features: int = Field(16, gt=0, description="radial basis functions of pair distances")
    distance_cutoff: float = Field(10.0, gt=0, description="range (A) of the radial basis")
    # One corrector step (DiffCSP's predictor-corrector) took Perov-5 samples from 99.85 % to
    # 99.99 % structural validity at twice the sampling cost (benchmarks/RESULTS.md).
    corrector_steps: int = Field(1, ge=0, description="Langevin corrector steps per denoising step on coordinates (crystals)")
    corrector_step_size: float = Field(1e-5, gt=0)
    conditions: list[str] = Field(default_factory=list, description="property names the model can be conditioned on")
    condition_dropout: float = Field(0.1, ge=0, le=1, description="per-property drop probability in training")


class GraphDiffusion(GraphGenerator):
    """Discrete (and periodic continuous) graph diffusion.

    ``loss`` is the denoising objective (cross-entropy of clean types, score
    matching of coordinates, noise prediction of the lattice);
    ``log_likelihood`` is a Monte Carlo estimate of the ELBO on the
    ``elbo_grid``-step chain (exact in expectation for types; for coordinates
    a bound on their density at resolution ``sigma_min``).
    """

    name = "graph-diffusion"
    view = "graph"
    config_cls = GraphDiffusionConfig

    def __init__(self, domain, config: GraphDiffusionConfig):
        super().__init__(domain, config)
        spec = domain.graph_spec()
        c = config
        self.spec = spec
        self.num_node_types = len(spec.node_types)
        self.num_edge_types = len(spec.edge_types)
        self.has_edges = self.num_edge_types > 0
        self.periodic = spec.periodic
        if self.num_node_types < 1:
            raise MolgenError("the graph view needs at least one node type")
        n_cond = len(c.conditions)
        # Data statistics (set by fit_statistics, saved with the weights).
        self.register_buffer("node_marginal", torch.full((max(self.num_node_types, 2),), 1.0))
        self.register_buffer("edge_marginal", torch.full((max(self.num_edge_types, 2),), 1.0))
        self.register_buffer("size_histogram", torch.ones(c.max_nodes + 1).index_fill_(0, torch.tensor([0]), 0.0))
        self.register_buffer("lattice_mean", torch.zeros(6))
        self.register_buffer("lattice_std", torch.ones(6))
        self.register_buffer("condition_mean", torch.zeros(n_cond))
        self.register_buffer("condition_std", torch.ones(n_cond))

        # The generated fields, in the order of every loop (and of random draws).
        self.node_field = NodeTypes(self.num_node_types, c.transition)
        self.edge_field = EdgeTypes(self.num_edge_types, c.transition) if self.has_edges else None
        self.fields: list[GraphField] = [self.node_field] + ([self.edge_field] if self.edge_field else [])
        self.periodic_features = self.corrector = None  # crystals only
        if self.periodic:
            fields, self.periodic_features, self.corrector = crystal_parts(c)
            self.fields += fields

        self.node_in = nn.Linear(self.node_field.input_classes, c.d_node)
        pair_in = (self.edge_field.input_classes if self.edge_field else 0) + (self.periodic_features.pair_dim if self.periodic_features else 0)
        self.edge_in = nn.Linear(max(pair_in, 1), c.d_edge)
        global_in = 64 + 1 + (self.periodic_features.global_dim if self.periodic_features else 0)
        self.global_in = nn.Sequential(nn.Linear(global_in, c.d_global), nn.GELU(), nn.Linear(c.d_global, c.d_global))
        if n_cond:
            self.condition_weight = nn.Parameter(torch.randn(n_cond, c.d_global) * 0.02)
            self.condition_bias = nn.Parameter(torch.zeros(n_cond, c.d_global))
            self.condition_absent = nn.Parameter(torch.zeros(n_cond, c.d_global))
        self.net = GraphTransformer(c.n_layers, c.d_node, c.d_edge, c.d_global, c.n_heads, c.dropout)
        for f in self.fields:  # saved under the head's name: node_out, edge_out, coord_out, lattice_out
            self.add_module(f.head, f.make_head(c))

    # -- fields and their noise -----------------------------------------------
    @property
    def fixed_types(self) -> bool:
        """One node type (e.g. carbon polymorphs): types are given, not generated."""
        return not self.node_field.learned

    def _stats(self) -> dict[str, torch.Tensor]:
        return dict(self.named_buffers())

    @property
    def noise(self) -> dict[str, Noise]:
        """One noise process per field, by state key. Built on each access
        because the type marginals are buffers that training statistics,
        loaded weights and device moves replace."""
        stats = self._stats()
        return {f.key: f.noise(stats) for f in self.fields}

    # -- data -----------------------------------------------------------------
    def collate(self, graphs: Sequence) -> dict[str, torch.Tensor]:
        """Dense batch of graph-view ``Data`` (see :func:`collate_dense`)."""
        return collate_dense(graphs, self.has_edges, self.periodic)

    @torch.no_grad()
    def fit_statistics(self, graphs: Sequence) -> None:
        """Set the type marginals, the node-count histogram, the lattice and
        condition standardisation from training graphs.

        Raises:
            MolgenError: a graph larger than ``max_nodes``.
        """
        device = self.node_marginal.device
        counts = torch.zeros(self.num_node_types)
        sizes = torch.zeros(self.config.max_nodes + 1)
        edge_counts = torch.zeros(self.num_edge_types) if self.has_edges else None
        lattices, conditions = [], []
        for g in graphs:
            n = int(g.num_nodes)
            if n > self.config.max_nodes:
                raise MolgenError(f"a training graph has {n} nodes, more than max_nodes={self.config.max_nodes}")
            sizes[n] += 1
            counts += torch.bincount(g.node_type, minlength=self.num_node_types).float()
            if edge_counts is not None:
                present = torch.bincount(g.edge_type, minlength=self.num_edge_types).float() / 2  # both directions listed
                edge_counts += present
                edge_counts[0] += n * (n - 1) / 2 - float(present[1:].sum())
            if self.periodic:
                lattices.append(g.lattice.reshape(1, 3, 3))
            if self.config.conditions:
                conditions.append(g.condition.reshape(1, -1))
        self.node_marginal.zero_()
        self.node_marginal[: self.num_node_types] = (counts + 1e-3) / (counts.sum() + 1e-3 * len(counts))
        if self.fixed_types:  # the padding category of a one-type view keeps some mass (never used)
            self.node_marginal[1] = 1.0
        if edge_counts is not None:
            self.edge_marginal[: self.num_edge_types] = edge_counts / edge_counts.sum().clamp(min=1)
        self.size_histogram.copy_(sizes.to(device))
        if lattices:
            mean, std = lattice_statistics(torch.cat(lattices).float())
            self.lattice_mean.copy_(mean)
            self.lattice_std.copy_(std)
        if conditions:
            values = torch.cat(conditions).float()
            finite = torch.isfinite(values)
            for j in range(values.shape[1]):
                col = values[finite[:, j], j]
                if len(col):
                    self.condition_mean[j] = col.mean()
                    self.condition_std[j] = col.std().clamp(min=1e-6) if len(col) > 1 else 1.0

    # -- the denoiser -------------------------------------------------------
    def _pair_features(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if self.edge_field:
            parts.append(self.edge_field.one_hot(state["edge_type"]))
        if self.periodic_features:
            parts += self.periodic_features.pair(state, self._stats())
        if not parts:
            b, n = state["node_type"].shape
            return torch.zeros(b, n, n, 1, device=state["node_type"].device)
        return torch.cat(parts, -1)

    def _condition_embedding(self, condition: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        """Per-property embeddings; NaN entries use the learned "absent" vector."""
        if not self.config.conditions:
            return torch.zeros(batch, self.config.d_global, device=device)
        if condition is None:
            condition = torch.full((batch, len(self.config.conditions)), float("nan"), device=device)
        z = (condition - self.condition_mean) / self.condition_std
        keep = torch.isfinite(z).float().unsqueeze(-1)
        z = torch.nan_to_num(z, nan=0.0).unsqueeze(-1)
        present = z * self.condition_weight + self.condition_bias
        return (keep * present + (1 - keep) * self.condition_absent).sum(1)

    def forward(self, state: dict[str, torch.Tensor], t: torch.Tensor, condition: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Predictions from a noisy state.

        Args:
            state: ``node_type [B, N]``, ``node_mask [B, N]`` and, as the spec
                has them, ``edge_type [B, N, N]``, ``frac_coords [B, N, 3]``,
                ``lattice_z [B, 6]`` (standardised lattice parameters).
            t: Times ``[B]`` in [0, 1].
            condition: Raw property values ``[B, C]`` (NaN: absent) or None.

        Returns:
            ``node_logits``, and ``edge_logits`` (symmetric), ``coord_score``
            (``sigma * score``), ``lattice_eps`` as the spec has them.
        """
        mask = state["node_mask"]
        b, n = mask.shape
        h = self.node_in(self.node_field.one_hot(state["node_type"]))
        e = self.edge_in(self._pair_features(state))
        sizes = mask.float().sum(1, keepdim=True) / self.config.max_nodes
        glob = [sinusoidal_embedding(t, 64), sizes]
        if self.periodic_features:
            glob.append(self.periodic_features.graph(state))
        g = self.global_in(torch.cat(glob, -1)) + self._condition_embedding(condition, b, mask.device)
        h, e, g = self.net(h, e, g, mask)
        return {f.output: f.readout(getattr(self, f.head), h, e, g, mask) for f in self.fields}

    # -- noising ---------------------------------------------------------------
    def _clean_state(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state = {"node_mask": batch["node_mask"].bool()}
        stats = self._stats()
        for f in self.fields:
            state[f.key] = f.clean(batch, stats)
        return state

    def _noisy_state(self, clean: dict[str, torch.Tensor], t: torch.Tensor, generator) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Draw ``z_t`` from ``q(z_t | z_0)`` field by field; returns (state, targets)."""
        mask = clean["node_mask"]
        noisy = {"node_mask": mask}
        targets: dict[str, torch.Tensor] = {}
        noise = self.noise
        for f in self.fields:
            xt, target = noise[f.key].add_noise(clean[f.key], t, generator)
            noisy[f.key] = f.constrain(xt, mask)
            if target is not None:
                targets[f.key] = target
        return noisy, targets

    def _training_condition(self, batch, generator) -> torch.Tensor | None:
        if not self.config.conditions or "condition" not in batch:
            return None
        cond = batch["condition"].float().clone()
        if self.training and self.config.condition_dropout > 0:
            drop = torch.rand(cond.shape, generator=generator, device=cond.device) < self.config.condition_dropout
            cond[drop] = float("nan")
        return cond

    # -- the interface ------------------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Denoising losses; ``"loss"`` is optimised, ``"tokens"`` counts nodes."""
        clean = self._clean_state(batch)
        mask = clean["node_mask"]
        b = mask.shape[0]
        u = (torch.arange(b, device=mask.device) + torch.rand(b, generator=generator, device=mask.device)) / b
        t = (1e-3 + (1 - 1e-3) * u)[torch.randperm(b, generator=generator, device=mask.device)]
        noisy, targets = self._noisy_state(clean, t, generator)
        pred = self(noisy, t, self._training_condition(batch, generator))
        out: dict[str, torch.Tensor] = {}
        total = None
        for f in self.fields:
            per_item = f.item_loss(pred[f.output], clean[f.key], targets.get(f.key))
            weights = f.weights(mask)
            value = per_item.mean() if weights is None else (per_item * weights).sum() / weights.sum().clamp(min=1)
            if not f.learned:
                value = value * 0.0
            out[f.loss_name] = value
            term = f.weight(self.config) * value
            total = term if total is None else total + term
        out["loss"] = total
        out["tokens"] = mask.sum()
        return out

    @torch.no_grad()
    def log_likelihood(self, batch: dict[str, torch.Tensor], seed: int = 0) -> torch.Tensor:
        """ELBO estimate per graph ``[B]`` (nats), deterministic for a seed.

        ``log p(n) - sum_k KL_k - prior KL``, with the ``elbo_grid`` step KLs
        estimated from ``elbo_samples`` stratified steps.
        """
        gen = torch.Generator(device=self.device).manual_seed(seed)
        clean = self._clean_state(batch)
        mask = clean["node_mask"]
        b = mask.shape[0]
        grid, draws = self.config.elbo_grid, self.config.elbo_samples
        sizes = mask.sum(1)
        log_size = torch.log(self.size_histogram / self.size_histogram.sum().clamp(min=1))
        total = log_size[sizes.clamp(max=self.config.max_nodes)].clamp(min=-1e4)
        kl_sum = torch.zeros(b, device=mask.device)
        condition = batch.get("condition") if self.config.conditions else None
        noise = self.noise
        for j in range(draws):
            u = (j + torch.rand(b, generator=gen, device=mask.device)) / draws
            k = (u * grid).floor().clamp(max=grid - 1) + 1
            t, s = k / grid, (k - 1) / grid
            noisy, _ = self._noisy_state(clean, t, gen)
            pred = self(noisy, t, condition)
            kl = torch.zeros(b, device=mask.device)
            for f in self.fields:
                step_kl = noise[f.key].posterior_kl(clean[f.key], noisy[f.key], f.prediction(pred[f.output]), s, t)
                kl = kl + self._per_graph(step_kl, f.weights(mask))
            kl_sum = kl_sum + kl
        total = total - grid * kl_sum / draws
        for f in self.fields:
            total = total - self._per_graph(noise[f.key].prior_kl(clean[f.key]), f.weights(mask))
        return total

    @staticmethod
    def _per_graph(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """Sum per-entry values ``[B, ...]`` over a graph's real entries ``[B]``."""
        if weights is None:
            return values
        return (values * weights).sum(tuple(range(1, values.dim())))

    # -- sampling -------------------------------------------------------------------
    def _condition_tensor(self, condition, n: int) -> torch.Tensor | None:
        """Raw property values ``[n, C]`` from a mapping, a vector or a matrix."""
        if condition is None:
            return None
        names = self.config.conditions
        if not names:
            raise MolgenError("this model was trained without conditions; sample it without --condition")
        if isinstance(condition, Mapping):
            unknown = sorted(set(condition) - set(names))
            if unknown:
                raise MolgenError(f"unknown condition {', '.join(unknown)}; this model knows {', '.join(names)}")
            row = [float(condition.get(name, float("nan"))) for name in names]
            return torch.tensor(row, device=self.device).expand(n, -1).clone()
        values = torch.as_tensor(condition, dtype=torch.float32, device=self.device)
        if values.ndim == 1:
            values = values.expand(n, -1)
        if values.shape != (n, len(names)):
            raise MolgenError(f"condition must have {len(names)} values ({', '.join(names)}), got shape {tuple(values.shape)}")
        return values.clone()

    def _guided(self, state, t, condition, guidance: float) -> dict[str, torch.Tensor]:
        """Predictions mixed by classifier-free guidance: ``(1 + w) cond - w uncond``
        on log-probabilities (types) and on scores/noise (continuous)."""
        cond = self(state, t, condition)
        if condition is None or guidance == 0:
            return cond
        uncond = self(state, t, None)
        out = {}
        for key, value in cond.items():
            if key.endswith("_logits"):
                value, other = value.log_softmax(-1), uncond[key].log_softmax(-1)
            else:
                other = uncond[key]
            out[key] = (1 + guidance) * value - guidance * other
        return out

    @torch.no_grad()
    def sample_dense(
        self,
        n: int,
        *,
        condition=None,
        guidance: float = 0.0,
        steps: int | None = None,
        corrector_steps: int | None = None,
        temperature: float = 1.0,
        batch_size: int = 256,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        node_types: Sequence[Sequence[int]] | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        """Draw ``n`` graphs as per-graph tensors (``node_type``, and
        ``adjacency`` or ``frac_coords``/``lattice``).

        Args:
            n: Number of graphs.
            condition: Property values (``{"name": value}``, a ``[C]`` vector or
                an ``[n, C]`` matrix; NaN or a missing name means unconditioned).
            guidance: Classifier-free guidance weight ``w`` (0: plain conditional).
            steps: Denoising steps (default ``sampling_steps``).
            corrector_steps: Langevin corrector steps on the coordinates per
                denoising step (periodic models only; default the config's
                ``corrector_steps``).
            temperature: Divides the denoiser's atom-type (and bond-type)
                logits before each reverse step: above 1 draws more varied
                compositions, below 1 sharper ones, 0 takes the most likely
                clean type (coordinates and lattice are not affected).
            batch_size: Graphs per forward pass.
            generator: Source of randomness.
            seed: Seed used when ``generator`` is None.
            node_types: Fix the nodes (crystal structure prediction: the
                atoms of a composition): one list of node-type indices per
                sample (``n`` lists, or one list for all); the size is its
                length and the rest is sampled. The given types are inpainted
                (noised to each step's level, RePaint-style, so the denoiser
                sees inputs like those it was trained on) and exact at the end.

        Raises:
            MolgenError: ``n`` < 1, bad options, or ``node_types`` of the
                wrong count, empty, longer than ``max_nodes`` or out of range.
        """
        if n <= 0:
            raise MolgenError(f"number of samples must be positive, got {n}")
        fixed = self._fixed_nodes(node_types, n)
        was_training = self.training
        self.eval()
        gen = resolve_generator(generator, seed, self.device)
        steps = steps or self.config.sampling_steps
        if corrector_steps is None:
            corrector_steps = self.config.corrector_steps
        elif corrector_steps < 0 or (corrector_steps and self.corrector is None):
            raise MolgenError(f"corrector steps apply to periodic (crystal) models and must be >= 0, got {corrector_steps}")
        if not temperature >= 0:
            raise MolgenError(f"temperature must be >= 0 (0 takes the most likely types), got {temperature}")
        values = self._condition_tensor(condition, n)
        out: list[dict[str, torch.Tensor]] = []
        try:
            for start in range(0, n, batch_size):
                m = min(batch_size, n - start)
                chunk = values[start : start + m] if values is not None else None
                given = fixed[start : start + m] if fixed is not None else None
                out.extend(self._sample_chunk(m, chunk, guidance, steps, corrector_steps, temperature, gen, given))
        finally:
            self.train(was_training)
        return out

    def _fixed_nodes(self, node_types, n: int) -> torch.Tensor | None:
        """``node_types`` as a ``[n, width]`` tensor padded with -1 (None when not given)."""
        if node_types is None:
            return None
        rows = [list(map(int, r)) for r in node_types]
        if len(rows) == 1:
            rows = rows * n
        if len(rows) != n:
            raise MolgenError(f"node_types: give one list or {n}, got {len(rows)}")
        longest = max(len(r) for r in rows)
        if min(len(r) for r in rows) < 1 or longest > self.config.max_nodes:
            raise MolgenError(f"node_types: each sample needs 1 to {self.config.max_nodes} nodes (this model's max_nodes)")
        if any(not 0 <= v < self.num_node_types for r in rows for v in r):
            raise MolgenError(f"node_types: indices must be in [0, {self.num_node_types})")
        fixed = torch.full((n, longest), -1, dtype=torch.long)
        for i, r in enumerate(rows):
            fixed[i, : len(r)] = torch.tensor(r)
        return fixed.to(self.device)

    def _pinned_types(self, given: torch.Tensor, mask: torch.Tensor, time: torch.Tensor, gen) -> torch.Tensor:
        """The fixed node types noised to ``time`` (exact at 0)."""
        clean = given.clamp(min=0)
        if float(time.max()) > 0 and self.node_field.learned:
            clean = self.noise[self.node_field.key].add_noise(clean, time, gen)[0]
        return self.node_field.constrain(clean, mask)

    def _sample_chunk(
        self, m: int, condition, guidance: float, steps: int, corrector_steps: int, temperature: float, gen,
        given: torch.Tensor | None = None,
    ) -> list[dict[str, torch.Tensor]]:
        device = self.device
        if given is not None:
            sizes = (given >= 0).sum(1)
        else:
            hist = self.size_histogram.clone()
            if hist.sum() <= 0:
                hist = torch.ones_like(hist).index_fill_(0, torch.tensor([0], device=device), 0.0)
            sizes = torch.multinomial(hist, m, replacement=True, generator=gen)
        width = int(sizes.max())
        mask = torch.arange(width, device=device).unsqueeze(0) < sizes.unsqueeze(1)
        noise = self.noise
        node_key = self.node_field.key
        state = {"node_mask": mask}
        for f in self.fields:
            state[f.key] = f.constrain(noise[f.key].sample_prior(f.prior_shape(m, width), gen, device), mask)
        if given is not None:
            given = given[:, :width]
            state[node_key] = self._pinned_types(given, mask, torch.ones(m, device=device), gen)
        for k in range(steps, 0, -1):
            t = torch.full((m,), k / steps, device=device)
            s = torch.full((m,), (k - 1) / steps, device=device)
            if self.corrector is not None:
                self.corrector(state, lambda x: self._guided(x, t, condition, guidance), t, corrector_steps, gen)
            pred = self._guided(state, t, condition, guidance)
            for f in self.fields:
                xs = noise[f.key].reverse_step(state[f.key], f.prediction(pred[f.output], temperature), s, t, gen)
                state[f.key] = f.constrain(xs, mask)
            if given is not None:
                state[node_key] = self._pinned_types(given, mask, s, gen)
        stats = self._stats()
        decoded = {f.sample_key: (f, f.decode(state[f.key], stats)) for f in self.fields}
        graphs = []
        for i in range(m):
            size = int(sizes[i])
            graphs.append({key: f.per_graph(values, i, size).cpu() for key, (f, values) in decoded.items()})
        return graphs


BACKBONES.register("graph-diffusion", GraphDiffusion)
