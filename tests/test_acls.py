"""ACLs (sandbox/coordinator/acls.py): CreateAcls and DeleteAcls checked as Kafka's AclApis and
AclControlManager check them, DescribeAcls filters, the journal form, and the authorizer's index
against a linear scan of StandardAuthorizerData's rules."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.coordinator import acls as A
from sandbox.coordinator.acls import Binding, Filter
from sandbox.protocol import errors as E
from sandbox.protocol.build import build


def topic(name: str = "orders", principal: str = "User:alice", op: int = A.READ, perm: int = A.ALLOW,
          pattern: int = A.LITERAL, host: str = "*", rt: int = A.TOPIC) -> Binding:
    return Binding(rt, name, pattern, principal, host, op, perm)


def any_filter(**changes) -> Filter:
    return dataclasses.replace(Filter(A.RES_ANY, None, A.PAT_ANY, None, None, A.OP_ANY, A.PERM_ANY), **changes)


def store_of(*bindings: Binding) -> A.Acls:
    store: A.Acls = {}
    for b in bindings:
        records, results = A.creations(store, [b])
        assert results == [(E.NONE, None)]
        for r in records:
            A.apply(store, r)
    return store


# --- CreateAcls -------------------------------------------------------------------------------

def test_creation_journals_new_bindings_in_one_record():
    store: A.Acls = {}
    a, b = topic(), topic("pay", pattern=A.PREFIXED, op=A.WRITE, perm=A.DENY)
    records, results = A.creations(store, [a, b])
    assert results == [(E.NONE, None), (E.NONE, None)]
    assert records == [{"type": "acl", "add": [a.to_json(), b.to_json()]}]
    assert store == {}   # pure: the caller applies the records
    A.apply(store, records[0])
    assert list(store) == [a, b]


def test_duplicate_creation_succeeds_without_a_record():
    store = store_of(topic())
    assert A.creations(store, [topic()]) == ([], [(E.NONE, None)])
    records, results = A.creations({}, [topic(), topic()])   # named twice in one request
    assert results == [(E.NONE, None)] * 2
    assert records == [{"type": "acl", "add": [topic().to_json()]}]


@pytest.mark.parametrize("binding, message", [
    (topic("other", rt=A.CLUSTER), "The only valid name for the CLUSTER resource is kafka-cluster"),
    (topic("", rt=A.CLUSTER), "The only valid name for the CLUSTER resource is kafka-cluster"),
    (topic(""), "Invalid empty resource name"),
    (topic(rt=8), "Invalid resourceType UNKNOWN"),
    (topic(rt=-3), "Invalid resourceType UNKNOWN"),
    (topic(pattern=5), "Invalid patternType UNKNOWN"),
    (topic(op=15), "Invalid operation UNKNOWN"),
    (topic(perm=4), "Invalid permissionType UNKNOWN"),
    (topic(principal="alice"), ("Could not parse principal from `alice` (no colon is present separating the "
                                "principal type from the principal name)")),
    (topic(principal=""), ("Could not parse principal from `` (no colon is present separating the "
                           "principal type from the principal name)")),
])
def test_creation_refusals_are_per_binding_invalid_request(binding, message):
    good = topic("fine")
    records, results = A.creations({}, [good, binding])
    assert results == [(E.NONE, None), (E.INVALID_REQUEST, message)]
    assert records == [{"type": "acl", "add": [good.to_json()]}]


def test_creation_accepts_what_kafka_accepts():
    odd = [topic(A.CLUSTER_NAME, rt=A.CLUSTER, op=A.READ),           # an operation that does not apply
           topic(A.CLUSTER_NAME, rt=A.CLUSTER, pattern=A.PREFIXED),
           topic("*", principal="User:*", host="10.0.0.1"),
           topic("t", principal="Group:ops:x", host=""),
           topic("alice", rt=A.USER, op=A.CREATE_TOKENS),
           topic("tok", rt=A.DELEGATION_TOKEN, op=A.ALL, perm=A.DENY)]
    records, results = A.creations({}, odd)
    assert results == [(E.NONE, None)] * len(odd)
    assert records[0]["add"] == [b.to_json() for b in odd]


@pytest.mark.parametrize("bad", [
    topic(rt=A.RES_ANY), topic(pattern=A.PAT_ANY), topic(pattern=A.MATCH), topic(op=A.OP_ANY),
    topic(perm=A.PERM_ANY), topic(rt=0), topic(pattern=0), topic(op=0), topic(perm=0),
])
def test_a_binding_kafka_cannot_build_fails_the_whole_request(bad):
    records, results = A.creations({}, [topic("fine"), bad])
    assert records == []
    assert results == [(E.UNKNOWN_SERVER_ERROR, None)] * 2


# --- DeleteAcls and DescribeAcls ----------------------------------------------------------------

LIT = topic("orders")
LIT_BOB = topic("orders", principal="User:bob", op=A.WRITE)
STAR = topic("*", op=A.DESCRIBE)
PRE = topic("ord", pattern=A.PREFIXED)
PRE_OTHER = topic("pay", pattern=A.PREFIXED)
GRP = topic("orders", rt=A.GROUP)
ALL_OF = (LIT, LIT_BOB, STAR, PRE, PRE_OTHER, GRP)


@pytest.mark.parametrize("f, expected", [
    (any_filter(), list(ALL_OF)),
    (any_filter(resource_type=A.TOPIC, name="orders", pattern_type=A.LITERAL), [LIT, LIT_BOB]),
    (any_filter(name="orders"), [LIT, LIT_BOB, GRP]),                            # ANY: exact names
    (any_filter(pattern_type=A.PREFIXED), [PRE, PRE_OTHER]),
    (any_filter(name="ord", pattern_type=A.PREFIXED), [PRE]),
    (any_filter(resource_type=A.TOPIC, name="orders", pattern_type=A.MATCH), [LIT, LIT_BOB, STAR, PRE]),
    (any_filter(resource_type=A.TOPIC, name="or", pattern_type=A.MATCH), [STAR]),
    (any_filter(pattern_type=A.MATCH), list(ALL_OF)),                            # MATCH, no name
    (any_filter(name="*", pattern_type=A.LITERAL), [STAR]),                     # "*" only matches itself
    (any_filter(principal="User:bob"), [LIT_BOB]),
    (any_filter(principal="User:*"), []),                                       # no wildcard in filters
    (any_filter(host="*", operation=A.DESCRIBE), [STAR]),
    (any_filter(host="10.0.0.1"), []),
    (any_filter(permission=A.DENY), []),
    (any_filter(resource_type=A.GROUP, permission=A.ALLOW), [GRP]),
    (any_filter(resource_type=9), []),                                          # unknown codes match nothing
    (any_filter(operation=99), []),
])
def test_describe_filters(f, expected):
    store = store_of(*ALL_OF)
    assert A.described(store, f) == (E.NONE, None, expected)


def test_describe_with_an_unknown_element_fails():
    assert A.described(store_of(LIT), any_filter(pattern_type=0)) == (E.UNKNOWN_SERVER_ERROR, None, [])


def test_delete_by_literal_prefixed_match_and_any():
    store = store_of(*ALL_OF)
    records, results = A.deletions(store, [any_filter(resource_type=A.TOPIC, name="orders",
                                                      pattern_type=A.LITERAL, principal="User:bob")])
    assert results == [(E.NONE, None, [LIT_BOB])]
    assert records == [{"type": "acl", "remove": [LIT_BOB.to_json()]}]
    A.apply(store, records[0])
    records, results = A.deletions(store, [any_filter(pattern_type=A.PREFIXED, name="pay")])
    assert results == [(E.NONE, None, [PRE_OTHER])]
    A.apply(store, records[0])
    records, results = A.deletions(store, [any_filter(resource_type=A.TOPIC, name="orders", pattern_type=A.MATCH)])
    assert results == [(E.NONE, None, [LIT, STAR, PRE])]
    A.apply(store, records[0])
    assert list(store) == [GRP]
    records, results = A.deletions(store, [any_filter()])
    assert results == [(E.NONE, None, [GRP])]
    A.apply(store, records[0])
    assert store == {}
    assert A.deletions(store, [any_filter()]) == ([], [(E.NONE, None, [])])


def test_a_binding_two_filters_match_is_removed_once_and_listed_under_both():
    store = store_of(*ALL_OF)
    records, results = A.deletions(store, [any_filter(name="orders"), any_filter(principal="User:bob"),
                                           any_filter(name="nothing")])
    assert results == [(E.NONE, None, [LIT, LIT_BOB, GRP]), (E.NONE, None, [LIT_BOB]), (E.NONE, None, [])]
    assert records == [{"type": "acl", "remove": [LIT.to_json(), LIT_BOB.to_json(), GRP.to_json()]}]


def test_invalid_delete_filters():
    store = store_of(*ALL_OF)
    records, results = A.deletions(store, [any_filter(resource_type=9), any_filter(pattern_type=7),
                                           any_filter(operation=15), any_filter(permission=5),
                                           any_filter(name="orders", pattern_type=A.LITERAL)])
    assert results == [(E.INVALID_REQUEST, "Unknown patternFilter.", []),
                       (E.INVALID_REQUEST, "Unknown patternFilter.", []),
                       (E.INVALID_REQUEST, "Unknown entryFilter.", []),
                       (E.INVALID_REQUEST, "Unknown entryFilter.", []),
                       (E.NONE, None, [LIT, LIT_BOB, GRP])]
    assert records == [{"type": "acl", "remove": [LIT.to_json(), LIT_BOB.to_json(), GRP.to_json()]}]
    for field in ("resource_type", "pattern_type", "operation", "permission"):   # UNKNOWN (0): the whole request
        assert A.deletions(store, [any_filter(), any_filter(**{field: 0})]) == (
            [], [(E.UNKNOWN_SERVER_ERROR, None, [])] * 2)


# --- journal form -------------------------------------------------------------------------------

def test_apply_is_idempotent_and_json_round_trips():
    store = store_of(*ALL_OF)
    snapshot = A.to_json(store)
    assert A.from_json(snapshot) == store and list(A.from_json(snapshot)) == list(store)
    assert A.from_json(None) == {}
    again = A.from_json(snapshot)
    A.apply(again, {"type": "acl", "add": [LIT.to_json()]})
    A.apply(again, {"type": "acl", "remove": [topic("absent").to_json()]})
    assert again == store
    A.apply(again, {"type": "acl", "remove": [LIT.to_json()]})
    A.apply(again, {"type": "acl", "remove": [LIT.to_json()]})
    assert LIT not in again and len(again) == len(store) - 1
    assert Binding.from_json(tuple(LIT.to_json())) == LIT
    assert sorted([LIT, PRE]) == [PRE, LIT]   # ordered by resource type, then name


# --- Authorizer -----------------------------------------------------------------------------

def test_super_user_is_always_allowed():
    auth = A.Authorizer(store_of(topic("t", principal="User:*", op=A.ALL, perm=A.DENY)), ["User:admin"], False)
    assert auth.allowed("User:admin", "h", A.WRITE, A.TOPIC, "t")
    assert auth.allowed("User:admin", "h", A.ALTER, A.CLUSTER, A.CLUSTER_NAME)
    assert not auth.allowed("User:alice", "h", A.WRITE, A.TOPIC, "t")
    assert auth.authorized_operations("User:admin", "h", A.GROUP, "g") == sum(
        1 << op for op in (A.READ, A.DESCRIBE, A.DELETE, A.DESCRIBE_CONFIGS, A.ALTER_CONFIGS))


def test_deny_beats_allow():
    auth = A.Authorizer(store_of(topic("t", op=A.ALL), topic("t", op=A.WRITE, perm=A.DENY)))
    assert auth.allowed("User:alice", "h", A.READ, A.TOPIC, "t")
    assert not auth.allowed("User:alice", "h", A.WRITE, A.TOPIC, "t")
    auth = A.Authorizer(store_of(topic("t", op=A.READ), topic("t", principal="User:*", op=A.ALL, perm=A.DENY)))
    assert not auth.allowed("User:alice", "h", A.READ, A.TOPIC, "t")
    # a DENY READ does not deny DESCRIBE (implication only widens ALLOW)
    auth = A.Authorizer(store_of(topic("t", op=A.ALL), topic("t", op=A.READ, perm=A.DENY)))
    assert auth.allowed("User:alice", "h", A.DESCRIBE, A.TOPIC, "t")


def test_wildcard_principal_and_host():
    auth = A.Authorizer(store_of(topic("t", principal="User:*", host="10.0.0.1"),
                                 topic("t", principal="User:bob", op=A.WRITE)))
    assert auth.allowed("User:carol", "10.0.0.1", A.READ, A.TOPIC, "t")
    assert auth.allowed("Group:ops", "10.0.0.1", A.READ, A.TOPIC, "t")   # User:* is any principal
    assert not auth.allowed("User:carol", "10.0.0.2", A.READ, A.TOPIC, "t")
    assert auth.allowed("User:bob", "anywhere", A.WRITE, A.TOPIC, "t")
    assert not auth.allowed("User:carol", "anywhere", A.WRITE, A.TOPIC, "t")
    auth = A.Authorizer(store_of(topic("t", principal="Group:*")))        # only User:* is a wildcard
    assert not auth.allowed("Group:ops", "h", A.READ, A.TOPIC, "t")


@pytest.mark.parametrize("op, implies", [
    (A.READ, {A.READ, A.DESCRIBE}), (A.WRITE, {A.WRITE, A.DESCRIBE}), (A.DELETE, {A.DELETE, A.DESCRIBE}),
    (A.ALTER, {A.ALTER, A.DESCRIBE}), (A.DESCRIBE, {A.DESCRIBE}), (A.CREATE, {A.CREATE}),
    (A.ALTER_CONFIGS, {A.ALTER_CONFIGS, A.DESCRIBE_CONFIGS}), (A.DESCRIBE_CONFIGS, {A.DESCRIBE_CONFIGS}),
    (A.ALL, set(A.SUPPORTED_OPERATIONS[A.TOPIC])),
])
def test_implied_operations(op, implies):
    auth = A.Authorizer(store_of(topic("t", op=op)), allow_if_no_acl=False)
    granted = {o for o in A.SUPPORTED_OPERATIONS[A.TOPIC] if auth.allowed("User:alice", "h", o, A.TOPIC, "t")}
    assert granted == implies
    assert auth.authorized_operations("User:alice", "h", A.TOPIC, "t") == sum(1 << o for o in implies)


def test_prefixed_literal_and_wildcard_patterns():
    auth = A.Authorizer(store_of(topic("orders"), topic("pay", pattern=A.PREFIXED, op=A.WRITE),
                                 topic("*", op=A.DESCRIBE), topic("payments-eu", pattern=A.PREFIXED, op=A.DELETE)),
                        allow_if_no_acl=False)
    assert auth.allowed("User:alice", "h", A.READ, A.TOPIC, "orders")
    assert not auth.allowed("User:alice", "h", A.READ, A.TOPIC, "orders2")      # literal is exact
    assert auth.allowed("User:alice", "h", A.WRITE, A.TOPIC, "pay")              # a prefix of itself
    assert auth.allowed("User:alice", "h", A.WRITE, A.TOPIC, "payments-eu-1")
    assert auth.allowed("User:alice", "h", A.DELETE, A.TOPIC, "payments-eu-1")
    assert not auth.allowed("User:alice", "h", A.DELETE, A.TOPIC, "payments-us")
    assert not auth.allowed("User:alice", "h", A.WRITE, A.TOPIC, "pa")
    assert auth.allowed("User:alice", "h", A.DESCRIBE, A.TOPIC, "anything")      # "*" matches every name
    assert not auth.allowed("User:alice", "h", A.DESCRIBE, A.GROUP, "anything")  # but only its type


def test_allow_if_no_acl_and_a_resource_closed_by_another_principals_acl():
    store = store_of(topic("t", principal="User:bob"))
    for default in (True, False):
        auth = A.Authorizer(store, allow_if_no_acl=default)
        assert auth.allowed("User:alice", "h", A.READ, A.TOPIC, "free") is default
        assert auth.allowed("User:alice", "h", A.READ, A.GROUP, "t") is default
        assert not auth.allowed("User:alice", "h", A.READ, A.TOPIC, "t")     # bob's ACL closes it
        assert not auth.allowed("User:bob", "h", A.WRITE, A.TOPIC, "t")      # so does one for another operation
        assert auth.allowed("User:bob", "h", A.READ, A.TOPIC, "t")
    assert A.Authorizer({}, allow_if_no_acl=True).allowed(A.ANONYMOUS, "h", A.ALTER, A.CLUSTER, A.CLUSTER_NAME)
    assert not A.Authorizer({}, allow_if_no_acl=False).allowed(A.ANONYMOUS, "h", A.ALTER, A.CLUSTER, A.CLUSTER_NAME)


def test_authorized_operations_bits():
    store = store_of(topic(A.CLUSTER_NAME, rt=A.CLUSTER, op=A.ALTER), topic(A.CLUSTER_NAME, rt=A.CLUSTER, op=A.READ),
                     topic("g", rt=A.GROUP, op=A.READ), topic("tx", rt=A.TRANSACTIONAL_ID, op=A.WRITE))
    auth = A.Authorizer(store, allow_if_no_acl=True)
    cluster = auth.authorized_operations("User:alice", "h", A.CLUSTER, A.CLUSTER_NAME)
    assert cluster == (1 << A.ALTER) | (1 << A.DESCRIBE)   # READ does not apply to the cluster
    assert auth.authorized_operations("User:alice", "h", A.GROUP, "g") == (1 << A.READ) | (1 << A.DESCRIBE)
    assert auth.authorized_operations("User:alice", "h", A.TRANSACTIONAL_ID, "tx") == (1 << A.WRITE) | (1 << A.DESCRIBE)
    assert auth.authorized_operations("User:alice", "h", A.TOPIC, "open") == sum(
        1 << op for op in (A.READ, A.WRITE, A.CREATE, A.DELETE, A.ALTER, A.DESCRIBE, A.DESCRIBE_CONFIGS,
                           A.ALTER_CONFIGS))
    assert auth.authorized_operations("User:bob", "h", A.GROUP, "g") == 0
    assert auth.authorized_operations("User:bob", "h", 99, "x") == 0


# --- the index against a linear scan -----------------------------------------------------------

NAMES = ["a", "ab", "abc", "b", "*", ""]
PRINCIPALS = ["User:alice", "User:*", "Group:alice"]
HOSTS = ["h1", "*"]
OPS = list(range(A.ALL, A.DESCRIBE_TOKENS + 1))
TYPES = [A.TOPIC, A.GROUP]

bindings = st.builds(Binding, st.sampled_from(TYPES), st.sampled_from(NAMES[:-1]),
                     st.sampled_from([A.LITERAL, A.PREFIXED]), st.sampled_from(PRINCIPALS), st.sampled_from(HOSTS),
                     st.sampled_from(OPS), st.sampled_from([A.ALLOW, A.DENY]))


def reference(store, super_users, allow_if_no_acl, principal, host, op, rt, name) -> bool:
    """StandardAuthorizerData's rules, one binding at a time."""
    if principal in super_users:
        return True
    applies = [b for b in store if b.resource_type == rt and (
        (b.pattern_type == A.LITERAL and (b.name == name or b.name == "*"))
        or (b.pattern_type == A.PREFIXED and name.startswith(b.name)))]
    if not applies:
        return allow_if_no_acl
    mine = [b for b in applies if b.principal in (principal, "User:*") and b.host in (host, "*")]
    if any(b.permission == A.DENY and b.operation in (op, A.ALL) for b in mine):
        return False
    implied = {A.DESCRIBE: {A.READ, A.WRITE, A.DELETE, A.ALTER}, A.DESCRIBE_CONFIGS: {A.ALTER_CONFIGS}}.get(op, set())
    return any(b.permission == A.ALLOW and (b.operation in (op, A.ALL) or b.operation in implied) for b in mine)


