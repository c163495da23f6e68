"""One blocking TCP connection to one Kafka node: framing, correlation ids, version negotiation,
and the request/reply steps it shares with the async connection (client/async_connection.py).

Every OSError becomes a KafkaClientError with a sentence a user can act on.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from sandbox.protocol import (
    DEFAULT_MAX_FRAME, FrameError, RequestHeader, build, decode_response, encode_request, frame_size, request_class,
)
from sandbox.protocol.errors import UNSUPPORTED_VERSION

from .models import KafkaClientError

API_VERSIONS = 18
MAX_FRAME = DEFAULT_MAX_FRAME

Address = tuple[str, int]


class UndecodableResponse(KafkaClientError):
    """The node answered with bytes that do not decode as the expected response."""


def parse_bootstrap(bootstrap: str | list[tuple[str, int]] | tuple[str, int]) -> list[Address]:
    """'h1:p1,h2:p2' (or [('h1', p1), ...]) -> [(h1, p1), ...]; IPv6 as [::1]:9092."""
    if isinstance(bootstrap, tuple) and len(bootstrap) == 2 and isinstance(bootstrap[1], int):
        bootstrap = [bootstrap]
    if isinstance(bootstrap, str):
        out = []
        for part in filter(None, (p.strip() for p in bootstrap.split(","))):
            host, sep, port = part.rpartition(":")
            if not sep or not port.isdigit() or not host:
                raise KafkaClientError(f"bootstrap address {part!r} is not host:port; "
                                       f"write it like 127.0.0.1:9092")
            number = int(port)
            if not 0 < number < 65536:
                raise KafkaClientError(f"bootstrap address {part!r} has port {number}, and ports go from 1 "
                                       f"to 65535; write it like 127.0.0.1:9092")
            out.append((host.strip("[]"), number))
    else:
        out = [(str(h), int(p)) for h, p in bootstrap]
    if not out:
        raise KafkaClientError("no bootstrap address given; pass host:port, e.g. 127.0.0.1:9092")
    return out


def fmt(addr: Address) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_oserror(addr: Address, e: BaseException, timeout: float) -> str:
    where = fmt(addr)
    if isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED:
        return f"nothing listens on {where} (connection refused); is the sandbox running?"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"{where} did not answer within {timeout:g}s"
    if isinstance(e, socket.gaierror):
        return f"cannot resolve host {addr[0]!r} of {where} ({e.strerror})"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, EOFError)):
        return f"{where} closed the connection"
    return f"cannot talk to {where} ({getattr(e, 'strerror', None) or e})"


class BadReply(ValueError):
    """A reply that is not the answer to the request sent (bad size, correlation id or body)."""


def request_frame(body: Any, correlation_id: int, client_id: str) -> bytes:
    """The framed request for a request entity (its api key and version come from its class)."""
    return encode_request(RequestHeader(body.__api_key__, body.__version__, correlation_id, client_id), body)


def reply_size(prefix: bytes) -> int:
    """The body size a reply's 4-byte prefix announces; BadReply when no reply can be that size."""
    try:
        size = frame_size(prefix, MAX_FRAME)
    except FrameError as e:
        raise BadReply(str(e)) from None
    if size < 4:
        raise BadReply(f"bad response size {size}")
    return size


def decode_reply(frame: bytes, body: Any, correlation_id: int) -> Any:
    """The response entity in `frame`, the answer to request `body` sent as `correlation_id`;
    BadReply if it cannot be decoded or answers another request."""
    key, version = body.__api_key__, body.__version__
    try:
        got, response = decode_response(frame, key, version)
    except Exception as e:
        raise BadReply(f"a response to api {key} v{version} that cannot be decoded ({type(e).__name__})") from None
    if got != correlation_id:
        raise WrongCorrelation(got, correlation_id)
    return response


class WrongCorrelation(BadReply):
    """A reply to another request than the one in flight."""

    def __init__(self, got: int, expected: int) -> None:
        super().__init__(f"correlation id {got} does not match {expected}")
        self.got, self.expected = got, expected


