"""KafkaClient's calls for what the coordinator keeps besides topics (a base of KafkaClient):
client quotas (DescribeClientQuotas / AlterClientQuotas), group configs (DescribeConfigs /
IncrementalAlterConfigs on GROUP resources), ACLs (DescribeAcls / CreateAcls) and SCRAM credentials
(sandbox.toml's [sasl] users). The supervisor's catalog saves quotas, group configs and ACLs so a
destroyed coordinator journal gets them back; SCRAM credentials cannot be read back (only their salted keys exist), so the declared users
are set again from the file instead."""

from __future__ import annotations

import hashlib
import os

from sandbox.protocol.errors import SECURITY_DISABLED
from sandbox.protocol.extensions import RESTORE_CLUSTER_ID

from .base import (
    ALTER_CLIENT_QUOTAS, ALTER_USER_SCRAM_CREDENTIALS, CREATE_ACLS, DESCRIBE_ACLS, DESCRIBE_QUORUM, BROKER_RESOURCE, DESCRIBE_USER_SCRAM_CREDENTIALS, DESCRIBE_CLIENT_QUOTAS, DESCRIBE_CONFIGS, GROUP_RESOURCE, INCREMENTAL_ALTER_CONFIGS,
    LIST_CONFIG_RESOURCES, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT, SOURCE_GROUP_CONFIG, _check, _locked,
)

Entity = tuple[tuple[str, "str | None"], ...]   # ((entity type, name or None for the default), ...)


