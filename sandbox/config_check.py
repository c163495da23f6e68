"""How sandbox.toml's values are checked and its errors located: the one-sentence ConfigError
naming file, line, key and fix, the line a key sits on, and the checks every section shares
(unknown keys with a suggestion, integers in range, a section's schema). Stdlib only."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

FILENAME = "sandbox.toml"


class ConfigError(Exception):
    """A user error in sandbox.toml; str() is one sentence naming file, line, key and the fix."""

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message)
        self.path, self.line, self.key = path, line, key



def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ ... }"
    return repr(v)


def _key_text(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


class _Ctx:
    """The file being validated: raises errors located at a key's line."""

    def __init__(self, path: Path | None, text: str, overrides: set[str] = frozenset()) -> None:
        self.path, self.lines, self.overrides = path, text.splitlines(), overrides

    def where(self, line: int | None) -> str:
        name = _display(self.path) if self.path else FILENAME
        return f"{name}:{line}" if line else name

    def fail(self, keys: tuple[str, ...], what: str) -> ConfigError:
        if keys[:1] == ("sandbox",) and keys[1:2] and keys[1] in self.overrides:
            opt = "--" + keys[1].replace("_", "-")
            return ConfigError(f"command-line option {opt}: {what}", path=self.path, key=keys[1])
        line = _find_line(self.lines, keys)
        return ConfigError(f"{self.where(line)}: {what}", path=self.path, line=line,
                           key=".".join(map(str, keys)))

    def table(self, keys: tuple[str, ...]) -> str:
        return "[" + ".".join(_key_text(k) for k in keys) + "]"


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")


def _split_dotted(s: str) -> tuple[str, ...]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', s)
    return tuple(a or b or c for a, b, c in parts)


def _find_line(lines: list[str], keys: tuple) -> int | None:
    """1-based line of keys (a table path, then keys) in the TOML text; best effort. (name, n,
    key...): the n-th (from 1) [[name]] table of an array, then a key in it."""
    if len(keys) >= 2 and isinstance(keys[1], int):
        head = re.compile(rf"^\s*\[\[\s*{re.escape(keys[0])}\s*\]\]")
        starts = [i for i, line in enumerate(lines) if head.match(line)]
        if len(starts) < keys[1]:
            return None
        start = starts[keys[1] - 1]
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        for k in keys[2:3]:
            q = re.escape(str(k))
            found = next((i for i in range(start + 1, end)
                          if re.search(rf'^\s*("{q}"|\'{q}\'|{q})\s*=', lines[i])), None)
            if found is not None:
                return found + 1
        return start + 1
    heads = [(i, _split_dotted(m.group(1))) for i, line in enumerate(lines)
             if (m := _HEADER.match(line)) and not line.lstrip().startswith("[[")]
    bounds = [h[0] for h in heads] + [len(lines)]
    regions = [((), -1, bounds[0])] + [(hdr, start, bounds[n + 1])
                                       for n, (start, hdr) in enumerate(heads)]

    def has_key(line: str, k: str) -> bool:
        q = re.escape(k)
        return re.search(rf'(^|[{{,.\s])("{q}"|\'{q}\'|{q})\s*[=.]', line) is not None

    for cut in range(len(keys), -1, -1):
        table, rest = keys[:cut], keys[cut:]
        for hdr, start, end in regions:
            if hdr != table or (not rest and start < 0):
                continue
            pos = start + 1
            for k in rest:  # each deeper key at or after the line of the previous one
                pos = next((i for i in range(pos, end) if has_key(lines[i], k)), -1)
                if pos < 0:
                    break
            if pos >= 0:
                return (pos if rest else start) + 1
    for k in reversed(keys):  # last resort: the deepest key anywhere
        for i, line in enumerate(lines):
            if has_key(line, k):
                return i + 1
    return None


def _unknown(ctx: _Ctx, table: tuple[str, ...], key: str, known: tuple[str, ...] | frozenset[str],
             what: str = "key") -> ConfigError:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    where = ctx.table(table) + " has" if table else "the file has"
    fix = (f"did you mean {_key_text(close[0])}?" if close
           else f"use one of: {', '.join(sorted(known))}.")
    return ctx.fail(table + (key,), f"{where} no {what} {_key_text(key)}; {fix}")


def _int(ctx: _Ctx, table: tuple[str, ...], key: str, v: Any, lo: int, hi: int | None,
         example: int) -> int:
    t = ctx.table(table)
    if isinstance(v, bool) or not isinstance(v, int):
        hint = "write it without quotes" if isinstance(v, str) else "write a whole number"
        raise ctx.fail(table + (key,), f"{t} {key} = {_show(v)} must be an integer; {hint}, "
                                       f"e.g. {key} = {example}.")
    if v < lo or (hi is not None and v > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        fix = f"set {key} = {lo} or more" if hi is None or v < lo else f"set {key} = {hi} or less"
        raise ctx.fail(table + (key,), f"{t} {key} = {_show(v)} must be {rng}; {fix}.")
    return v


def _values(ctx: _Ctx, doc: dict, name: str, schema: dict[str, tuple]) -> dict[str, Any]:
    """The checked values of section `name` (only the keys it sets)."""
    sec, T = doc.get(name, {}), (name,)
    if not isinstance(sec, dict):
        raise ctx.fail(T, f"{name} = {_show(sec)} must be a table; write it as a [{name}] section.")
    out = {}
    for key, v in sec.items():
        if key not in schema:
            raise _unknown(ctx, T, key, tuple(schema))
        kind, arg, example = schema[key]
        bad = f"{ctx.table(T)} {key} = {_show(v)}"
        if kind == "int":
            v = _int(ctx, T, key, v, arg[0], arg[1], example)
        elif kind == "choice" and (not isinstance(v, str) or v not in arg):
            opts = " or ".join(f'"{c}"' for c in arg)
            raise ctx.fail(T + (key,), f"{bad} is not a known value; set {key} to {opts}.")
        elif kind == "str" and (not isinstance(v, str) or not v.strip()):
            raise ctx.fail(T + (key,), f'{bad} must be a non-empty string; write it in quotes, '
                                       f'e.g. {key} = "{example}".')
        elif kind == "seconds" and (isinstance(v, bool) or not isinstance(v, (int, float))
                                    or not v > 0):
            raise ctx.fail(T + (key,), f"{bad} must be a positive number of seconds; set "
                                       f"{key} = {example}.")
        out[key] = v
    return out
