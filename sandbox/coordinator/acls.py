"""ACLs (KIP-11, KIP-290 prefixed patterns) as Kafka's controller and StandardAuthorizer keep them,
pure: CreateAcls and DeleteAcls checked into journal records (AclApis, AclControlManager), what
DescribeAcls lists (AclBindingFilter.matches), and an index over the bindings that answers
"may this principal do this" by StandardAuthorizerData's rules (super users, DENY first, implied
DESCRIBE and DESCRIBE_CONFIGS, `allow.everyone.if.no.acl.found`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sandbox.protocol.errors import INVALID_REQUEST, NONE, UNKNOWN_SERVER_ERROR

# Kafka's wire codes; 0 is UNKNOWN on every axis.
RES_ANY, TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER = 1, 2, 3, 4, 5, 6, 7
PAT_ANY, MATCH, LITERAL, PREFIXED = 1, 2, 3, 4
OP_ANY, ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION = 1, 2, 3, 4, 5, 6, 7, 8, 9
DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS = 10, 11, 12, 13, 14
PERM_ANY, DENY, ALLOW = 1, 2, 3

CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
ANONYMOUS = "User:ANONYMOUS"

RESOURCE_TYPES = {RES_ANY: "ANY", TOPIC: "TOPIC", GROUP: "GROUP", CLUSTER: "CLUSTER",
                  TRANSACTIONAL_ID: "TRANSACTIONAL_ID", DELEGATION_TOKEN: "DELEGATION_TOKEN", USER: "USER"}
PATTERN_TYPES = {PAT_ANY: "ANY", MATCH: "MATCH", LITERAL: "LITERAL", PREFIXED: "PREFIXED"}
OPERATIONS = {OP_ANY: "ANY", ALL: "ALL", READ: "READ", WRITE: "WRITE", CREATE: "CREATE", DELETE: "DELETE",
              ALTER: "ALTER", DESCRIBE: "DESCRIBE", CLUSTER_ACTION: "CLUSTER_ACTION",
              DESCRIBE_CONFIGS: "DESCRIBE_CONFIGS", ALTER_CONFIGS: "ALTER_CONFIGS",
              IDEMPOTENT_WRITE: "IDEMPOTENT_WRITE", CREATE_TOKENS: "CREATE_TOKENS", DESCRIBE_TOKENS: "DESCRIBE_TOKENS"}
PERMISSIONS = {PERM_ANY: "ANY", DENY: "DENY", ALLOW: "ALLOW"}

# AclEntry.supportedOperations: what authorized_operations reports per resource type (KIP-430).
SUPPORTED_OPERATIONS = {
    TOPIC: (READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS),
    GROUP: (READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS),
    CLUSTER: (CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE),
    TRANSACTIONAL_ID: (DESCRIBE, WRITE),
    DELEGATION_TOKEN: (DESCRIBE,),
    USER: (CREATE_TOKENS, DESCRIBE_TOKENS),
}
# An ALLOW for one of these grants DESCRIBE / DESCRIBE_CONFIGS too (StandardAuthorizerData).
IMPLIES_DESCRIBE = frozenset((DESCRIBE, READ, WRITE, DELETE, ALTER))
IMPLIES_DESCRIBE_CONFIGS = frozenset((DESCRIBE_CONFIGS, ALTER_CONFIGS))


@dataclass(frozen=True, order=True)
class Binding:
    """An AclBinding: a resource pattern and an access control entry."""
    resource_type: int
    name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission: int

    def to_json(self) -> list:
        return [self.resource_type, self.name, self.pattern_type, self.principal, self.host, self.operation,
                self.permission]

    @classmethod
    def from_json(cls, v: Any) -> Binding:
        rt, name, pt, principal, host, op, perm = v
        return cls(int(rt), str(name), int(pt), str(principal), str(host), int(op), int(perm))


@dataclass(frozen=True)
class Filter:
    """An AclBindingFilter: None means any name, principal or host; the ANY codes any type."""
    resource_type: int
    name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission: int

    def matches(self, b: Binding) -> bool:
        """ResourcePatternFilter.matches and AccessControlEntryFilter.matches."""
        if self.resource_type != RES_ANY and self.resource_type != b.resource_type:
            return False
        pt = self.pattern_type
        if pt != PAT_ANY and pt != MATCH and pt != b.pattern_type:
            return False
        if self.name is not None:
            if pt == PAT_ANY or pt == b.pattern_type:
                if self.name != b.name:
                    return False
            elif b.pattern_type == LITERAL:   # MATCH: the patterns that would match the name
                if self.name != b.name and b.name != WILDCARD:
                    return False
            elif b.pattern_type == PREFIXED:
                if not self.name.startswith(b.name):
                    return False
            else:
                return False
        if self.principal is not None and self.principal != b.principal:
            return False
        if self.host is not None and self.host != b.host:
            return False
        if self.operation != OP_ANY and self.operation != b.operation:
            return False
        return self.permission == PERM_ANY or self.permission == b.permission


Acls = dict[Binding, None]   # an insertion-ordered set
CreateResult = tuple[int, str | None]
DeleteResult = tuple[int, str | None, list[Binding]]


def _has_unknown(items: Iterable[Binding | Filter]) -> bool:
    """A wire UNKNOWN (0) anywhere: Kafka's request constructors refuse it while parsing."""
    return any(0 in (x.resource_type, x.pattern_type, x.operation, x.permission) for x in items)


