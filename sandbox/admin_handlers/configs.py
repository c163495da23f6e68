"""What the config APIs share (DescribeConfigs, AlterConfigs, IncrementalAlterConfigs): topic,
group and dynamic broker configs are the coordinator's to change; the rest of a server's own
settings are read-only."""

from __future__ import annotations

from sandbox.server_properties import TOPIC_SYNONYMS
from sandbox.coordinator import broker_configs
from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.rules import validate_topic_name
from sandbox.coordinator.topic_configs import DEFAULTS as TOPIC_DEFAULTS
from sandbox.coordinator.topic_configs import RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC, describe_resource
from sandbox.protocol.extensions import RESTORE_CLUSTER_ID
from sandbox.protocol.errors import INVALID_REQUEST, NONE

from . import AdminHost
from .config_synonyms import annotate


def describe(admin: AdminHost, resource_type: int, name: str, keys, set_configs: dict[str, str] | None = None,
             with_synonyms: bool = False, with_documentation: bool = False) -> dict:
    """One DescribeConfigs result. set_configs: for a TOPIC, describe these as its own configs
    instead of the topic's (CreateTopics' answer about a topic it made or would make);
    with_synonyms, with_documentation: what the request's include_* flags ask for."""
    entry = _describe(admin, resource_type, name, keys, set_configs)
    if with_synonyms or with_documentation:
        entry = annotate(entry, resource_type, name, admin.coordinator.broker_configs(), admin.server_configs(),
                         admin.controller_id, with_synonyms, with_documentation)
    return entry


def _describe(admin: AdminHost, resource_type: int, name: str, keys, set_configs: dict[str, str] | None) -> dict:
    coord = admin.coordinator
    known = resource_type == RESOURCE_TOPIC and coord.topic(name) is not None
    topic_configs = None
    if set_configs is not None:
        topic_configs = {**{k: (v, True) for k, v in TOPIC_DEFAULTS.items()},
                         **{k: (v, False) for k, v in set_configs.items() if k in TOPIC_DEFAULTS}}
    elif known:
        topic_configs = coord.describe_configs(name)
    server = admin.server_configs()
    if resource_type == RESOURCE_TOPIC and set_configs is None and (refused := topic_name_refusal(name)):
        return {**refused, "resource_type": resource_type, "resource_name": name, "configs": []}
    if resource_type == RESOURCE_BROKER:
        refused = broker_name_refusal(admin, resource_type, name, describing=True)
        if refused is not None:
            return {**refused, "resource_type": resource_type, "resource_name": name, "configs": []}
    return describe_resource(resource_type, name, keys,
                             topic_configs=topic_configs,
                             server_configs=server,
                             # a topic config the topic does not set takes the server's setting
                             # (log.retention.ms for retention.ms), as Kafka shows it
                             broker_defaults={topic_key: server[key] for key, topic_key in TOPIC_SYNONYMS.items()
                                              if key in server},
                             dynamic=_dynamic(coord, resource_type, name, admin.controller_id, server),
                             writable=broker_configs.CONFIG_TYPES,
                             group_configs=coord.describe_group_configs(name) if resource_type == RESOURCE_GROUP
                             else None)


def topic_name_refusal(name: str) -> dict | None:
    """Kafka's controller checks a TOPIC resource's name before anything else: the error of one
    no topic can have (the empty name: the default resource, which topics do not have), else None."""
    if not name:
        return {"error_code": INVALID_REQUEST, "error_message": "Default topic resources are not allowed."}
    try:
        validate_topic_name(name)
    except CoordinatorError as e:
        return {"error_code": e.error_code, "error_message": e.message}
    return None


