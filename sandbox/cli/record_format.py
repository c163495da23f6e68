"""How `sandbox consume` prints a record and reads `produce -H` / `consume --offset`: the format
string of kcat's -f (%t topic, %p partition, %o offset, %k key, %s value, %T timestamp in ms,
%h headers as k=v,k=v, %S value size, %% a percent sign; \\n and \\t), a newline added when the
format has none."""

from __future__ import annotations

import re

_TOKEN = re.compile(rb"%[tpokshTS%]")


def unescape(text: str, option: str) -> bytes:
    """The bytes `text` stands for, with kcat's escapes (\\t, \\n, \\\\, \\xNN); a broken one is
    one sentence (ValueError), not a traceback."""
    if "\\" not in text:
        return text.encode()
    try:
        return text.encode().decode("unicode_escape").encode("latin-1")
    except UnicodeError:
        raise ValueError(f"{option} {text!r} has an escape that cannot be read; use \\t, \\n, \\\\ or \\xNN "
                         f"(two hex digits), or write the text itself") from None


def compile_format(fmt: str) -> bytes:
    raw = unescape(fmt, "--format")
    return raw if b"\n" in raw else raw + b"\n"


def default_format(print_key: bool, sep: bytes) -> bytes:
    return b"%k" + sep.replace(b"%", b"%%") + b"%s\n" if print_key else b"%s\n"


def render(fmt: bytes, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
           timestamp: int, headers) -> bytes:
    def one(m: re.Match) -> bytes:
        t = m.group(0)[1:]
        if t == b"s":
            return b"null" if value is None else value
        if t == b"k":
            return b"null" if key is None else key
        if t == b"p":
            return str(partition).encode()
        if t == b"o":
            return str(offset).encode()
        if t == b"T":
            return str(timestamp).encode()
        if t == b"t":
            return topic.encode()
        if t == b"S":
            return str(-1 if value is None else len(value)).encode()
        if t == b"h":
            return b",".join(k.encode() + b"=" + (b"null" if v is None else v) for k, v in headers or ())
        return b"%"

    return _TOKEN.sub(one, fmt)


def parse_headers(items: list[str]) -> tuple[tuple[str, bytes], ...]:
    """-H KEY=VALUE options (repeatable; a key may repeat, as Kafka allows)."""
    out = []
    for item in items:
        key, found, value = item.partition("=")
        if not found or not key:
            raise ValueError(f"header {item!r} is not KEY=VALUE; write it like -H trace-id=42")
        out.append((key, value.encode()))
    return tuple(out)


def parse_offset(text: str) -> tuple[str, int]:
    """--offset: ('beginning'|'end', 0), ('at', N) or ('from-end', N) for -N."""
    t = text.strip().lower()
    if t in ("beginning", "earliest", "start"):
        return "beginning", 0
    if t in ("end", "latest"):
        return "end", 0
    try:
        n = int(t)
    except ValueError:
        raise ValueError(f"--offset {text} is not beginning, end, an offset N or -N (N before the end)") from None
    if abs(n) >= 1 << 63:
        raise ValueError(f"--offset {text} is beyond any offset (they are 64-bit numbers); give beginning, end, "
                         f"an offset N or -N")
    return ("from-end", -n) if n < 0 else ("at", n)
