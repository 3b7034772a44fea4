"""The generator interface every backbone implements, and its persistence.

A backbone never imports a domain: it receives a domain object and only uses
the interface of :class:`molgen.domains.base.Domain` (tokenizer, parse,
is_valid, name, to_config; for the graph view graph_spec, to_graph,
from_graph, raw_text). Loading finds the domain class by name in the
core registry.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from pydantic import Field
from torch import nn

from molgen import __version__
from molgen.backbones.sampling_options import (
    GraphSamplingOptions,
    GrammarSamplingOptions,
    SamplingOptions,
    validate_sampling_options,
)
from molgen.core.config import StrictModel, validate
from molgen.core.constraint import DecodingConstraint
from molgen.core.errors import CheckpointError, MolgenError, UnknownTokenError
from molgen.core.registry import BACKBONES, DOMAINS
from molgen.core.serialization import load_model_dir, save_model_dir
from molgen.core.views import GraphView
from molgen.core.vocab import pad_batch


class TransformerHParams(StrictModel):
    """Hyper-parameters shared by the transformer-based token backbones."""

    d_model: int = Field(256, gt=0, description="model width")
    n_layers: int = Field(4, gt=0, description="transformer blocks")
    n_heads: int = Field(8, gt=0, description="attention heads")
    d_ff: int | None = Field(None, gt=0, description="MLP width (default 4 x d_model)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    max_length: int = Field(128, gt=2, description="longest sequence incl. BOS/EOS")


class Generator(nn.Module):
    """Base class of generative backbones.

    Attributes:
        name: Registry name.
        view: The view consumed: ``"tokens"`` or ``"graph"``.
        exact_likelihood: Whether ``log_likelihood`` is exact.
        config_cls: Pydantic model of the hyper-parameters.
        domain: The domain object the model generates.
        config: Validated hyper-parameters.
    """

    name: ClassVar[str]
    view: ClassVar[str]
    config_cls: ClassVar[type[StrictModel]]
    #: Typed sampling options (see :mod:`molgen.backbones.sampling_options`).
    sampling_cls: ClassVar[type[SamplingOptions]]
    #: True when ``log_likelihood`` is exact, not a bound (RL needs it).
    exact_likelihood: ClassVar[bool] = False

    def __init__(self, domain, config: StrictModel):
        super().__init__()
        self.domain = domain
        self.config = config

    # -- construction ---------------------------------------------------
    @classmethod
    def from_domain(cls, domain, **hparams) -> "Generator":
        """Build an untrained model for ``domain``.

        Args:
            domain: A domain offering this backbone's view (for the tokens
                view its tokenizer must have a vocabulary).
            **hparams: Hyper-parameters of ``config_cls``.

        Returns:
            The model.

        Raises:
            ConfigError: unknown or invalid hyper-parameters.
        """
        if cls.view not in domain.views:
            raise MolgenError(f"backbone {cls.name!r} needs the {cls.view} view; domain {domain.name!r} offers {domain.views}")
        if cls.view == "graph" and not isinstance(domain, GraphView):
            raise MolgenError(f"domain {domain.name!r} lists the graph view but does not implement it (GraphView)")
        return cls(domain, validate(cls.config_cls, hparams, where=f"{cls.name} hyper-parameters"))

    # -- the interface -------------------------------------------------
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training losses; the ``"loss"`` entry is optimised."""
        raise NotImplementedError

    def log_likelihood(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-example log-likelihood (exact or a lower bound), ``[B]``."""
        raise NotImplementedError

    def sample_texts(self, n: int, **kwargs) -> list[str]:
        """Draw ``n`` samples as raw text (invalid ones included)."""
        raise NotImplementedError

    def sample(self, n: int, *, condition=None, generator: torch.Generator | None = None, seed: int | None = None, **kwargs) -> list[Any]:
        """Draw ``n`` objects; entries that are not valid objects are None."""
        raise NotImplementedError

    def sampling_options(self) -> set[str]:
        """Keyword options the backbone's sampler accepts (besides n, seed, generator)."""
        return set(self.sampling_cls.model_fields)

    def check_sampling_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Validate sampling options against :attr:`sampling_cls` (None values dropped).

        Raises:
            MolgenError: an option out of range or not taken by this backbone.
        """
        return validate_sampling_options(options, self.sampling_cls, self.name)

    def make_batch(self, texts: Sequence[str], on_unknown: str = "error") -> dict[str, torch.Tensor]:
        """Texts -> a training/likelihood batch on the model's device."""
        raise NotImplementedError

    def fit_statistics(self, data) -> None:
        """Record data statistics the model keeps with its weights (length
        histograms, type marginals); called once on the training data before
        training. Default: nothing to record.

        Args:
            data: The training data of the backbone's view.
        """

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # -- persistence ----------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The JSON written to ``config.json``."""
        return {
            "format": "molgen-model",
            "molgen_version": __version__,
            "backbone": self.name,
            "hparams": self.config.model_dump(),
            "domain": self.domain.to_config(),
        }

    def save_pretrained(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Save as ``config.json`` + ``model.safetensors``.

        Args:
            path: Directory (created or replaced).
            extra: More JSON to store under ``"extra"`` (training summary).

        Returns:
            The directory.
        """
        config = self.describe()
        if extra:
            config["extra"] = extra
        return save_model_dir(path, config, self.state_dict())

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str | torch.device = "cpu") -> "Generator":
        """Load a saved model directory (no unpickling).

        Args:
            path: Directory written by :meth:`save_pretrained`, a training
                run directory, or a shipped model's name (``"zinc250k"``,
                ``"model:zinc250k"``; ``molgen models`` lists them).
            device: Device for the weights.

        Returns:
            The model in eval mode.

        Raises:
            CheckpointError: missing, corrupted or mismatched files, or an
                unknown name.
        """
        from molgen.pretrained import resolve_model_path  # data only: no layer above the backbones

        path = resolve_model_path(path)
        config, state = load_model_dir(path, device)
        try:
            backbone_cls = BACKBONES.get(config["backbone"])
            domain = DOMAINS.get(config["domain"]["name"]).from_config(config["domain"])
            hparams = config["hparams"]
        except (KeyError, TypeError, MolgenError) as exc:
            raise CheckpointError(f"{path}: config.json does not describe a molgen model ({exc})") from None
        if cls is not Generator and not issubclass(backbone_cls, cls):
            raise CheckpointError(f"{path} holds a {backbone_cls.name!r} model, not {cls.name!r}")
        if not isinstance(hparams, dict):
            raise CheckpointError(f"{path}: config.json 'hparams' must be an object, got {type(hparams).__name__}")
        bad = [name for name, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
        if bad:  # a NaN model samples garbage or crashes deep in the sampler
            raise CheckpointError(f"{path}: weights hold NaN or infinite values ({', '.join(bad[:3])}"
                                  f"{', ...' if len(bad) > 3 else ''}); the file is damaged or came from a diverged run")
        try:
            model = backbone_cls.from_domain(domain, **hparams)
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, ValueError, MolgenError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CheckpointError(f"{path}: weights do not match config.json ({first})") from None
        return model.to(device).eval()


class TokenGenerator(Generator):
    """A backbone of the tokens view: it draws token-id sequences
    (:meth:`sample_ids`) that the domain's tokenizer turns into text, and may
    follow the domain's token grammar while decoding."""

    view: ClassVar[str] = "tokens"
    sampling_cls: ClassVar[type[SamplingOptions]] = GrammarSamplingOptions

    def sample_ids_under(self, n: int, constraint: DecodingConstraint, **kwargs) -> list[list[int]]:
        """Draw ``n`` id sequences written under a caller's decoding
        constraint (a template that forces some tokens and leaves spans to the
        model) in place of the domain's.

        Raises:
            MolgenError: the backbone cannot follow a left-to-right constraint.
        """
        raise MolgenError(f"the {self.name} backbone cannot write a template (it needs a left-to-right decoder: "
                          "use an autoregressive model)")

    def sample_texts(self, n: int, **kwargs) -> list[str]:
        """Draw ``n`` samples as raw text (invalid ones included); see the
        backbone's ``sample_ids`` for the options."""
        tokenizer = self.domain.tokenizer
        return [tokenizer.decode(ids) for ids in self.sample_ids(n, **kwargs)]

    def sample(self, n: int, *, condition=None, generator: torch.Generator | None = None, seed: int | None = None, **kwargs) -> list[Any]:
        """Draw ``n`` objects; entries that do not parse are None.

        Args:
            n: Number of samples.
            condition: Reserved for conditional models (must be None here).
            generator: Source of randomness.
            seed: Seed used when ``generator`` is None.
            **kwargs: Backbone-specific sampling options.

        Returns:
            Domain objects or None, in sampling order.
        """
        if condition is not None:
            raise MolgenError(f"backbone {self.name!r} is unconditional")
        texts = self.sample_texts(n, generator=generator, seed=seed, **kwargs)
        return [self.domain.try_parse(t) for t in texts]

    def _bind_vocabulary(self, banned: Sequence[str]) -> None:
        """Set ``vocab_size`` and the special ids from the domain's vocabulary
        and register ``banned`` (names like ``"pad"``) as never-emitted ids.

        Raises:
            ValueError: the tokenizer has no vocabulary yet.
        """
        vocab = self.domain.tokenizer.vocab
        if vocab is None:
            raise ValueError("the domain's tokenizer needs a vocabulary (fit it on data first)")
        self.vocab_size = len(vocab)
        self.bos_id, self.eos_id, self.pad_id, self.mask_id = vocab.bos_id, vocab.eos_id, vocab.pad_id, vocab.mask_id
        ids = [getattr(vocab, f"{name}_id") for name in banned]
        self.register_buffer("banned", torch.tensor(ids), persistent=False)

    def grammar_tensors(
        self, constrained: bool, field_temperature: dict[str, float] | None, temperature: float
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The domain's token grammar compiled for this vocabulary (for
        ``constrained=True`` sampling) and, with ``field_temperature``, the
        temperature of each grammar state, on the model's device.

        Args:
            constrained: Follow the domain's grammar.
            field_temperature: Temperatures of named grammar fields (e.g.
                ``{"coordinate": 0.7}``); other states use ``temperature``.
            temperature: The sampler's temperature.

        Returns:
            ``(table or None, state temperatures or None)``.

        Raises:
            MolgenError: no grammar for this domain, an unknown field, or
                field temperatures without ``constrained``.
        """
        if field_temperature and not constrained:
            raise MolgenError("field temperatures need constrained=True (they follow the grammar's fields)")
        if not constrained:
            return None, None
        grammar = self.domain.token_grammar()
        if grammar is None:
            raise MolgenError(f"domain {self.domain.name!r} has no token grammar: sample without constrained=True")
        table = grammar.compile(self.domain.tokenizer.vocab).to(self.device)
        if not field_temperature:
            return table, None
        if any(not t >= 0 for t in field_temperature.values()):
            raise MolgenError(f"field temperatures must be >= 0, got {field_temperature}")
        try:
            temperatures = grammar.field_values(field_temperature, temperature)
        except ValueError as exc:
            raise MolgenError(str(exc)) from None
        return table, temperatures.to(self.device)

    def grammar_flags(self, constrained: bool | None, semantic: bool | None) -> tuple[bool, bool]:
        """Resolve the ``constrained``/``semantic`` sampling options; None
        means "what the domain offers", so a crystal model samples under its
        grammar and site exclusion unless told otherwise (unconstrained
        crystal text is mostly invalid), and SMILES/peptides sample freely.

        Args:
            constrained: Follow the token grammar; None: when the domain has one.
            semantic: Enforce the decoding constraint; None: when constrained
                and the domain has one.

        Returns:
            ``(constrained, semantic)`` as booleans.
        """
        has_grammar = self.domain.token_grammar() is not None
        if constrained is None:
            constrained = has_grammar
        if semantic is None:
            # A rule that reads a grammar's layout is on with the grammar; one
            # of a domain without a grammar (SMILES syntax) stands alone.
            semantic = (constrained or not has_grammar) and self.domain.decoding_constraint() is not None
        return bool(constrained), bool(semantic)

    def decoding_constraint(self, semantic: bool, constrained: bool) -> DecodingConstraint | None:
        """The domain's decoding constraint (for ``semantic=True`` sampling).

        Args:
            semantic: Enforce the domain's rule beyond the grammar.
            constrained: Whether the grammar is followed too (required: the
                constraint reads the grammar's layout).

        Returns:
            The constraint, or None when ``semantic`` is False.

        Raises:
            MolgenError: ``semantic`` without ``constrained``, or a domain with
                no such rule.
        """
        if not semantic:
            return None
        if not constrained and self.domain.token_grammar() is not None:
            raise MolgenError("semantic constraints need constrained=True (they read the grammar's layout)")
        constraint = self.domain.decoding_constraint()
        if constraint is None:
            raise MolgenError(f"domain {self.domain.name!r} has no semantic decoding constraint")
        return constraint

    def sample_ids(self, n: int, **kwargs) -> list[list[int]]:
        """Draw ``n`` token-id sequences."""
        raise NotImplementedError

    def make_batch(self, texts: Sequence[str], on_unknown: str = "error") -> dict[str, torch.Tensor]:
        """Tokenize texts into a padded batch on the model's device.

        Raises:
            UnknownTokenError: naming the token and the example's index.
        """
        tokenizer = self.domain.tokenizer
        ids = []
        for i, text in enumerate(texts):
            try:
                ids.append(tokenizer.encode(text, on_unknown))
            except UnknownTokenError as exc:
                raise UnknownTokenError(exc.token, f"example {i} ({text!r}): unknown token {exc.token!r}") from None
        device = self.device
        return {k: v.to(device) for k, v in pad_batch(ids, tokenizer.vocab.pad_id).items()}


class GraphGenerator(Generator):
    """A backbone of the graph view: it draws graphs as dense tensors
    (:meth:`sample_dense`), which the domain turns into objects
    (``from_graph``), and trains on PyG ``Data`` made by the domain's
    ``to_graph`` and batched by :meth:`collate`."""

    view: ClassVar[str] = "graph"
    sampling_cls: ClassVar[type[SamplingOptions]] = GraphSamplingOptions

    def collate(self, graphs: Sequence) -> dict[str, torch.Tensor]:
        """Graph-view ``Data`` objects -> one training batch."""
        raise NotImplementedError

    def sample_dense(self, n: int, **kwargs) -> list[dict[str, torch.Tensor]]:
        """Draw ``n`` graphs (``node_type``, and ``adjacency`` /
        ``frac_coords`` / ``lattice`` where the view has them)."""
        raise NotImplementedError

    def make_batch(self, texts: Sequence[str], on_unknown: str = "error") -> dict[str, torch.Tensor]:
        """Parse texts into a batch on the model's device.

        Raises:
            ParseError: a text does not parse or holds an unknown node type.
        """
        graphs = [self.domain.to_graph(self.domain.parse(t)) for t in texts]
        return {k: v.to(self.device) for k, v in self.collate(graphs).items()}

    def decode_graph(self, graph: dict[str, torch.Tensor]) -> tuple[Any, str]:
        """A sampled graph -> (object or None, text; "" when nothing can be written)."""
        # PyG costs ~1.5 s to import (measured): token-only commands never pay it.
        from torch_geometric.data import Data

        data = Data(node_type=graph["node_type"], num_nodes=int(graph["node_type"].numel()))
        if "adjacency" in graph:
            index = torch.nonzero(graph["adjacency"] > 0).t()
            data.edge_index = index
            data.edge_type = graph["adjacency"][index[0], index[1]]
        if "frac_coords" in graph:
            data.frac_coords = graph["frac_coords"]
            data.lattice = graph["lattice"]
        obj = self.domain.from_graph(data)
        if obj is not None:
            return obj, self.domain.format(obj)
        return None, self.domain.raw_text(data) or ""

    def sample_texts(self, n: int, **kwargs) -> list[str]:
        """``n`` samples as text (SMILES, compact crystal text); graphs that
        build no object give their raw text when the domain has one, else ""."""
        return [self.decode_graph(g)[1] for g in self.sample_dense(n, **kwargs)]

    def sample(self, n: int, *, condition=None, generator: torch.Generator | None = None, seed: int | None = None, **kwargs) -> list[Any]:
        """Draw ``n`` objects; entries that are not valid objects are None.

        Args:
            n: Number of samples.
            condition: Property values (see :meth:`sample_dense`).
            generator: Source of randomness.
            seed: Seed used when ``generator`` is None.
            **kwargs: Options of :meth:`sample_dense`.

        Returns:
            Domain objects or None, in sampling order.
        """
        out = []
        for graph in self.sample_dense(n, condition=condition, generator=generator, seed=seed, **kwargs):
            obj, _ = self.decode_graph(graph)
            out.append(obj if obj is not None and self.domain.is_valid(obj) else None)
        return out


def keyword_options(*functions) -> set[str]:
    """Keyword-only parameter names of ``functions`` (sampling options), less
    the randomness arguments every sampler takes."""
    names: set[str] = set()
    for fn in functions:
        names |= {name for name, p in inspect.signature(fn).parameters.items() if p.kind is p.KEYWORD_ONLY}
    return names - {"generator", "seed", "use_cache"}


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Load any saved molgen model directory."""
    return Generator.from_pretrained(path, device)
