"""Client quotas (KIP-546) as Kafka's controller keeps them, pure: entities of user / client-id / ip
(a None name is the default entity), alterations validated into journal records, and
DescribeClientQuotas' filter (match types exact / default / any, strict). Stored and described
only: nothing here throttles a client."""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Mapping, Sequence

from sandbox.protocol.errors import INVALID_REQUEST, NONE, UNSUPPORTED_VERSION
from .model import CoordinatorError

USER, CLIENT_ID, IP = "user", "client-id", "ip"
MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2
LONG_KEYS = frozenset({"producer_byte_rate", "consumer_byte_rate"})
CLIENT_KEYS = LONG_KEYS | {"request_percentage", "controller_mutation_rate"}
IP_KEYS = frozenset({"connection_creation_rate"})

Entity = tuple[tuple[str, Any], ...]        # (type, name) pairs sorted by type; name None = default
Quotas = dict[Entity, dict[str, float]]


def entity_of(pairs: Iterable[Sequence[Any]]) -> Entity:
    return tuple(sorted(((str(t), n) for t, n in pairs), key=lambda p: p[0]))


def _show(entity: Entity) -> str:
    return "(" + ", ".join(f"{t}={'<default>' if n is None else n}" for t, n in entity) + ")"


def _valid_entity(pairs: Sequence[Sequence[Any]]) -> Entity:
    if not pairs:
        raise CoordinatorError(INVALID_REQUEST, "Invalid empty client quota entity")
    seen: dict[str, Any] = {}
    for etype, name in pairs:
        if etype in seen:
            raise CoordinatorError(INVALID_REQUEST, f"Invalid empty client quota entity, duplicate entity entry {etype}")
        if etype not in (USER, CLIENT_ID, IP):
            raise CoordinatorError(INVALID_REQUEST, f"Unhandled client quota entity type: {etype}")
        if name is not None and name == "":
            raise CoordinatorError(INVALID_REQUEST, f"Empty {etype} not supported")
        seen[etype] = name
    if IP in seen:
        if len(seen) > 1:
            raise CoordinatorError(INVALID_REQUEST, "Invalid empty client quota entity")
        if seen[IP] is not None:
            try:
                ipaddress.ip_address(seen[IP])
            except ValueError:
                raise CoordinatorError(INVALID_REQUEST, f"{seen[IP]} is not a valid IP or resolvable host.") from None
    return entity_of(seen.items())


def _value_error(key: str, value: float, allowed: frozenset[str]) -> str | None:
    if key not in allowed:
        return f"Invalid configuration key {key}"
    if key in LONG_KEYS or key in IP_KEYS:
        if abs(round(value) - value) > 1e-6:
            return f"Configuration {key} must be a {'Long' if key in LONG_KEYS else 'Integer'} value"
    return None


def _entity_records(current: Mapping[str, float], entity: Entity,
                    ops: Sequence[tuple[str, float | None]]) -> list[dict]:
    allowed = IP_KEYS if entity[0][0] == IP and len(entity) == 1 else CLIENT_KEYS
    wanted: dict[str, float | None] = {}
    for key, value in ops:
        if key in wanted:
            raise CoordinatorError(INVALID_REQUEST, f"Duplicate quota key {key} not updating quota for this "
                                                    f"entity {_show(entity)}")
        wanted[key] = value
    records = []
    pairs = [[t, n] for t, n in entity]
    for key, value in wanted.items():
        if value is None:
            if key in current:
                records.append({"type": "client-quota", "entity": pairs, "key": key, "remove": True})
            continue
        problem = _value_error(key, value, allowed)
        if problem is not None:
            raise CoordinatorError(INVALID_REQUEST, problem)
        if current.get(key) != value:
            records.append({"type": "client-quota", "entity": pairs, "key": key, "value": float(value)})
    return records


def alterations(quotas: Quotas, entries: Sequence[tuple[Sequence[Sequence[Any]], Sequence[tuple[str, float | None]]]]
                ) -> tuple[list[dict], list[tuple[int, str | None]]]:
    """Journal records for AlterClientQuotas entries ((type, name) pairs, [(key, value or None to
    remove)]) and one (error code, message) per entry. A refused entry changes nothing."""
    records: list[dict] = []
    results: list[tuple[int, str | None]] = []
    seen: set[Entity] = set()
    for pairs, ops in entries:
        try:
            entity = _valid_entity(pairs)
            if entity in seen:
                raise CoordinatorError(INVALID_REQUEST, f"Ignoring duplicate entity {_show(entity)}")
            seen.add(entity)
            records += _entity_records(quotas.get(entity, {}), entity, ops)
        except CoordinatorError as e:
            results.append((e.error_code, e.message))
            continue
        results.append((NONE, None))
    return records, results


