"""The package's layout is its architecture: data flow one way, from inputs to front ends.

Every ``cputime`` import (module level or inside a function) goes from a stage to the same or an
earlier one: inputs -> physics -> model -> planning -> runs -> front ends, with ``errors``,
``durations`` and ``shipped`` below them all (docs/architecture.md says what lives where).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "cputime"

#: Stage -> rank; an import may only go to an equal or lower rank.
STAGES = {
    "errors": 0, "durations": 0, "shipped": 0, "deprecation": 0,
    "inputs": 1, "physics": 2, "model": 3, "planning": 4, "runs": 5, "frontends": 6,
    "__init__": 7, "__main__": 7,
}  # fmt: skip


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(line, imported cputime module) for every import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cputime":
            if node.module == "cputime":
                for alias in node.names:
                    if alias.name != "__version__":  # the version is metadata, not a stage
                        yield node.lineno, f"cputime.{alias.name}"
            else:
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "cputime":
                    yield node.lineno, alias.name


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "data" not in p.relative_to(PACKAGE).parts)


def test_every_module_belongs_to_a_stage():
    unknown = {_module_name(p) for p in MODULES if _stage(_module_name(p)) not in STAGES}
    assert not unknown, f"modules outside the stages of docs/architecture.md: {sorted(unknown)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_data_flow(path: Path):
    here = _stage(_module_name(path))
    against = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for line, module in _imports(path)
        if STAGES.get(_stage(module), 0) > STAGES[here]
    ]
    assert not against, "\n".join(against)
