"""Requests answered in-process through a service's registry (no sockets, no subprocess): a
request dict is built with kio at the chosen version, encoded, dispatched as the server does,
and the reply decoded with kio."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from sandbox.protocol import (
    CLOSE, Registry, RequestHeader, build, decode_response, encode_request, join_parts, request_class,
)


class InProcess:
    """One service's registry and the owner its handlers see (broker state or coordinator
    server), on an event loop of its own."""

    def __init__(self, registry: Registry, loop: asyncio.AbstractEventLoop, owner: Any, *extra: Any) -> None:
        self.registry, self.loop, self.owner, self.extra = registry, loop, owner, extra
        self._corr = itertools.count(1)

    def frame(self, api_key: int, version: int, body: dict | Any, correlation_id: int) -> bytes | bytearray:
        """The request frame (no size prefix) as the server's connection hands it over."""
        entity = build(request_class(api_key, version), body)
        raw = encode_request(RequestHeader(api_key, version, correlation_id, "in-process"), entity)[4:]
        return bytearray(raw) if api_key in self.registry.writable_keys else raw

    def raw(self, frame) -> Any:
        """The registry's answer to one frame, awaited if it had to wait, parts joined."""
        out = self.registry.dispatch(frame, self.owner, "in-process", *self.extra)
        if asyncio.iscoroutine(out):
            out = self.loop.run_until_complete(out)
        if isinstance(out, list):
            out = bytes(join_parts(out))
        return out

    def call(self, api_key: int, version: int, body: dict | Any) -> Any:
        """The decoded response entity (None when the handler sends no response)."""
        corr = next(self._corr)
        out = self.raw(self.frame(api_key, version, body, corr))
        assert out is not CLOSE, f"api key {api_key} v{version}: the connection would be closed"
        if out is None:
            return None
        got, response = decode_response(bytes(out)[4:], api_key, version)
        assert got == corr
        return response
