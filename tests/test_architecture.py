"""The import rules of ARCHITECTURE.md, checked with import-linter (contracts in pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" not in out.stdout.lower().replace("0 broken", "")


def test_every_module_starts_with_a_docstring():
    missing = []
    for path in (ROOT / "sandbox").rglob("*.py"):
        text = path.read_text().lstrip()
        if not text.startswith(('"""', "'''")):
            missing.append(str(path.relative_to(ROOT)))
    assert not missing, f"modules without a docstring: {missing}"


# ---- no import cycles inside sandbox/ -----------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.AST):
    """Every import statement, at any depth (a function's deferred import closes a cycle too),
    except under `if TYPE_CHECKING:` (never executed)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """module -> the sandbox modules it imports, with the packages whose __init__ each import runs
    first, leaving out a module's own ancestor packages (importing its parent package for
    re-exports is allowed)."""
    files = {_module_name(p): p for p in (ROOT / "sandbox").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                base = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for t in targets:
                while t and t not in files:   # `import sandbox.x.y` where y is a name: its module
                    t = t.rpartition(".")[0]
                # importing a.b.c runs a.b's __init__ first: a cycle through a package's __init__
                # is as real as a direct one
                while t and t != "sandbox":
                    if t in files and t != name and not name.startswith(t + "."):
                        found.add(t)
                    t = t.rpartition(".")[0]
        graph[name] = found
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    cycles.append(sorted(comp))
    return cycles


def test_no_import_cycles_inside_sandbox():
    cycles = import_cycles(import_graph())
    assert not cycles, "import cycles (each line: modules that import each other, directly or not):\n" + \
        "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    graph = {"sandbox.a": {"sandbox.b"}, "sandbox.b": {"sandbox.c"}, "sandbox.c": {"sandbox.a"}, "sandbox.d": set()}
    assert import_cycles(graph) == [["sandbox.a", "sandbox.b", "sandbox.c"]]
    graph = import_graph()
    assert "sandbox.runner.stack" in graph["sandbox.cli.stack_cmds"]   # absolute and deferred imports seen
    assert "sandbox.cli.common" in graph["sandbox.cli.stack_cmds"]     # relative ones too


def test_no_command_module_imports_the_cli_app():
    """The CLI is composed by app.py (each module's register(app)); only the entry point runs it."""
    graph = import_graph()
    assert not [m for m, deps in graph.items() if "sandbox.cli.app" in deps and m != "sandbox.__main__"]