@settings(max_examples=500, deadline=None)
@given(st.lists(bindings, max_size=16), st.sets(st.sampled_from(["User:alice", "User:carol"]), max_size=1),
       st.booleans(),
       st.lists(st.tuples(st.sampled_from(["User:alice", "User:carol", "Group:alice"]),
                          st.sampled_from(["h1", "h2"]), st.sampled_from(OPS[1:]), st.sampled_from(TYPES),
                          st.sampled_from(NAMES + ["abcd", "c"])), min_size=1, max_size=10))
def test_index_agrees_with_a_linear_scan(stored, super_users, allow_if_no_acl, requests):
    store = dict.fromkeys(stored)
    auth = A.Authorizer(store, super_users, allow_if_no_acl)
    for principal, host, op, rt, name in requests:
        want = reference(store, super_users, allow_if_no_acl, principal, host, op, rt, name)
        assert auth.allowed(principal, host, op, rt, name) is want
        assert auth.allowed(principal, host, op, rt, name) is want   # cached
        bits = auth.authorized_operations(principal, host, rt, name)
        assert bits == sum(1 << o for o in A.SUPPORTED_OPERATIONS[rt]
                           if reference(store, super_users, allow_if_no_acl, principal, host, o, rt, name))


# --- kio requests and responses ----------------------------------------------------------------

