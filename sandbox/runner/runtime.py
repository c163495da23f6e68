"""What a running stack was started with, kept beside sandbox.toml (`.sandbox-runtime.json`): the
command-line overrides, the last good config text, and the settings that need `sandbox restart`
to change, so `status` can say when the file asks for something the stack does not run with."""

from __future__ import annotations

import json
import re
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
    """The runtime file's fields; {} when there is none or it is not a JSON object (a hand-edited
    or torn file must never stop a command: it only loses what the stack was started with)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _field(cfg: SandboxConfig, key: str) -> dict:
    value = _read_runtime(runtime_file(cfg)).get(key)
    return value if isinstance(value, dict) else {}


def refused(cfg: SandboxConfig, e: Exception) -> ConfigError:
    """The runtime file's contents refused: one sentence naming it and how to go on."""
    said = re.sub(r"^command-line option \S+: ", "", str(e))   # they were written by `up`, not typed now
    return ConfigError(f"{runtime_file(cfg)} holds settings this sandbox does not take ({said}); delete that "
                       f"file (`sandbox up` writes it anew; a running stack keeps running)")


def drop_runtime(cfg: SandboxConfig) -> str | None:
    """Remove the runtime file; a sentence saying why it could not be (a folder of that name)."""
    path = runtime_file(cfg)
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        what = "is a folder, not a file" if path.is_dir() else f"cannot be removed ({e.strerror or e})"
        return f"{path} {what}; delete it: the sandbox keeps what a running stack was started with there"
    return None


def write_runtime(cfg: SandboxConfig, **fields) -> None:
    """What the running stack was started with (overrides, ephemeral, last good config text)."""
    data = _read_runtime(runtime_file(cfg))
    data.update(fields)
    write_state(runtime_file(cfg), data)


def runtime_file(cfg: SandboxConfig) -> Path:
    return cfg.root / RUNTIME_FILE


def runtime_overrides(cfg: SandboxConfig) -> dict:
    return _field(cfg, "overrides")


def runtime_running(cfg: SandboxConfig) -> dict:
    """The settings the running stack was started with ({} when none are recorded)."""
    return _field(cfg, "running")


def with_runtime_overrides(cfg: SandboxConfig) -> SandboxConfig:
    """cfg with the command-line overrides the stack was started with (`up --brokers 3`); ones
    this sandbox refuses are a ConfigError naming the runtime file, not a command-line option."""
    rt = runtime_overrides(cfg)
    if not rt:
        return cfg
    try:
        return cfg.with_overrides(**rt)
    except (ConfigError, TypeError) as e:
        raise refused(cfg, e) from None
