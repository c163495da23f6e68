"""What a running stack was started with, kept beside sandbox.toml (`.sandbox-runtime.json`): the
command-line overrides, the last good config text, and the settings that need `sandbox restart`
to change, so `status` can say when the file asks for something the stack does not run with."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.config import ConfigError, SandboxConfig, load_config
from sandbox.runner.statefile import write_state


RUNTIME_FILE = ".sandbox-runtime.json"
RESTART_KEYS = ("host", "port", "coordinator_port", "http_port", "brokers", "data_dir", "replication",
                "min_insync_replicas", "partitions", "broker", "sasl_port")


def running_settings(cfg: SandboxConfig) -> dict:
    """The settings a running stack cannot change without a restart (kept in the runtime file)."""
    return {k: str(getattr(cfg, k)) if k == "data_dir" else getattr(cfg, k) for k in RESTART_KEYS}


def restart_needed(live: SandboxConfig) -> str | None:
    """One line when sandbox.toml now asks for settings the running stack does not have."""
    try:
        wanted = load_config(live.path, cwd=live.root)
        rt = runtime_overrides(wanted)   # `up --brokers 3` still holds
        wanted = wanted.with_overrides(**rt) if rt else wanted
    except ConfigError:
        return None
    now, was = running_settings(wanted), running_settings(live)
    diff = [k for k in RESTART_KEYS if now[k] != was[k]]
    if not diff:
        return None
    changed = sorted(k for k in set(now["broker"]) | set(was["broker"])
                     if now["broker"].get(k) != was["broker"].get(k))

    def shown(settings: dict, k: str) -> str:
        if k == "broker":   # only the settings that differ, a missing one as Kafka's default
            return "[broker] " + ", ".join(f"{b}={settings['broker'].get(b, '(default)')}" for b in changed)
        if k == "sasl_port":
            return "[sasl] port " + ("(no SASL listener)" if settings[k] is None else str(settings[k]))
        return f"{k} {settings[k]}"
    says = ", ".join(shown(now, k) for k in diff)
    uses = ", ".join(shown(was, k).removeprefix(f"{k} ").removeprefix("[sasl] port ") for k in diff)
    return f"sandbox.toml now says {says}; the running stack uses {uses}: run `sandbox restart` to apply"


def _read_runtime(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def write_runtime(cfg: SandboxConfig, **fields) -> None:
    """What the running stack was started with (overrides, ephemeral, last good config text)."""
    data = _read_runtime(runtime_file(cfg))
    data.update(fields)
    write_state(runtime_file(cfg), data)


def runtime_file(cfg: SandboxConfig) -> Path:
    return cfg.root / RUNTIME_FILE


def runtime_overrides(cfg: SandboxConfig) -> dict:
    return _read_runtime(runtime_file(cfg)).get("overrides", {})