def test_bindings_of_a_kio_create_acls_request():
    from kio.schema.create_acls.v3.request import AclCreation, CreateAclsRequest
    from kio.static.primitive import i8
    req = CreateAclsRequest(creations=(
        AclCreation(resource_type=i8(2), resource_name="orders", resource_pattern_type=i8(4), principal="User:alice",
                    host="*", operation=i8(3), permission_type=i8(3)),
        AclCreation(resource_type=i8(4), resource_name="kafka-cluster", resource_pattern_type=i8(3),
                    principal="User:bob", host="10.0.0.1", operation=i8(7), permission_type=i8(2))))
    assert A.bindings_of(req) == [Binding(A.TOPIC, "orders", A.PREFIXED, "User:alice", "*", A.READ, A.ALLOW),
                                  Binding(A.CLUSTER, "kafka-cluster", A.LITERAL, "User:bob", "10.0.0.1", A.ALTER,
                                          A.DENY)]


def test_filters_of_a_kio_delete_acls_request():
    from kio.schema.delete_acls.v3.request import DeleteAclsFilter, DeleteAclsRequest
    from kio.static.primitive import i8
    req = DeleteAclsRequest(filters=(
        DeleteAclsFilter(resource_type_filter=i8(1), resource_name_filter=None, pattern_type_filter=i8(1),
                         principal_filter=None, host_filter=None, operation=i8(1), permission_type=i8(1)),
        DeleteAclsFilter(resource_type_filter=i8(2), resource_name_filter="orders", pattern_type_filter=i8(2),
                         principal_filter="User:alice", host_filter="*", operation=i8(3), permission_type=i8(3))))
    assert A.filters_of(req) == [any_filter(),
                                 Filter(A.TOPIC, "orders", A.MATCH, "User:alice", "*", A.READ, A.ALLOW)]


