"""The package's layers (ARCHITECTURE.md): imports between top-level folders
of ``molgen`` point down only, so the folder graph has no cycle; backbones
never import a domain; noise schedulers import only ``core``."""

from __future__ import annotations

import ast
from pathlib import Path

import molgen

#: Lowest first: a folder may import only folders before it.
LAYERS = ("core", "pretrained", "domains", "datasets", "nn", "schedulers", "backbones", "train", "properties",
          "physics", "predictors", "scoring", "metrics", "loops", "report", "workflows", "cli")
#: Folders a folder must never import, though they are lower (the design's firm rules).
FORBIDDEN = {"backbones": {"domains", "datasets"}, "schedulers": set(LAYERS) - {"core", "schedulers"}}

ROOT = Path(molgen.__file__).parent


def folder_imports() -> dict[tuple[str, str], list[str]]:
    """``(from folder, to folder) -> [file:line, ...]`` of every import of
    another top-level folder, at module level or inside functions."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2:
            continue
        source = parts[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                bits = name.split(".")
                if bits[0] == "molgen" and len(bits) > 1 and bits[1] != source and (ROOT / bits[1]).is_dir():
                    arrows.setdefault((source, bits[1]), []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return arrows


def test_every_folder_is_a_known_layer():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders <= set(LAYERS), f"place {sorted(folders - set(LAYERS))} in LAYERS"


def test_imports_point_down_only():
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = {f"{a} -> {b}": where[:3] for (a, b), where in folder_imports().items() if rank[b] > rank[a]}
    assert not upward, upward


def test_firm_rules_hold():
    broken = {f"{a} -> {b}": where[:3] for (a, b), where in folder_imports().items() if b in FORBIDDEN.get(a, ())}
    assert not broken, broken