def _check_new(b: Binding) -> str | None:
    """AclApis.handleCreateAcls, then AclControlManager.validateNewAcl: the refusal message, if any."""
    if b.resource_type == CLUSTER and b.name != CLUSTER_NAME:
        return "The only valid name for the CLUSTER resource is " + CLUSTER_NAME
    if not b.name:
        return "Invalid empty resource name"
    if b.resource_type not in RESOURCE_TYPES or b.resource_type == RES_ANY:
        return "Invalid resourceType " + RESOURCE_TYPES.get(b.resource_type, "UNKNOWN")
    if b.pattern_type not in (LITERAL, PREFIXED):
        return "Invalid patternType " + PATTERN_TYPES.get(b.pattern_type, "UNKNOWN")
    if b.operation not in OPERATIONS or b.operation == OP_ANY:
        return "Invalid operation " + OPERATIONS.get(b.operation, "UNKNOWN")
    if b.permission not in (DENY, ALLOW):
        return "Invalid permissionType " + PERMISSIONS.get(b.permission, "UNKNOWN")
    if ":" not in b.principal:
        return (f"Could not parse principal from `{b.principal}` (no colon is present separating the "
                "principal type from the principal name)")
    return None


def creations(store: Acls, bindings: list[Binding]) -> tuple[list[dict], list[CreateResult]]:
    """CreateAcls: the records and one (error code, message) per binding, in order. As in Kafka, a
    binding that already exists (or is named twice) succeeds with one record at most, and a request
    with an UNKNOWN (0) element, or an ANY or MATCH one no binding can hold, fails whole with
    UNKNOWN_SERVER_ERROR (Kafka closes the connection on UNKNOWN, throws building the binding on the rest)."""
    if _has_unknown(bindings) or any(
            b.resource_type == RES_ANY or b.pattern_type in (PAT_ANY, MATCH) or b.operation == OP_ANY
            or b.permission == PERM_ANY for b in bindings):
        return [], [(UNKNOWN_SERVER_ERROR, None)] * len(bindings)
    new: dict[Binding, None] = {}
    results: list[CreateResult] = []
    for b in bindings:
        message = _check_new(b)
        if message is not None:
            results.append((INVALID_REQUEST, message))
            continue
        if b not in store:
            new[b] = None
        results.append((NONE, None))
    records = [{"type": "acl", "add": [b.to_json() for b in new]}] if new else []
    return records, results


def _check_filter(f: Filter) -> str | None:
    """AclControlManager.validateFilter: codes Kafka does not know are UNKNOWN."""
    if f.resource_type not in RESOURCE_TYPES or f.pattern_type not in PATTERN_TYPES:
        return "Unknown patternFilter."
    if f.operation not in OPERATIONS or f.permission not in PERMISSIONS:
        return "Unknown entryFilter."
    return None


def deletions(store: Acls, filters: list[Filter]) -> tuple[list[dict], list[DeleteResult]]:
    """DeleteAcls: the records and, per filter, (error code, message, the bindings it matched). A
    binding two filters match is removed once and listed under both, as AclControlManager does; an
    UNKNOWN (0) element fails the request whole (Kafka refuses it while parsing)."""
    if _has_unknown(filters):
        return [], [(UNKNOWN_SERVER_ERROR, None, [])] * len(filters)
    removed: dict[Binding, None] = {}
    results: list[DeleteResult] = []
    for f in filters:
        message = _check_filter(f)
        if message is not None:
            results.append((INVALID_REQUEST, message, []))
            continue
        matched = [b for b in store if f.matches(b)]
        removed.update(dict.fromkeys(matched))
        results.append((NONE, None, matched))
    records = [{"type": "acl", "remove": [b.to_json() for b in removed]}] if removed else []
    return records, results