def test_filter_of_a_kio_describe_acls_request():
    from kio.schema.describe_acls.v3.request import DescribeAclsRequest
    from kio.static.primitive import i8
    req = DescribeAclsRequest(resource_type_filter=i8(3), resource_name_filter="g", pattern_type_filter=i8(3),
                              principal_filter=None, host_filter="h", operation=i8(8), permission_type=i8(1))
    assert A.filter_of(req) == Filter(A.GROUP, "g", A.LITERAL, None, "h", A.DESCRIBE, A.PERM_ANY)


def test_responses_build_into_kio_responses():
    from kio.schema.create_acls.v3.response import CreateAclsResponse
    from kio.schema.delete_acls.v3.response import DeleteAclsResponse
    from kio.schema.describe_acls.v3.response import DescribeAclsResponse
    created = build(CreateAclsResponse, A.create_response([(E.NONE, None), (E.INVALID_REQUEST, "no")]))
    assert [(int(r.error_code), r.error_message) for r in created.results] == [
        (E.NONE, None), (E.INVALID_REQUEST, "no")]
    deleted = build(DeleteAclsResponse, A.delete_response([(E.NONE, None, [LIT, PRE]),
                                                           (E.INVALID_REQUEST, "Unknown entryFilter.", [])]))
    first, second = deleted.filter_results
    assert [(m.resource_name, int(m.pattern_type), m.principal, int(m.operation)) for m in first.matching_acls] == [
        ("orders", A.LITERAL, "User:alice", A.READ), ("ord", A.PREFIXED, "User:alice", A.READ)]
    assert int(first.matching_acls[0].error_code) == E.NONE
    assert (int(second.error_code), second.error_message, second.matching_acls) == (
        E.INVALID_REQUEST, "Unknown entryFilter.", ())
    described = build(DescribeAclsResponse, A.describe_response(E.NONE, None, [LIT, PRE, LIT_BOB, GRP]))
    assert int(described.error_code) == E.NONE
    assert [(int(r.resource_type), r.resource_name, int(r.pattern_type),
             [(a.principal, int(a.operation), int(a.permission_type)) for a in r.acls])
            for r in described.resources] == [
        (A.TOPIC, "orders", A.LITERAL, [("User:alice", A.READ, A.ALLOW), ("User:bob", A.WRITE, A.ALLOW)]),
        (A.TOPIC, "ord", A.PREFIXED, [("User:alice", A.READ, A.ALLOW)]),
        (A.GROUP, "orders", A.LITERAL, [("User:alice", A.READ, A.ALLOW)])]


