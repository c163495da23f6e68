"""The README's promises and docs/ kept true: the README's first code block holds exactly the two
required commands, states the Python version, has a connect section and the list of what is not
supported, and names no file that does not exist; docs/commands.md matches every command's
--help (options both ways), docs/configuration.md the config schema, docs/status.md the keys the
status code produces, docs/protocol.md the broker's handler registry. Fix drift with
`python scripts/gen_docs.py` (commands and the API table) or by editing the docs."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
gen_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_docs)


def test_readme_first_code_block_is_the_two_commands():
    first = re.search(r"```[^\n]*\n(.*?)```", README, re.S).group(1)
    assert first.strip().splitlines() == ["pip install . && sandbox up", "./scripts/test.sh"]


def test_readme_states_python_version_connect_section_and_unsupported():
    assert "Python 3.11 or newer is required" in README and "No matching distribution found for kio" in README
    assert "## Connect an application" in README and "127.0.0.1:9092" in README
    for name in ("spring.kafka.bootstrap-servers", "bootstrap.servers", "kafkajs", "Confluent.Kafka", "confluent_kafka"):
        assert name in README, name
    unsupported = README.split("## What is not supported", 1)[1].split("\n## ", 1)[0]
    for thing in ("Transactions", "SSL/TLS", "ACLs", "KIP-392", "KIP-848"):
        assert thing in unsupported, thing


def _referenced_paths(text: str, base: Path) -> list[tuple[str, Path]]:
    refs = [m for m in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in m]
    refs += [m for m in re.findall(r"`([\w./-]+\.(?:md|py|sh|toml|yml|yaml))`", text)
             if "/" in m or m.endswith(".md")]
    return [(r, (base / r) if not r.startswith("/") else Path(r)) for r in refs]


@pytest.mark.parametrize("doc", ["README.md"] + [f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))])
def test_no_reference_to_a_missing_file(doc):
    path = ROOT / doc
    text = path.read_text(encoding="utf-8")
    missing = []
    for ref, target in _referenced_paths(text, path.parent):
        if not (target.exists() or (ROOT / ref).exists()):
            missing.append(ref)
    assert not missing, f"{doc} names files that do not exist: {missing}"


def test_readme_steps_need_no_bash():
    block = README.split("## Start, look, stop", 1)[1].split("```", 2)[1]
    for bashism in ("$(", "&&", "export ", "~/", "\\\n", "'"):
        assert bashism not in block, bashism


def _options(help_text: str) -> set[str]:
    section = help_text.split("Options:", 1)[-1]
    return set(re.findall(r"(?m)^  (?:-\w, )?(--[\w-]+)", section))


def test_commands_doc_matches_every_help():
    doc = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"(?ms)^## (sandbox [^\n]+)\n(.*?)(?=^## |\Z)", doc))
    for args, text in zip(gen_docs.COMMANDS, gen_docs.help_texts(gen_docs.COMMANDS)):
        name = "sandbox " + " ".join(args)
        assert name in sections, f"docs/commands.md has no section {name}: run python scripts/gen_docs.py"
        live, documented = _options(text), _options(sections[name].split("```")[1])
        assert live == documented, (f"{name}: options differ from --help (new: {sorted(live - documented)}, "
                                    f"gone: {sorted(documented - live)}); run python scripts/gen_docs.py")


def test_configuration_doc_lists_every_schema_key():
    from sandbox import config

    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    tables = dict(re.findall(r"(?ms)^## \[([^\]]+)\]\n(.*?)(?=^## |\Z)", doc))
    schema = {"sandbox": set(config._SANDBOX), "recovery": set(config._RECOVERY), "docker": set(config._DOCKER),
              "topics.NAME": set(config._TOPIC_KEYS)}
    for table, keys in schema.items():
        assert table in tables, table
        documented = set(re.findall(r"(?m)^\| `(\w+)` \|", tables[table]))
        assert documented == keys, (table, sorted(keys - documented), sorted(documented - keys))
    from sandbox import server_properties

    settings = set(server_properties.SETTINGS) - set(server_properties.FROM_SANDBOX_SECTION)
    documented = set(re.findall(r"`([a-z.]+)`", "".join(re.findall(r"(?m)^\| (`[a-z.]+`(?:, `[a-z.]+`)*) \|",
                                                                    tables["broker"]))))
    assert documented == settings, (sorted(settings - documented), sorted(documented - settings))


def test_status_doc_matches_the_status_keys():
    from sandbox.health.status import build_status, service_entries

    doc = (ROOT / "docs" / "status.md").read_text(encoding="utf-8")
    top_doc, svc_doc = doc.split("## Top level", 1)[1].split("## A service", 1)
    top = set(build_status(name="x", mode="native", bootstrap="127.0.0.1:1", state=None, client=None,
                           coordinator=("127.0.0.1", 1))) | {"running", "restart_needed"}   # added by the CLI
    svc = set(service_entries({"services": [{"name": "broker-1", "role": "broker", "state": "stopped"}]})[0])
    assert set(re.findall(r"(?m)^\| `(\w+)` \|", top_doc)) == top
    assert set(re.findall(r"(?m)^\| `(\w+)` \|", svc_doc)) == svc | {"container", "volume"}   # docker mode


def test_protocol_doc_matches_the_handler_registry():
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    table = doc.split(gen_docs.BEGIN, 1)[1].split(gen_docs.END, 1)[0].strip()
    assert table == gen_docs.protocol_table(), "docs/protocol.md is out of date: run python scripts/gen_docs.py"