def described(store: Acls, f: Filter) -> tuple[int, str | None, list[Binding]]:
    """DescribeAcls: (error code, message, the bindings the filter matches). Unknown codes other
    than 0 match nothing, as in Kafka; an UNKNOWN (0) element fails the request."""
    if _has_unknown((f,)):
        return UNKNOWN_SERVER_ERROR, None, []
    return NONE, None, [b for b in store if f.matches(b)]


def apply(store: Acls, record: Mapping[str, Any]) -> None:
    """Applies a record's "add" and "remove" lists; applying one twice changes nothing."""
    for v in record.get("add") or ():
        store[Binding.from_json(v)] = None
    for v in record.get("remove") or ():
        store.pop(Binding.from_json(v), None)


def to_json(store: Acls) -> list:
    return [b.to_json() for b in store]


def from_json(v: Iterable[Any] | None) -> Acls:
    return {Binding.from_json(x): None for x in (v or ())}


_Entry = tuple[str, str, int, int]   # principal, host, operation, permission


class Authorizer:
    """StandardAuthorizer's decisions over one version of the store, indexed by resource type:
    literal names in a dict, prefixes in a dict probed at each prefix length the type has."""

    def __init__(self, store: Acls, super_users: Iterable[str] = (), allow_if_no_acl: bool = True) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._literal: dict[int, dict[str, list[_Entry]]] = {}
        self._prefixed: dict[int, dict[str, list[_Entry]]] = {}
        for b in store:
            index = self._literal if b.pattern_type == LITERAL else self._prefixed
            entry = (b.principal, b.host, b.operation, b.permission)
            index.setdefault(b.resource_type, {}).setdefault(b.name, []).append(entry)
        self._lengths = {rt: sorted({len(p) for p in prefixes}) for rt, prefixes in self._prefixed.items()}
        self._cache: dict[tuple[str, str, int, int, str], bool] = {}

    def _entries(self, resource_type: int, name: str) -> list[list[_Entry]]:
        """The ACL lists whose pattern matches the resource: its literal name, the literal "*",
        and every prefix of the name that has PREFIXED ACLs."""
        found = []
        literal = self._literal.get(resource_type)
        if literal:
            for key in (name, WILDCARD) if name != WILDCARD else (name,):
                entries = literal.get(key)
                if entries:
                    found.append(entries)
        prefixed = self._prefixed.get(resource_type)
        if prefixed:
            for n in self._lengths[resource_type]:
                if n > len(name):
                    break
                entries = prefixed.get(name[:n])
                if entries:
                    found.append(entries)
        return found

    def _decide(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        lists = self._entries(resource_type, name)
        if not lists:
            return self.allow_if_no_acl
        allowed = False
        for entries in lists:
            for p, h, op, perm in entries:
                if (p != principal and p != WILDCARD_PRINCIPAL) or (h != WILDCARD and h != host):
                    continue
                if perm == DENY:
                    if op == operation or op == ALL:
                        return False
                elif not allowed:
                    allowed = (op == operation or op == ALL
                               or (operation == DESCRIBE and op in IMPLIES_DESCRIBE)
                               or (operation == DESCRIBE_CONFIGS and op in IMPLIES_DESCRIBE_CONFIGS))
        return allowed

    def allowed(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> bool:
        """Whether `principal` connecting from `host` may do `operation` on the resource (a literal name)."""
        if principal in self.super_users:
            return True
        key = (principal, host, operation, resource_type, name)
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= 100_000:
                self._cache.clear()
            hit = self._cache[key] = self._decide(principal, host, operation, resource_type, name)
        return hit

    def allowed_on_some(self, principal: str, host: str, operation: int, resource_type: int) -> bool:
        """Kafka's Authorizer.authorizeByResourceType: whether some resource of the type may be
        operated on (an idempotent producer's WRITE on any topic, KIP-679): a resource no ACL names
        ("hardcode", as Kafka asks), a wildcard ALLOW, or an ALLOW pattern no DENY dominates."""
        if self.allowed(principal, host, operation, resource_type, "hardcode"):
            return True
        deny_literal: set[str] = set()
        deny_prefixed: set[str] = set()
        allows: list[tuple[int, str]] = []
        wildcard_allow = False   # as Kafka: noted, and decided once no wildcard DENY can follow
        for index, pattern in ((self._literal, LITERAL), (self._prefixed, PREFIXED)):
            for name, entries in index.get(resource_type, {}).items():
                for p, h, op, perm in entries:
                    if p not in (principal, WILDCARD_PRINCIPAL) or h not in (host, WILDCARD) or op not in (operation, ALL):
                        continue
                    if perm == DENY:
                        if pattern == LITERAL and name == WILDCARD:
                            return False
                        (deny_literal if pattern == LITERAL else deny_prefixed).add(name)
                    elif perm == ALLOW:
                        if pattern == LITERAL and name == WILDCARD:
                            wildcard_allow = True
                        else:
                            allows.append((pattern, name))
        if wildcard_allow:
            return True
        for pattern, name in allows:
            if pattern == LITERAL and name in deny_literal:
                continue
            if not any(name[:n] in deny_prefixed for n in range(1, len(name) + 1)):
                return True
        return False

    def why_denied(self, principal: str, host: str, operation: int, resource_type: int, name: str) -> str:
        """In words, why `allowed` said no (for `sandbox status`; Kafka tells the client only the error)."""
        lists = self._entries(resource_type, name)
        if not lists:
            return "no ACL names it and allow.everyone.if.no.acl.found is false"
        for entries in lists:
            for p, h, op, perm in entries:
                if perm == DENY and (op == operation or op == ALL) and p in (principal, WILDCARD_PRINCIPAL) \
                        and h in (host, WILDCARD):
                    return f"an ACL denies it ({p} DENY {OPERATIONS.get(op, op)} from host {h})"
        return f"its ACLs allow {OPERATIONS.get(operation, operation)} to others only"

    def authorized_operations(self, principal: str, host: str, resource_type: int, name: str) -> int:
        """KIP-430's bit field: bit i set for each operation i of the resource type that is allowed."""
        bits = 0
        for op in SUPPORTED_OPERATIONS.get(resource_type, ()):
            if self.allowed(principal, host, op, resource_type, name):
                bits |= 1 << op
        return bits


def bindings_of(request: Any) -> list[Binding]:
    """The bindings of a CreateAcls request (v1+)."""
    return [Binding(int(c.resource_type), c.resource_name, int(c.resource_pattern_type), c.principal, c.host,
                    int(c.operation), int(c.permission_type)) for c in request.creations]


def _filter(f: Any) -> Filter:
    return Filter(int(f.resource_type_filter), f.resource_name_filter, int(f.pattern_type_filter), f.principal_filter,
                  f.host_filter, int(f.operation), int(f.permission_type))


def filters_of(request: Any) -> list[Filter]:
    """The filters of a DeleteAcls request (v1+)."""
    return [_filter(f) for f in request.filters]


def filter_of(request: Any) -> Filter:
    """The filter of a DescribeAcls request (v1+), whose fields are the request's own."""
    return _filter(request)


def create_response(results: list[CreateResult]) -> dict:
    return {"throttle_time": 0, "results": [{"error_code": c, "error_message": m} for c, m in results]}


def _acl(b: Binding) -> dict:
    return {"principal": b.principal, "host": b.host, "operation": b.operation, "permission_type": b.permission}


def delete_response(results: list[DeleteResult]) -> dict:
    return {"throttle_time": 0, "filter_results": [
        {"error_code": c, "error_message": m, "matching_acls": [
            {"error_code": NONE, "error_message": None, "resource_type": b.resource_type, "resource_name": b.name,
             "pattern_type": b.pattern_type, **_acl(b)} for b in bindings]}
        for c, m, bindings in results]}


def describe_response(code: int, message: str | None, bindings: list[Binding]) -> dict:
    """DescribeAcls's answer: the bindings grouped by resource pattern, in the order first seen."""
    resources: dict[tuple[int, str, int], list[dict]] = {}
    for b in bindings:
        resources.setdefault((b.resource_type, b.name, b.pattern_type), []).append(_acl(b))
    return {"throttle_time": 0, "error_code": code, "error_message": message, "resources": [
        {"resource_type": rt, "resource_name": name, "pattern_type": pt, "acls": acls}
        for (rt, name, pt), acls in resources.items()]}
