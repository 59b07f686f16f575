"""The domain does not speak HTTP: only the edge modules raise or import booking.errors' Problem.

Domain modules raise booking.domain_errors (mapped to a status once, in booking/errors.py).
The edge is the request parsing, the header handling and the routes (docs/design.md, "Errors").
Read with the stdlib `ast` only: every import and every `raise`, however deeply nested. And every
waiting-room problem names a kind, so its type sits under the service's one base.
"""

from __future__ import annotations

import ast
import re
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


KIND = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def problem_kinds(source: str) -> list[tuple[int, ast.expr | None]]:
    """(line, kind argument) of each `problem(...)` call (waitingroom.problem's renderer)."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id == "problem":
            given = [k.value for k in node.keywords if k.arg == "kind"]
            arg = node.args[3] if len(node.args) > 3 else (given[0] if given else None)
            calls.append((node.lineno, arg))
    return calls


def is_kind(arg: ast.expr | None) -> bool:
    """A literal kind ("ticket-not-found"), or an f-string starting like one."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return KIND.fullmatch(arg.value) is not None
    if isinstance(arg, ast.JoinedStr) and arg.values:
        head = arg.values[0]
        return isinstance(head, ast.Constant) and re.match(r"[a-z]", str(head.value)) is not None
    return False


def test_waiting_room_problems_name_a_kind_under_the_one_base() -> None:
    # The type base is prepended by the renderer: a path or URI here would double it.
    bad = []
    for path in sorted((ROOT / "waitingroom").rglob("*.py")):
        for line, arg in problem_kinds(path.read_text(encoding="utf-8")):
            if not is_kind(arg):
                bad.append(f"{path.relative_to(ROOT)}:{line}")
    assert bad == [], f"problem() without a plain kind: {bad}"
    assert len(problem_kinds((ROOT / "waitingroom" / "routes.py").read_text())) >= 5
    samples = 'problem(404, "t", "d", "/problems/x")\nproblem(503, "t", "d")\n'
    assert [is_kind(arg) for _, arg in problem_kinds(samples)] == [False, False]
