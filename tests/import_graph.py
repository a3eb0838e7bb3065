"""The import graph of the vgg_repro package, read from its source (no code runs).

Every ``import`` statement counts, at module level or inside a function (a lazy
import is still a dependency, and can still close a circle). Used by
``test_layout.py`` for two checks: the ``deps`` of each stage in ``dvc.yaml`` and
the absence of import circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "vgg_repro"


def module_file(name: str) -> Path | None:
    """The source file of a module of the package, or None (not ours, or no such file)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(name: str) -> set[str]:
    """The package's modules that module ``name`` imports directly.

    ``from a.b import c`` imports ``a.b.c`` when that is a module of ours, else ``a.b``.
    """
    path = module_file(name)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if module_file(sub) is not None else base)
        else:
            continue
        found.update(t for t in targets if module_file(t) is not None)
    found.discard(name)
    return found


def parents(name: str) -> list[str]:
    """The packages Python initialises before ``name``: ``a``, ``a.b`` for ``a.b.c``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(name: str) -> set[str]:
    """Every module of the package that running ``python -m name`` imports, with the
    packages around each (``import a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py``)."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo += [*parents(current), *imports(current)]
    return seen


def closure_files(name: str) -> set[str]:
    """:func:`closure` as paths relative to the repository root (``vgg_repro/...py``)."""
    return {module_file(m).relative_to(ROOT).as_posix() for m in closure(name)}


def all_modules() -> list[str]:
    return sorted(module_name(p) for p in (ROOT / PACKAGE).rglob("*.py"))


def cycles() -> list[list[str]]:
    """Import circles among the package's modules (each listed once, as a path)."""
    graph = {m: imports(m) for m in all_modules()}
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])
    return found
