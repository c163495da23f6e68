"""sandbox.toml's [[acls]]: ACL bindings the stack creates at `up`, when the file is saved and with
`sandbox topics apply`, as `kafka-acls --add` would (one entry, several operations):

    [[acls]]
    principal = "User:billing-svc"   # "billing-svc" alone means User:billing-svc
    topic = "orders"                 # or group = "...", transactional_id = "...", cluster = true
    pattern = "prefixed"             # "literal" (the default) or "prefixed"
    operations = ["read", "describe"]
    permission = "allow"             # or "deny"
    host = "*"

Each binding is Kafka's [resource type, name, pattern type, principal, host, operation, permission]
codes, the ones coordinator/acls.py names (tests/test_config_acls.py checks they agree). Stdlib
only: sandbox.config imports it, and the CLI starts without the protocol codec."""

from __future__ import annotations

import ipaddress
from typing import Any

from sandbox.config_check import ConfigError, _Ctx, _show

TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5                       # Kafka's ResourceType
LITERAL, PREFIXED = 3, 4                                                 # PatternType
ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 2, 3, 4, 5, 6, 7, 8  # AclOperation
CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 9, 10, 11, 12
DENY, ALLOW = 2, 3                                                       # AclPermissionType
CLUSTER_NAME = "kafka-cluster"

KEYS = ("principal", "topic", "group", "transactional_id", "cluster", "pattern", "operations", "permission", "host")
RESOURCES = {"topic": TOPIC, "group": GROUP, "transactional_id": TRANSACTIONAL_ID, "cluster": CLUSTER}
OPERATIONS = {"all": ALL, "read": READ, "write": WRITE, "create": CREATE, "delete": DELETE, "alter": ALTER,
              "describe": DESCRIBE, "cluster_action": CLUSTER_ACTION, "describe_configs": DESCRIBE_CONFIGS,
              "alter_configs": ALTER_CONFIGS, "idempotent_write": IDEMPOTENT_WRITE}
PATTERNS = {"literal": LITERAL, "prefixed": PREFIXED}
PERMISSIONS = {"allow": ALLOW, "deny": DENY}

Binding = tuple[int, str, int, str, str, int, int]


def _choice(ctx: _Ctx, n: int, key: str, value: Any, table: dict[str, int]) -> int:
    text = value.lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else None
    if text not in table:
        raise ctx.fail(("acls", n, key), f"[[acls]] #{n} {key} = {_show(value)} must be one of {', '.join(table)}.")
    return table[text]


def parse_acls(ctx: _Ctx, doc: dict) -> tuple[Binding, ...]:
    """The bindings [[acls]] declares, in file order (one per operation); ConfigError is one sentence."""
    entries = doc.get("acls", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ctx.fail(("acls",), f"acls = {_show(entries)} must be a list of tables; write each ACL as an "
                                  f"[[acls]] section with principal, topic (or group, transactional_id, "
                                  f"cluster = true) and operations.")
    out: list[Binding] = []
    for n, e in enumerate(entries, 1):
        where = f"[[acls]] #{n}"
        for k in e:
            if k not in KEYS:
                raise ctx.fail(("acls", n), f"{where} has no key {k!r}; its keys are {', '.join(KEYS)}.")
        principal = e.get("principal")
        if isinstance(principal, str) and ":" not in principal and principal:
            principal = f"User:{principal}"
        if not isinstance(principal, str) or not principal.startswith("User:") or not principal[5:] \
                or any(c.isspace() for c in principal):
            # SASL logins are User:NAME (Kafka's principals are case-sensitive): another never matches
            raise ctx.fail(("acls", n, "principal"), f'{where} needs principal = "User:NAME" (or "NAME", or "User:*" for every '
                                      f"login), not {_show(e.get('principal'))}.")
        named = [k for k in RESOURCES if k in e]
        if len(named) != 1:
            raise ctx.fail(("acls", n), f"{where} must name one resource: topic, group, transactional_id or "
                                      f"cluster = true ({'none' if not named else ' and '.join(named)} given).")
        kind = named[0]
        if kind == "cluster":
            if e["cluster"] is not True:
                raise ctx.fail(("acls", n), f"{where} cluster = {_show(e['cluster'])} must be true (the ACL is on "
                                          f"the cluster).")
            name = CLUSTER_NAME
        else:
            name = e[kind]
            if not isinstance(name, str) or not name:
                raise ctx.fail(("acls", n), f'{where} {kind} = {_show(name)} must be a name in quotes, or "*" '
                                          f"for every {kind.replace('_', ' ')}.")
        pattern = _choice(ctx, n, "pattern", e.get("pattern", "literal"), PATTERNS)
        if kind == "cluster" and pattern != LITERAL:
            raise ctx.fail(("acls", n), f"{where}: the cluster takes no pattern; leave pattern out.")
        ops = e.get("operations")
        ops = [ops] if isinstance(ops, str) else ops
        if not isinstance(ops, list) or not ops:
            raise ctx.fail(("acls", n, "operations"), f'{where} needs operations = ["read", ...] (any of {", ".join(OPERATIONS)}).')
        permission = _choice(ctx, n, "permission", e.get("permission", "allow"), PERMISSIONS)
        host = e.get("host", "*")
        if host != "*":
            try:   # Kafka matches the client's IP address: a host name never matches
                ipaddress.ip_address(host)
            except (TypeError, ValueError):
                raise ctx.fail(("acls", n, "host"), f'{where} host = {_show(host)} must be "*" or one IP address, e.g. '
                                          f'"127.0.0.1".') from None
        for op in ops:
            out.append((RESOURCES[kind], name, pattern, principal, host,
                        _choice(ctx, n, "operations", op, OPERATIONS), permission))
    return tuple(dict.fromkeys(out))


__all__ = ["Binding", "ConfigError", "parse_acls"]