def broker_name_refusal(admin: AdminHost, resource_type: int, name: str, *, describing: bool) -> dict | None:
    """The error of a BROKER resource this server does not answer for, else None (and None for
    any other resource): a name that is no broker id, or another broker's id. A broker describes
    and alters only "" (the cluster-wide default) and its own id, as Kafka's ConfigHelper
    (DescribeConfigs) and ConfigAdminManager.validateResourceNameIsCurrentNodeId (AlterConfigs,
    IncrementalAlterConfigs) refuse the others: a client sends a broker's resource to that broker."""
    if resource_type != RESOURCE_BROKER:
        return None
    try:
        broker_configs.check_name(name)
    except CoordinatorError as e:
        return {"error_code": e.error_code, "error_message": e.message}
    own = admin.broker_id
    if own is None or name == broker_configs.DEFAULT or int(name) == own:
        return None
    expected = f"{own} or empty string" if describing else str(own)
    return {"error_code": INVALID_REQUEST,
            "error_message": f"Unexpected broker id, expected {expected}, but received {name}"}


def duplicated_resources(resources) -> set[tuple[int, str]]:
    """The (type, name) of the resources an AlterConfigs or IncrementalAlterConfigs request names
    more than once: each of those entries is refused, as Kafka's ConfigAdminManager refuses them."""
    keys = [(int(r.resource_type), r.resource_name) for r in resources]
    return {k for k in keys if keys.count(k) > 1}


DUPLICATED_RESOURCE_MESSAGE = "Each resource must appear at most once."


def _dynamic(coord, resource_type: int, name: str, node_id: int, server: dict) -> dict[str, tuple[str, int]]:
    """What is set dynamically for the resource described: key -> (value, config source); for
    one broker also Kafka's defaults of the dynamic settings its own settings do not show."""
    if resource_type not in (RESOURCE_TOPIC, RESOURCE_BROKER):
        return {}
    store = coord.broker_configs()
    if resource_type == RESOURCE_TOPIC:   # the defaults of the topic's unset configs, on this broker
        return broker_configs.topic_defaults(store, node_id)
    if name == broker_configs.DEFAULT:    # the cluster-wide default resource lists only its own
        return broker_configs.effective({broker_configs.DEFAULT: store.get(broker_configs.DEFAULT, {})}, -1)
    defaults = {k: (v, broker_configs.SOURCE_DEFAULT) for k, v in broker_configs.DEFAULTS.items() if k not in server}
    return {**defaults, **broker_configs.effective(store, int(name))}


def current(admin: AdminHost, resource_type: int, name: str) -> dict[str, str]:
    """The values IncrementalAlterConfigs' list operations start from."""
    coord = admin.coordinator
    if resource_type == RESOURCE_GROUP:
        return {k: v for k, (v, _d) in coord.describe_group_configs(name).items()}
    if resource_type == RESOURCE_TOPIC and coord.topic(name) is not None:
        return {k: v for k, (v, _d) in coord.describe_configs(name).items()}
    if resource_type == RESOURCE_BROKER:
        return dict(coord.broker_configs().get(name, {}))
    return {}


async def alter(admin: AdminHost, resource_type: int, name: str, set_: dict, delete: list, incremental: bool,
                validate_only: bool) -> dict:
    entry = {"error_code": NONE, "error_message": None, "resource_type": resource_type, "resource_name": name}
    if resource_type == RESOURCE_BROKER and not name and not delete and set(set_) == {RESTORE_CLUSTER_ID}:
        # the supervisor's restore after a destroyed coordinator journal (protocol/extensions.py)
        try:
            if not validate_only:
                await admin.coordinator.restore_cluster_id(set_[RESTORE_CLUSTER_ID])
        except CoordinatorError as e:
            entry["error_code"], entry["error_message"] = e.error_code, e.message
        return entry
    if resource_type == RESOURCE_TOPIC and (refused := topic_name_refusal(name)):
        return {**entry, **refused}
    changes = {RESOURCE_TOPIC: admin.coordinator.alter_configs,
               RESOURCE_GROUP: admin.coordinator.alter_group_configs,
               RESOURCE_BROKER: admin.coordinator.alter_broker_configs}.get(resource_type)
    if changes is None:
        entry["error_code"] = INVALID_REQUEST
        entry["error_message"] = admin.alter_refusal
        return entry
    try:
        await changes(name, set_, delete, incremental=incremental, validate_only=validate_only)
    except CoordinatorError as e:
        entry["error_code"], entry["error_message"] = e.error_code, e.message
    return entry
