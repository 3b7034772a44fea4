"""Protocols of the tensor views that domains offer and backbones consume.

They live in ``core`` so that backbones can check a domain against a view
without importing the domain layer (backbones never import a domain).
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable


@runtime_checkable
class GraphView(Protocol):
    """What a domain listing ``"graph"`` in its ``views`` implements (the
    molecular graph and crystal domains); graph backbones use nothing else.
    """

    def fit_graph(self, objs: Sequence[Any]) -> Any:
        """Learn the graph view's categories (node types) from ``objs``; returns self."""

    def graph_spec(self) -> Any:
        """The graph view's categories (a ``molgen.domains.base.GraphSpec``); raises RuntimeError before :meth:`fit_graph`."""

    def to_graph(self, obj: Any):
        """Object -> PyG ``Data`` of the graph view (see :class:`GraphSpec`).

        Raises:
            ParseError: the object holds a category the fitted spec lacks.
        """

    def from_graph(self, data) -> Any | None:
        """PyG ``Data`` of the graph view -> object, or None when it does not
        make one (never raises on a malformed graph)."""

    def raw_text(self, data) -> str | None:
        """Text of a graph that :meth:`from_graph` rejects, for recording the
        invalid sample (None: the domain has no such text)."""
