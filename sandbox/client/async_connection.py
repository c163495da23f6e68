"""One asyncio Kafka connection to one node, for services that talk to other services (a broker
to the coordinator today, to other brokers for replication next): one request in flight,
(re)connects on demand, closes itself on any failure, asks once more on a fresh connection when a
kept one turns out dead. The request/reply steps are the blocking connection's."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from sandbox.protocol.errors import NETWORK_EXCEPTION, REQUEST_TIMED_OUT

from .connection import decode_reply, reply_size, request_frame
from .models import KafkaClientError


class ExchangeFailed(KafkaClientError):
    """No answer: `timed_out` when the node did not answer in time; `no_answer` when a kept
    connection was found dead before any byte of the reply came (the request never reached a
    live node, so asking again is safe); `detail` names the cause ("TypeName: text")."""

    def __init__(self, message: str, *, timed_out: bool, no_answer: bool = False, detail: str = "") -> None:
        super().__init__(message, REQUEST_TIMED_OUT if timed_out else NETWORK_EXCEPTION)
        self.timed_out, self.no_answer, self.detail = timed_out, no_answer, detail


class AsyncConnection:
    """One Kafka connection: `await request(body, timeout)` gives the response entity or raises
    ExchangeFailed (a timed-out reply would desynchronise the stream, so the connection closes)."""

    def __init__(self, host: str, port: int, client_id: str, connect_timeout: float) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.connect_timeout = connect_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._corr = 0

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def request(self, body: Any, timeout: float) -> Any:
        async with self._lock:
            reused = self.connected
            try:
                return await self._request(body, timeout)
            except ExchangeFailed as e:
                # a kept connection whose peer died (a restarted service) fails on first use
                # without an answer: the request never reached a live peer, so ask again once on
                # a fresh connection
                if not (reused and e.no_answer):
                    raise
            return await self._request(body, timeout)

    async def _request(self, body: Any, timeout: float) -> Any:
        try:
            if not self.connected:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.connect_timeout)
            self._corr = (self._corr + 1) & 0x7FFFFFFF
            corr = self._corr
            self._writer.write(request_frame(body, corr, self.client_id))
            frame = await asyncio.wait_for(self._exchange(), timeout)
            return decode_reply(frame, body, corr)
        except asyncio.TimeoutError:
            self.close()
            raise ExchangeFailed(f"{self.host}:{self.port} did not answer within {timeout:.1f} s",
                                 timed_out=True) from None
        except (OSError, EOFError, asyncio.IncompleteReadError, ValueError, struct.error) as e:  # BadReply too
            self.close()
            detail = f"{type(e).__name__}: {e}"
            no_answer = isinstance(e, (ConnectionError, asyncio.IncompleteReadError)) and \
                not getattr(e, "partial", b"")
            raise ExchangeFailed(f"{self.host}:{self.port} is not available ({detail})", timed_out=False,
                                 no_answer=no_answer, detail=detail) from None
        except BaseException:  # cancelled mid-exchange: the stream is out of step
            self.close()
            raise

    async def _exchange(self) -> bytes:
        assert self._writer is not None and self._reader is not None
        await self._writer.drain()
        return await self._reader.readexactly(reply_size(await self._reader.readexactly(4)))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
