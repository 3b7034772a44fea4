"""Shape of the package: lines per top-level folder of ``molgen`` and the
imports between folders (how many, how many inside functions, the arrows).

    .venv/bin/python benchmarks/package_shape.py [PACKAGE_DIR]

PACKAGE_DIR defaults to this checkout's ``molgen``; pass another checkout's
(e.g. a ``git worktree`` of an older commit) to compare.
"""

from __future__ import annotations

import ast
import collections
import sys
from pathlib import Path


def shape(root: Path) -> dict:
    """Lines per folder, cross-folder imports (total, inside functions) and the arrows."""
    lines: collections.Counter = collections.Counter()
    arrows: collections.Counter = collections.Counter()
    total = inside = 0
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        folder = parts[0] if len(parts) > 1 else "(top)"
        text = path.read_text()
        lines[folder] += text.count("\n")
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("molgen.")):
                continue
            target = node.module.split(".")[1]
            if target == folder or not (root / target).is_dir():
                continue
            total += 1
            arrows[(folder, target)] += 1
            up = parents.get(node)
            while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                up = parents.get(up)
            inside += up is not None
    return {"lines": lines, "arrows": arrows, "imports": total, "inside_functions": inside}


def main() -> None:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "molgen"
    s = shape(root)
    print(f"{sum(s['lines'].values()):,} lines in {root}")
    for folder, n in s["lines"].most_common():
        print(f"  {folder:12s} {n:6,}")
    share = 100 * s["inside_functions"] / max(s["imports"], 1)
    print(f"cross-folder imports: {s['imports']} ({s['inside_functions']} inside functions, {share:.0f} %); "
          f"{len(s['arrows'])} folder arrows")
    for (a, b), n in sorted(s["arrows"].items()):
        print(f"  {a} -> {b}: {n}")


if __name__ == "__main__":
    main()
