"""The domain does not speak HTTP: only the edge modules raise or import booking.errors' Problem.

Domain modules raise booking.domain_errors (mapped to a status once, in booking/errors.py).
The edge is the request parsing, the header handling and the routes (docs/design.md, "Errors").
Read with the stdlib `ast` only: every import and every `raise`, however deeply nested.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_PACKAGES = ("booking", "workers")
# The HTTP edge: these may raise Problem. Anything else, including a new module, is domain.
EDGE_MODULES = {
    "booking.app",  # installs the exception handlers
    "booking.auth",  # Authorization and cookie headers
    "booking.bodylimit",  # the request body's size, before any route runs
    "booking.errors",  # the mapping itself
    "booking.requests",  # request bodies and path parameters
}
EDGE_PACKAGES = ("booking.routes",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_edge(module: str) -> bool:
    return module in EDGE_MODULES or any(module.startswith(p + ".") for p in EDGE_PACKAGES)


def domain_modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in DOMAIN_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            if not is_edge(name):
                found[name] = path
    return found


def _names_problem(node: ast.expr | None) -> bool:
    """`Problem(...)`, `Problem`, `errors.Problem(...)`: anything whose name is Problem."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id == "Problem"
    if isinstance(node, ast.Attribute):
        return node.attr == "Problem"
    return False


def http_edge_uses(module: str, source: str, is_package: bool = False) -> list[str]:
    """Each way `module` imports booking.errors or raises a Problem, with its line."""
    tree = ast.parse(source)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "booking.errors":
                    found.append(f"line {node.lineno}: import booking.errors")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = {base} | {f"{base}.{alias.name}" for alias in node.names}
            if "booking.errors" in targets:
                found.append(f"line {node.lineno}: from {base} import ...")
        elif isinstance(node, ast.Raise) and _names_problem(node.exc):
            found.append(f"line {node.lineno}: raise Problem")
    return found


def test_domain_modules_neither_raise_nor_import_problem() -> None:
    offenders = {
        module: uses
        for module, path in domain_modules().items()
        if (uses := http_edge_uses(module, path.read_text("utf-8"), path.name == "__init__.py"))
    }
    assert offenders == {}, (
        "domain modules must raise booking.domain_errors, not HTTP problems: "
        f"{offenders} (or, if the module is HTTP edge, add it to EDGE_MODULES with a reason)"
    )


def test_the_walk_covers_the_domain_and_skips_the_edge() -> None:
    domain = domain_modules()
    for module in ("booking.reservations", "booking.signin", "booking.room_cache", "workers"):
        assert any(m == module or m.startswith(module + ".") for m in domain), module
    assert not any(is_edge(m) for m in domain)
    for module in EDGE_MODULES:  # the allowlist names modules that exist
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), module


def test_the_walker_sees_every_form() -> None:
    cases = {
        "from booking.errors import Problem\n": 1,
        "import booking.errors\n": 1,
        "from booking import errors\n": 1,
        "from . import errors\n": 1,
        "from .errors import TITLES\n": 1,
        "def f():\n    from booking.errors import Problem\n    raise Problem(404, 'x', 'y')\n": 2,
        "def f(e):\n    raise e.Problem(404, 'x', 'y')\n": 1,
        "from booking.domain_errors import EventNotFound\nraise EventNotFound(1)\n": 0,
        "from booking.api_models import Problem\nx = Problem\n": 0,
    }
    for source, count in cases.items():
        assert len(http_edge_uses("booking.somewhere", source)) == count, source
    assert http_edge_uses("booking", "from . import errors\n", is_package=True)