class Connection:
    """A lazily opened socket to one node; any failure closes it so the next call reconnects."""

    def __init__(self, addr: Address, client_id: str, timeout: float) -> None:
        self.addr, self.client_id, self.timeout = addr, client_id, timeout
        self.sock: socket.socket | None = None
        self.versions: dict[int, tuple[int, int]] | None = None
        self._corr = 0

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self.versions = None

    def _open(self) -> None:
        if self.sock is None:
            self.sock = socket.create_connection(self.addr, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _exact(self, n: int) -> bytes:
        assert self.sock is not None
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed")
            buf += chunk
        return bytes(buf)

    def roundtrip(self, body: Any) -> Any:
        """Send one request entity, return the decoded response entity."""
        try:
            self._open()
            self._corr = (self._corr + 1) & 0x7FFFFFFF
            self.sock.sendall(request_frame(body, self._corr, self.client_id))
            frame = self._exact(reply_size(self._exact(4)))
        except BadReply as e:
            self.close()
            raise KafkaClientError(describe_oserror(self.addr, EOFError(str(e)), self.timeout)) from None
        except (OSError, EOFError) as e:
            self.close()
            raise KafkaClientError(describe_oserror(self.addr, e, self.timeout)) from None
        try:
            return decode_reply(frame, body, self._corr)
        except WrongCorrelation as e:
            self.close()
            raise KafkaClientError(f"{fmt(self.addr)} answered correlation id {e.got}, expected {e.expected}") from None
        except BadReply as e:
            self.close()
            raise UndecodableResponse(f"{fmt(self.addr)} sent {e}") from None

    def api_versions(self) -> tuple[dict[int, tuple[int, int]], float]:
        """ApiVersions v3 (v0 if the node refuses v3): {api_key: (min, max)} and latency in ms."""
        for version in (3, 0):
            body = build(request_class(API_VERSIONS, version),
                         {"client_software_name": "sandbox", "client_software_version": "0"})
            try:
                self._open()  # latency is the round trip, not the TCP connect
            except OSError as e:
                self.close()
                raise KafkaClientError(describe_oserror(self.addr, e, self.timeout)) from None
            start = time.perf_counter()
            try:
                resp = self.roundtrip(body)
            except UndecodableResponse:
                if version == 0:
                    raise
                continue
            latency = (time.perf_counter() - start) * 1000
            if int(resp.error_code) == UNSUPPORTED_VERSION and version == 3:
                continue
            if int(resp.error_code):
                raise KafkaClientError(f"{fmt(self.addr)} refused ApiVersions "
                                       f"(error {int(resp.error_code)})", int(resp.error_code))
            self.versions = {int(k.api_key): (int(k.min_version), int(k.max_version))
                             for k in resp.api_keys}
            return dict(self.versions), latency
        raise KafkaClientError(f"{fmt(self.addr)} does not speak the Kafka ApiVersions API")

    def pick_version(self, api_key: int, lo: int, hi: int) -> int:
        """The highest version of api_key both we (lo..hi) and the node support."""
        if self.versions is None:
            self.api_versions()
        assert self.versions is not None
        if api_key not in self.versions:
            raise KafkaClientError(f"{fmt(self.addr)} does not support api {api_key}")
        theirs = self.versions[api_key]
        best = min(hi, theirs[1])
        if best < max(lo, theirs[0]):
            raise KafkaClientError(f"{fmt(self.addr)} supports api {api_key} v{theirs[0]}-"
                                   f"v{theirs[1]}, this client needs v{lo}-v{hi}")
        return best

    def request(self, api_key: int, lo: int, hi: int, data: dict) -> tuple[Any, int]:
        """Build a request of the best common version from a superset dict; (response, version)."""
        version = self.pick_version(api_key, lo, hi)
        return self.roundtrip(build(request_class(api_key, version), data)), version