class ConfigAdmin:
    @_locked
    def client_quotas(self) -> dict[Entity, dict[str, float]]:
        """Every client quota entry: {entity: {quota key: value}}."""
        resp, _ = self._any(DESCRIBE_CLIENT_QUOTAS, {"components": [], "strict": False})
        _check(resp.error_code, "describing client quotas", resp.error_message)
        return {tuple((e.entity_type, e.entity_name) for e in entry.entity):
                {v.key: float(v.value) for v in entry.values} for entry in resp.entries or ()}

    @_locked
    def alter_client_quotas(self, quotas: dict[Entity, dict[str, float]]) -> None:
        """Set these quota values (others of the same entities are kept)."""
        if not quotas:
            return
        resp, _ = self._any(ALTER_CLIENT_QUOTAS, {"validate_only": False, "entries": [
            {"entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
             "ops": [{"key": k, "value": float(v), "remove": False} for k, v in values.items()]}
            for entity, values in quotas.items()]})
        for entry in resp.entries:
            _check(entry.error_code, "setting client quotas", entry.error_message)

    @_locked
    def acls(self) -> list[list]:
        """Every ACL binding as [resource type, name, pattern type, principal, host, operation,
        permission] (Kafka's codes); [] when the brokers have no authorizer."""
        resp, _ = self._any(DESCRIBE_ACLS, {"resource_type_filter": 1, "resource_name_filter": None,
                                            "pattern_type_filter": 1, "principal_filter": None, "host_filter": None,
                                            "operation": 1, "permission_type": 1})
        if int(resp.error_code) == SECURITY_DISABLED:
            return []
        _check(resp.error_code, "describing ACLs", resp.error_message)
        return sorted([int(r.resource_type), r.resource_name, int(r.pattern_type), a.principal, a.host,
                       int(a.operation), int(a.permission_type)] for r in resp.resources for a in r.acls)

    @_locked
    def create_acls(self, bindings: list[list]) -> None:
        """Create these ACL bindings (the form acls() gives); one that exists already is kept."""
        if not bindings:
            return
        resp, _ = self._any(CREATE_ACLS, {"creations": [
            {"resource_type": b[0], "resource_name": b[1], "resource_pattern_type": b[2], "principal": b[3],
             "host": b[4], "operation": b[5], "permission_type": b[6]} for b in bindings]})
        for r in resp.results:
            _check(r.error_code, "creating ACLs", r.error_message)

    @_locked
    def scram_users(self) -> dict[str, set[int]]:
        """Every user with SCRAM credentials -> its mechanisms (1 SCRAM-SHA-256, 2 SCRAM-SHA-512)."""
        resp, _ = self._any(DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": None})
        _check(resp.error_code, "describing SCRAM credentials", resp.error_message)
        return {r.user: {int(c.mechanism) for c in r.credential_infos} for r in resp.results}

    @_locked
    def scram_keys(self) -> dict[str, dict[str, dict]]:
        """Every user's SCRAM credentials as the coordinator's journal keeps them: {user: {mechanism:
        {"iterations", "salt", "stored_key", "server_key" (hex)}}}, asked with this sandbox's tag
        (sandbox.protocol.scram_keys; answered on a super user's listener only). A credential
        answered without its keys is left out."""
        resp, _ = self._any(DESCRIBE_USER_SCRAM_CREDENTIALS, {"users": None, "stored_keys": True})
        _check(resp.error_code, "describing SCRAM credentials", resp.error_message)
        out: dict[str, dict[str, dict]] = {}
        for r in resp.results:
            for c in r.credential_infos:
                if getattr(c, "stored_key", b"") and c.server_key and c.salt:
                    out.setdefault(r.user, {})[str(int(c.mechanism))] = {
                        "iterations": int(c.iterations), "salt": bytes(c.salt).hex(),
                        "stored_key": bytes(c.stored_key).hex(), "server_key": bytes(c.server_key).hex()}
        return out

    @_locked
    def set_scram_passwords(self, passwords: dict[str, str], mechanisms: tuple[int, ...] = (1, 2),
                            iterations: int = 4096) -> None:
        """Give each user SCRAM credentials for these mechanisms (salted here, as Kafka's tools do:
        the password never leaves this process); 4096 iterations, kafka-configs' default."""
        if not passwords:
            return
        upsertions = []
        for user, password in passwords.items():
            for mechanism in mechanisms:
                # a multiple of 3 bytes: base64 without '=' padding, which librdkafka before 2.x's
                # later releases decodes one byte too long (its SCRAM logins then fail)
                salt = os.urandom(30)
                salted = hashlib.pbkdf2_hmac("sha256" if mechanism == 1 else "sha512", password.encode("utf-8"),
                                             salt, iterations)
                upsertions.append({"name": user, "mechanism": mechanism, "iterations": iterations, "salt": salt,
                                   "salted_password": salted})
        # one request may name a user once (as Kafka's controller checks): one request per mechanism
        for mechanism in mechanisms:
            resp, _ = self._any(ALTER_USER_SCRAM_CREDENTIALS, {
                "deletions": [], "upsertions": [u for u in upsertions if u["mechanism"] == mechanism]})
            for r in resp.results:
                _check(r.error_code, f"setting the SCRAM credentials of user {r.user}", r.error_message)

    @_locked
    def configured_groups(self) -> list[str]:
        """The groups that have group configs set (ListConfigResources, KIP-1142), with or without
        members or offsets."""
        resp, _ = self._any(LIST_CONFIG_RESOURCES, {"resource_types": [GROUP_RESOURCE]})
        _check(resp.error_code, "listing config resources")
        return sorted(r.resource_name for r in resp.config_resources if int(r.resource_type) == GROUP_RESOURCE)

    @_locked
    def group_configs(self, group: str) -> dict[str, str]:
        """The configs set on a group (KIP-848 group configs), defaults left out."""
        configs = self._resource_configs(GROUP_RESOURCE, group, f"group {group}")
        return {c.name: c.value for c in configs if int(c.config_source) == SOURCE_GROUP_CONFIG}

    @_locked
    def alter_group_configs(self, group: str, set: dict[str, str]) -> None:
        self._alter_resource(GROUP_RESOURCE, group, f"group {group}", set)

    @_locked
    def broker_configs(self, broker: str = "") -> dict[str, str]:
        """The dynamic broker settings (KIP-226) of a BROKER resource: "" the cluster-wide default,
        "N" broker N's own (without the default's)."""
        configs = self._resource_configs(BROKER_RESOURCE, broker, f"broker {broker or 'default'}")
        own = SOURCE_DYNAMIC_DEFAULT if not broker else SOURCE_DYNAMIC_BROKER
        return {c.name: c.value for c in configs if int(c.config_source) == own}

    @_locked
    def alter_broker_configs(self, broker: str, set: dict[str, str] | None = None, delete=()) -> None:
        """Set (and delete) dynamic broker settings of a BROKER resource ("" every broker)."""
        self._alter_resource(BROKER_RESOURCE, broker, f"broker {broker or 'default'}", set, delete)

    @_locked
    def restore_cluster_id(self, cluster_id: str) -> None:
        """After a destroyed coordinator journal: have it answer with the cluster id clients knew
        (protocol/extensions.py)."""
        self._alter_resource(BROKER_RESOURCE, "", "the cluster", {RESTORE_CLUSTER_ID: cluster_id})

    @_locked
    def metadata_followers(self) -> dict[int, int]:
        """The brokers following the metadata journal the coordinator serves now (DescribeQuorum's
        observers): broker id -> when it last had all of it (ms since the epoch; -1 not yet). The
        coordinator counts only fetches carrying its journal's history id, so a broker still on a
        replaced journal's metadata is not among those that have caught up."""
        resp, _ = self._any(DESCRIBE_QUORUM, {"topics": [{"topic_name": "__cluster_metadata",
                                                          "partitions": [{"partition_index": 0}]}]})
        _check(resp.error_code, "describing the metadata quorum", getattr(resp, "error_message", None))
        part = resp.topics[0].partitions[0]
        _check(part.error_code, "describing the metadata quorum", getattr(part, "error_message", None))
        return {int(o.replica_id): int(o.last_caught_up_timestamp) for o in part.observers}

    # ---- shared by topics (KafkaClient.describe_configs / alter_configs) and groups
    def _to(self, resource_type: int, name: str):
        """How to send a request about a config resource: one broker's BROKER resource to that
        broker (a broker answers only for "" and its own id, as Kafka's do), anything else to
        any broker. A broker the metadata does not list: to any, which refuses it."""
        if resource_type == BROKER_RESOURCE and name.isdigit() and name.isascii():
            broker = int(name)
            if broker not in self._nodes:
                self._metadata([])
            if broker in self._nodes or broker in self._unreachable:
                addr = self._node(broker)   # (one whose address is not usable: why, raised)
                return lambda api_key, data: self._send(addr, api_key, data)
        return self._any

    def _resource_configs(self, resource_type: int, name: str, what: str) -> list:
        """DescribeConfigs of one resource: its config entries (every key, with its source)."""
        resp, _ = self._to(resource_type, name)(DESCRIBE_CONFIGS, {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False})
        r = resp.results[0]
        _check(r.error_code, f"describing configs of {what}", r.error_message)
        return list(r.configs)

    def _alter_resource(self, resource_type: int, name: str, what: str, set: dict | None = None,
                        delete=()) -> None:
        """IncrementalAlterConfigs of one resource: set these keys, reset those to their defaults."""
        ops = [{"name": k, "config_operation": 0, "value": str(v)} for k, v in (set or {}).items()]
        ops += [{"name": k, "config_operation": 1, "value": None} for k in delete]
        resp, _ = self._to(resource_type, name)(INCREMENTAL_ALTER_CONFIGS, {
            "resources": [{"resource_type": resource_type, "resource_name": name, "configs": ops}],
            "validate_only": False})
        r = resp.responses[0]
        _check(r.error_code, f"altering configs of {what}", r.error_message)
