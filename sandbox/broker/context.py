"""The per-request context handed to handlers: broker state, header, who is asking, and the
listener the request came in through."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.coordinator.acls import ANONYMOUS

from .admin import BrokerAdmin
from .config import DEFAULT_LISTENER
from .state import BrokerState


@dataclass(slots=True)
class RequestContext:
    state: BrokerState
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    listener: str = DEFAULT_LISTENER  # the name of the listener the connection came in through
    principal: str = ANONYMOUS        # "User:NAME" after a SASL login; User:ANONYMOUS on a plain listener

    @property
    def host(self) -> str:
        """The client's address (without its port), as ACLs name hosts."""
        return self.peer.rsplit(":", 1)[0]

    @property
    def restricted(self) -> bool:
        """True when ACLs apply to this request (an authorizer, and no super user asking): the
        handlers' cheap test before they check resource by resource."""
        access = self.state.access
        return access.enabled and self.principal not in access.super_users

    def operations(self, resource_type: int, name: str) -> int:
        """KIP-430 authorized operations of this request's principal on the resource."""
        return self.state.access.operations(self.state.coordinator, self.principal, self.host, resource_type, name)

    def allowed(self, operation: int, resource_type: int, name: str, report: bool = True) -> bool:
        """Whether this request's principal may do `operation` on the resource (acls.py codes); a
        refusal is reported in `sandbox status` unless `report` is False (a listing leaving it out,
        or the first of two checks)."""
        return self.state.access.allowed(self.state.coordinator, self.principal, self.host, operation,
                                         resource_type, name, report)

    @property
    def admin(self) -> BrokerAdmin:
        """This broker as the shared admin handlers see it (sandbox/admin_handlers)."""
        return BrokerAdmin(self.state, self.listener)
