"""Who may do what on this broker: its authorizer (coordinator/acls.py, Kafka's StandardAuthorizer
rules) over the ACLs in its copy of the cluster metadata, rebuilt when they change, with the
broker's `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`. Without an
authorizer every request is allowed and the ACL APIs answer SECURITY_DISABLED, as in Kafka."""

from __future__ import annotations

import logging
from typing import Any, Callable

from sandbox import lifecycle
from sandbox.coordinator.acls import OPERATIONS, RESOURCE_TYPES, Authorizer

from .config import BrokerConfig
from .reporter import Reporter

log = logging.getLogger("sandbox.broker")   # the broker's log, where its EVENT lines go
DENIAL_REPORTS = Reporter()   # authorization-failed events: one per principal, operation and resource every 10 s


def report_denied(detail: dict) -> None:
    """A refused request in the broker's log and, once every 10 s per principal, operation and
    resource, as an EVENT `sandbox status` shows: who was refused what, and why."""
    if DENIAL_REPORTS.due((detail["principal"], detail["operation"], detail["resource_type"], detail["resource"])):
        log.info("%s from %s denied %s on %s %s: %s", detail["principal"], detail["host"], detail["operation"],
                 detail["resource_type"], detail["resource"], detail["why"])
        lifecycle.emit_event(log, "authorization-failed", detail)


_OPEN = Authorizer({}, (), allow_if_no_acl=True)   # no authorizer: every operation allowed


class Access:
    def __init__(self, config: BrokerConfig, report: Callable[[dict], None] | None = None) -> None:
        self.config = config
        self.report = report   # told of each refusal (report_denied: an event, rate-limited)
        self.enabled = bool(config.authorizer_class_name)
        self.super_users = frozenset(config.super_users)
        self._version: int | None = None
        self._authorizer: Authorizer | None = None

    def authorizer(self, coordinator: Any) -> Authorizer | None:
        """The authorizer for the ACLs the metadata holds now; None without one (all allowed)."""
        if not self.enabled:
            return None
        version = coordinator.acl_version if coordinator is not None else -1
        if self._authorizer is None or version != self._version:
            store = coordinator.acls() if coordinator is not None else {}
            self._authorizer = Authorizer(store, self.super_users, self.config.allow_everyone_if_no_acl_found)
            self._version = version
        return self._authorizer

    def operations(self, coordinator: Any, principal: str, host: str, resource_type: int, name: str) -> int:
        """KIP-430's authorized operations (a bit per operation) of the principal on the resource;
        without an authorizer every operation of the resource type, as Kafka answers."""
        return (self.authorizer(coordinator) or _OPEN).authorized_operations(principal, host, resource_type, name)

    def allowed_on_some(self, coordinator: Any, principal: str, host: str, operation: int, resource_type: int) -> bool:
        """Kafka's authorizeByResourceType (see acls.Authorizer.allowed_on_some)."""
        if not self.enabled or principal in self.super_users:
            return True
        return self.authorizer(coordinator).allowed_on_some(principal, host, operation, resource_type)

    def allowed(self, coordinator: Any, principal: str, host: str, operation: int, resource_type: int,
                name: str, report: bool = True) -> bool:
        """Whether the principal may; a refusal the client is told of (`report`, not a listing that
        leaves the resource out) is reported with why, as Kafka's authorizer log has it."""
        if not self.enabled or principal in self.super_users:
            return True
        authz = self.authorizer(coordinator)
        if authz.allowed(principal, host, operation, resource_type, name):
            return True
        if report and self.report is not None:
            self.report({"principal": principal, "host": host, "operation": OPERATIONS.get(operation, str(operation)),
                         "resource_type": RESOURCE_TYPES.get(resource_type, str(resource_type)), "resource": name,
                         "why": authz.why_denied(principal, host, operation, resource_type, name)})
        return False
