"""A tiny blocking Kafka client over our own codec, for tests that need exact bytes on the wire."""

from __future__ import annotations

import socket
import struct

from sandbox.protocol import RequestHeader, decode_response, encode_request


class RawClient:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.corr = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._exact(4))
        return self._exact(size)

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("connection closed by broker")
            buf += chunk
        return buf

    def request(self, body, client_id: str = "raw-test", expect_response: bool = True):
        self.corr += 1
        key, ver = body.__api_key__, body.__version__
        self.send_raw(encode_request(RequestHeader(key, ver, self.corr, client_id), body))
        if not expect_response:
            return None
        corr, resp = decode_response(self.recv_frame(), key, ver)
        assert corr == self.corr
        return resp

    def is_closed(self, timeout: float = 3.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
