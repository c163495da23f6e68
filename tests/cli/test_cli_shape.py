"""The CLI's shape as a user meets it through `--help`, run as a real `python -m sandbox` process:
help text keeps its square brackets (no rich markup eating "[docker] base_image"), flags are not
shown as `--docker <bool>`, every option says what it does, there is a `--version`, and a letter
means one thing in every command (-c sandbox.toml, -b broker, -p one partition, -f follow)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import sandbox


def sandbox_help(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "sandbox", *args, "--help"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


COMMANDS = [["up"], ["down"], ["status"], ["logs"], ["restart"], ["recover"], ["init"], ["image"],
            ["produce"], ["consume"], ["bench"], ["doctor"], ["monitor"], ["topics", "create"],
            ["topics", "list"], ["topics", "describe"], ["topics", "delete"], ["topics", "apply"],
            ["groups", "list"], ["groups", "describe"], ["broker"], ["coordinator"]]


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(4) as pool:   # each is mostly an interpreter starting: four at a time
        return dict(zip((" ".join(c) for c in COMMANDS), pool.map(lambda c: sandbox_help(*c), COMMANDS)))


def options(text: str) -> list[tuple[list[str], str]]:
    """(flags, help text) of each option in plain click help (help may start on the next line)."""
    out = []
    lines = text.split("Options:", 1)[-1].splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (-[^\s,]+(?:, -[^\s,]+)*)(.*)$", line)
        if not m:
            continue
        parts = re.split(r"\s{2,}", m.group(2).strip(), maxsplit=1)
        help_text = parts[1] if len(parts) > 1 else ""
        if not help_text and len(parts) == 1 and not parts[0].startswith("<") and parts[0]:
            help_text = parts[0]   # a flag: no metavar, the help follows after two spaces
        if not help_text and i + 1 < len(lines) and re.match(r"^\s{6,}\S", lines[i + 1]):
            help_text = lines[i + 1].strip()
        out.append((m.group(1).split(", "), help_text))
    assert out, f"no options found in plain help:\n{text}"
    return out


def test_square_brackets_survive_in_help():
    assert "(default: [docker] base_image)" in sandbox_help("image")
    assert "[default: 50" in sandbox_help("logs")


def test_flags_are_not_shown_with_a_bool_type(helps):
    for name, text in helps.items():
        assert "<bool>" not in text, f"`sandbox {name} --help` shows a flag as <bool>:\n{text}"


def test_every_option_has_a_description(helps):
    undocumented = []
    for name, text in helps.items():
        for flags, help_text in options(text):
            if not help_text or help_text.startswith("[default"):
                undocumented.append(f"{name} {'/'.join(flags)}")
    assert not undocumented, undocumented


def test_version():
    r = subprocess.run([sys.executable, "-m", "sandbox", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"sandbox {sandbox.__version__}", r


def test_one_meaning_per_letter(helps):
    meaning: dict[str, set[str]] = {}
    for name, text in helps.items():
        for flags, _ in options(text):
            shorts = [f for f in flags if not f.startswith("--")]
            longs = [f for f in flags if f.startswith("--")]
            for s in shorts:
                meaning.setdefault(s, set()).add(longs[0] if longs else s)
    meaning["-n"] -= {"--lines", "--max-messages", "--records"}   # "how many", as in head -n
    clashes = {s: sorted(longs) for s, longs in meaning.items() if len(longs) > 1}
    assert not clashes, clashes
    assert meaning["-c"] == {"--config"} and meaning["-p"] == {"--partition"} and meaning["-b"] == {"--bootstrap"}