def apply(quotas: Quotas, record: Mapping[str, Any]) -> None:
    entity = entity_of(record["entity"])
    values = quotas.setdefault(entity, {})
    if record.get("remove"):
        values.pop(str(record["key"]), None)
        if not values:
            del quotas[entity]
    else:
        values[str(record["key"])] = float(record["value"])


def to_json(quotas: Quotas) -> list[dict]:
    return [{"entity": [[t, n] for t, n in e], "values": dict(sorted(v.items()))} for e, v in sorted(
        quotas.items(), key=lambda kv: [(t, "" if n is None else "\0" + n) for t, n in kv[0]])]


def from_json(doc: Iterable[Mapping[str, Any]] | None) -> Quotas:
    return {entity_of(e["entity"]): {str(k): float(v) for k, v in e["values"].items()} for e in doc or ()}


def describe(quotas: Quotas, components: Sequence[tuple[str, int, str | None]], strict: bool) -> list[tuple[Entity, dict]]:
    """The entities DescribeClientQuotas' filter selects, as Kafka's ClientQuotasImage.describe."""
    exact: dict[str, str | None] = {}
    any_of: set[str] = set()
    for etype, match_type, match in components:
        if not etype:
            raise CoordinatorError(INVALID_REQUEST, "Invalid empty entity type.")
        if etype in exact or etype in any_of:
            raise CoordinatorError(INVALID_REQUEST, f"Entity type {etype} cannot appear more than once in the filter.")
        if etype not in (USER, CLIENT_ID, IP):
            raise CoordinatorError(UNSUPPORTED_VERSION, f"Unsupported entity type {etype}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise CoordinatorError(INVALID_REQUEST, "Request specified MATCH_TYPE_EXACT, but set match string to null.")
            exact[etype] = match
        elif match_type == MATCH_DEFAULT:
            if match is not None:
                raise CoordinatorError(INVALID_REQUEST, "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
            exact[etype] = None
        elif match_type == MATCH_ANY:
            if match is not None:
                raise CoordinatorError(INVALID_REQUEST, "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
            any_of.add(etype)
        else:
            raise CoordinatorError(INVALID_REQUEST, f"Unknown match type {match_type}")
    if (IP in exact or IP in any_of) and ({USER, CLIENT_ID} & (set(exact) | any_of)):
        raise CoordinatorError(INVALID_REQUEST, "Invalid entity filter component combination. IP filter component "
                                                "should not be used with user or clientId filter component.")
    out = []
    for entity, values in quotas.items():
        names = dict(entity)
        if any(t not in names or names[t] != n for t, n in exact.items()):
            continue
        if any(t not in names for t in any_of):
            continue
        if strict and len(names) != len(exact) + len(any_of):
            continue
        if strict and not exact and not any_of:
            continue
        out.append((entity, dict(values)))
    return out


# ---- requests and responses (the broker's and the coordinator's handlers share these) -------------

def entries_of(request) -> list[tuple[list[tuple[str, Any]], list[tuple[str, float | None]]]]:
    """AlterClientQuotas request entries as alterations() takes them."""
    return [([(e.entity_type, e.entity_name) for e in entry.entity],
             [(op.key, None if op.remove else float(op.value)) for op in entry.ops]) for entry in request.entries]


def alter_response(request, results: Sequence[tuple[int, str | None]]) -> dict:
    return {"throttle_time": 0, "entries": [
        {"error_code": code, "error_message": message,
         "entity": [{"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity]}
        for entry, (code, message) in zip(request.entries, results)]}


def describe_response(quotas: Quotas, request) -> dict:
    components = [(c.entity_type, c.match_type, c.match) for c in request.components]
    try:
        found = describe(quotas, components, request.strict)
    except CoordinatorError as e:
        return {"throttle_time": 0, "error_code": e.error_code, "error_message": e.message, "entries": None}
    return {"throttle_time": 0, "error_code": NONE, "error_message": None, "entries": [
        {"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
         "values": [{"key": k, "value": v} for k, v in sorted(values.items())]} for entity, values in found]}