def test_acl_versions_differ_across_machines_so_a_replaced_mirror_rebuilds_the_authorizer():
    """A broker's metadata mirror replaced by a fresh machine (a resync) must not show the version
    its cached authorizer was built at: versions come from one counter for the whole process."""
    from sandbox.broker.access import Access
    from sandbox.broker.config import BrokerConfig
    from sandbox.coordinator.machine import MetadataMachine

    deny = Binding(A.TOPIC, "orders", A.LITERAL, "User:alice", "*", A.READ, A.DENY)
    allow = Binding(A.TOPIC, "orders", A.LITERAL, "User:alice", "*", A.READ, A.ALLOW)
    first, second = MetadataMachine(), MetadataMachine()
    first.apply(A.creations(first.acls(), [deny])[0][0])
    second.apply(A.creations(second.acls(), [allow])[0][0])
    assert first.acl_version != second.acl_version
    access = Access(BrokerConfig(data_dir="x"))
    assert not access.allowed(first, "User:alice", "h", A.READ, A.TOPIC, "orders", report=False)
    assert access.allowed(second, "User:alice", "h", A.READ, A.TOPIC, "orders", report=False)


@pytest.mark.parametrize("deny_first", [False, True])
def test_a_wildcard_deny_wins_over_a_wildcard_allow_in_either_order(deny_first):
    """Kafka's authorizeByResourceType notes a wildcard ALLOW and decides after every ACL was seen."""
    allow = Binding(A.TOPIC, "*", A.LITERAL, "User:*", "*", A.WRITE, A.ALLOW)
    deny = Binding(A.TOPIC, "*", A.LITERAL, "User:alice", "*", A.WRITE, A.DENY)
    store: A.Acls = dict.fromkeys([deny, allow] if deny_first else [allow, deny])
    authz = A.Authorizer(store, (), allow_if_no_acl=False)
    assert not authz.allowed_on_some("User:alice", "h", A.WRITE, A.TOPIC)
    assert authz.allowed_on_some("User:bob", "h", A.WRITE, A.TOPIC)
