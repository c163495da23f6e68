"""A broker's named listeners as the coordinator registers them: validated into the journal form."""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from sandbox.protocol.errors import INVALID_REQUEST

from .model import CoordinatorError

Listeners = Iterable[Sequence[Any]] | Mapping[str, Sequence[Any]]


def listener_map(listeners: Listeners | None) -> dict[str, list[Any]]:
    """Validated {name: [host, port]} (the journal form), in the order given."""
    if listeners is None:
        return {}
    items = ([(name, *addr) for name, addr in listeners.items()]
             if isinstance(listeners, Mapping) else [tuple(x) for x in listeners])
    out: dict[str, list[Any]] = {}
    for item in items:
        if len(item) != 3:
            raise CoordinatorError(INVALID_REQUEST, f"listener {item!r} is not (name, host, port)")
        name, host, port = item
        if not isinstance(name, str) or not name:
            raise CoordinatorError(INVALID_REQUEST, f"invalid listener name {name!r}")
        if name in out:
            raise CoordinatorError(INVALID_REQUEST, f"listener {name} is registered twice")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise CoordinatorError(INVALID_REQUEST, f"invalid port {port!r} for listener {name}")
        if not isinstance(host, str) or not host:
            raise CoordinatorError(INVALID_REQUEST, f"invalid host {host!r} for listener {name}")
        out[name] = [host, port]
    return out
