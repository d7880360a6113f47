"""The architecture of DESIGN.md, checked: the layers (import-linter's contracts in
pyproject.toml), no import circle, SQL and backend differences only in their wing, and room
sizes that a reader can hold in mind."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "jobqueue"

#: Where SQL is built and backend differences live (the store's wing); config.py parses URLs.
SQL_WING = (
    "store/",
    "db.py",
    "driver.py",
    "db_errors.py",
    "database.py",
    "schema/",
    "migrations.py",
)
#: contrib/django/borrowed.py maps Django's database vendors to SQLAlchemy's, in one place.
BACKEND_NAMES_ALLOWED = (*SQL_WING, "config.py", "contrib/django/borrowed.py")
#: SQLAlchemy names that build SQL; the rest of the package may use connections, engines and
#: the exceptions, never these.
SQL_BUILDERS = {
    "select", "insert", "update", "delete", "text", "func", "literal", "literal_column",
    "bindparam", "and_", "or_", "not_", "exists", "tuple_", "column", "table", "Table",
    "Column", "MetaData", "case", "cast", "union", "union_all", "null", "true", "false",
    "desc", "asc", "distinct", "lateral", "values",
}  # fmt: skip
BACKEND_NAMES = {"sqlite", "postgresql", "mysql", "mariadb"}
MAX_MODULE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 300, 200, 50
#: A docstring that says why a room is larger than the limit starts its reason with this.
WHY_LONG = "Longer than usual because"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        yield relative, ast.parse(path.read_text(), filename=str(path))


def _in(relative: str, places: tuple[str, ...]) -> bool:
    return any(relative == p or (p.endswith("/") and relative.startswith(p)) for p in places)


def test_the_layers_hold() -> None:
    tool = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert tool is not None, "import-linter is not installed (pip install -e '.[dev]')"
    done = subprocess.run([tool], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" not in done.stdout.split("Contracts:")[-1].replace("0 broken", "")


def test_no_import_circle() -> None:
    """Imports inside functions count too: they hide a circle, they do not remove it."""
    graph = grimp.build_graph("jobqueue")
    circles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported.startswith(f"{importer}.") or importer == "jobqueue":
                continue  # a package's __init__ re-exporting its own modules
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back and not any(m == "jobqueue" for m in back):
                circles.append(" -> ".join([importer, *back]))
    assert not circles, "\n".join(circles)


def test_only_the_store_wing_builds_sql() -> None:
    found = []
    for relative, tree in _modules():
        if _in(relative, SQL_WING):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                module = node.module or ""
                names = {alias.name for alias in node.names}
                if module.startswith(
                    ("sqlalchemy.sql", "sqlalchemy.dialects", "sqlalchemy.schema")
                ):
                    found.append(f"{relative}:{node.lineno} imports from {module}")
                elif names & SQL_BUILDERS:
                    found.append(f"{relative}:{node.lineno} imports {sorted(names & SQL_BUILDERS)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "exec_driver_sql")
            ):
                found.append(f"{relative}:{node.lineno} runs SQL ({node.func.attr})")
    assert not found, "\n".join(found)


def test_backend_differences_stay_in_their_wing() -> None:
    found = [
        f"{relative}:{node.lineno} names the backend {node.value!r}"
        for relative, tree in _modules()
        if not _in(relative, BACKEND_NAMES_ALLOWED)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in BACKEND_NAMES
    ]
    assert not found, "\n".join(found)


def _says_why(node: ast.AST) -> bool:
    docstring = (
        ast.get_docstring(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module)
        else None
    )
    return docstring is not None and WHY_LONG in docstring


def test_rooms_are_small_or_say_why() -> None:
    too_big = []
    for relative, tree in _modules():
        lines = len((PACKAGE / relative).read_text().splitlines())
        if lines > MAX_MODULE_LINES and not _says_why(tree):
            too_big.append(f"{relative}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_FUNCTION_LINES
            else:
                continue
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > limit and not _says_why(node):
                too_big.append(f"{relative}:{node.lineno} {node.name}: {size} lines")
    assert not too_big, "over the limits, with no docstring saying why:\n" + "\n".join(too_big)


@pytest.mark.parametrize("place", SQL_WING)
def test_the_wing_exists(place: str) -> None:
    """The allowed places are real, so a rename cannot quietly widen what the checks allow."""
    assert (PACKAGE / place).exists()
