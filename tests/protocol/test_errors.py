"""The one error-code table: sandbox/protocol/errors.py holds every Kafka code and no other module
defines one (a module-level assignment to a Kafka error name)."""

from __future__ import annotations

import ast
from pathlib import Path

from kio.schema.errors import ErrorCode

from sandbox.protocol import errors

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "sandbox" / "protocol" / "errors.py"
KAFKA_NAMES = {code.name.upper() for code in ErrorCode}


def _assigned_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _assigned_names(elt)]
    return []


def error_code_definitions(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, name) of every module-level assignment whose target is a Kafka error-code name."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            found += [(node.lineno, name) for name in _assigned_names(target) if name in KAFKA_NAMES]
    return found


def test_no_module_but_the_table_defines_an_error_code():
    offenders = []
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        if path == TABLE:
            continue
        for line, name in error_code_definitions(ast.parse(path.read_text(), str(path))):
            offenders.append(f"{path.relative_to(ROOT)}:{line} {name}")
    assert not offenders, ("Kafka error codes defined outside sandbox/protocol/errors.py "
                           f"(import them from there): {offenders}")


def test_error_codes_are_imported_only_from_the_table():
    """No module passes codes on: `from .common import NONE` would hide a second table."""
    offenders = []
    for path in sorted((ROOT / "sandbox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.module in ("errors", "sandbox.protocol.errors"):
                continue
            if node.level == 0 and not (node.module or "").startswith("sandbox"):
                continue
            names = [a.name for a in node.names if a.name in KAFKA_NAMES]
            if names:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {names}")
    assert not offenders, f"Kafka error codes imported from elsewhere than sandbox.protocol.errors: {offenders}"


def test_the_check_sees_plain_annotated_and_tuple_assignments():
    tree = ast.parse("NONE = 0\nA, UNKNOWN_TOPIC_OR_PARTITION = 1, 3\nNOT_COORDINATOR: int = 16\n"
                     "NO_LEADER = -1\ndef f():\n    INVALID_REQUEST = 42\n")
    assert error_code_definitions(tree) == [(1, "NONE"), (2, "UNKNOWN_TOPIC_OR_PARTITION"), (3, "NOT_COORDINATOR")]


def test_the_table_has_every_kafka_code_as_an_int():
    for code in ErrorCode:
        value = getattr(errors, code.name.upper())
        assert type(value) is int and value == code.value, code.name
    assert errors.name_of(3) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert errors.name_of(-12345) == "-12345"
