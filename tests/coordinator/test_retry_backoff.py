"""While the coordinator is away, a broker tries again at least once a second (Kafka's clients'
retry.backoff.max.ms and reconnect.backoff.max.ms), both its heartbeat and its metadata feed: a
restarted coordinator, or one whose journal the supervisor replaced, is back within a second or
two, and a replaced journal's topics are re-created only once every broker found it again."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.coordinator import mirror as mirror_mod, session as session_mod
from sandbox.coordinator.mirror import MetadataMirror
from sandbox.coordinator.model import CoordinatorError
from sandbox.coordinator.session import BrokerSession
from sandbox.coordinator.transport import RETRY_BACKOFF_MAX_S
from sandbox.protocol.errors import COORDINATOR_NOT_AVAILABLE


class Away:
    """A coordinator connection whose every request fails as an unreachable coordinator's does."""

    host, port = "127.0.0.1", 9

    async def request(self, body, timeout):
        raise CoordinatorError(COORDINATOR_NOT_AVAILABLE, "Connect call failed")


class Stop(Exception):
    pass


def recording_sleep(delays: list[float], limit: int):
    async def sleep(delay, *args):
        delays.append(delay)
        if len(delays) >= limit:
            raise Stop
    return sleep


def test_heartbeats_are_tried_again_within_a_second_while_the_coordinator_is_away(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(session_mod.asyncio, "sleep", recording_sleep(delays, 12))
    s = BrokerSession(Away(), lambda: 0, request_timeout=1.0, heartbeat_interval=0.5)
    s.broker_id, s.registered, s.healthy = 1, True, True
    with pytest.raises(Stop):
        asyncio.run(s.keep_alive())
    assert delays[0] == 0.5 and max(delays) == RETRY_BACKOFF_MAX_S == 1.0, delays
    assert not s.healthy


def test_the_metadata_feed_is_asked_again_within_a_second_while_the_coordinator_is_away(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(mirror_mod.asyncio, "sleep", recording_sleep(delays, 12))
    m = MetadataMirror(Away(), Away(), request_timeout=1.0, catch_up_timeout=1.0, fetch_max_wait_ms=500)
    with pytest.raises(Stop):
        asyncio.run(m.follow())
    assert delays[0] == 0.1 and max(delays) == RETRY_BACKOFF_MAX_S, delays
    assert delays[-3:] == [RETRY_BACKOFF_MAX_S] * 3   # capped, not growing


def test_a_broker_shutting_down_never_registers_again():
    """After a controlled shutdown the coordinator has dropped the broker's session; a producer-id
    request answered "not registered" then registered it again (its leaderships handed back, writes
    taken by a broker that is stopping). Its registration is refused from then on."""
    from types import SimpleNamespace

    from sandbox.protocol.errors import BROKER_ID_NOT_REGISTERED, NONE

    asked: list[int] = []

    class Coordinator:
        host, port = "127.0.0.1", 9

        async def request(self, body, timeout):
            asked.append(body.__api_key__)
            if body.__api_key__ == 63:   # the shutdown heartbeat: taken
                return SimpleNamespace(error_code=NONE, should_shut_down=True)
            if body.__api_key__ == 67:   # producer ids: the session is gone
                return SimpleNamespace(error_code=BROKER_ID_NOT_REGISTERED, producer_id_start=0, producer_id_len=0)
            raise AssertionError(f"asked {body.__api_key__}: a registration")

    s = BrokerSession(Coordinator(), lambda: 0, request_timeout=1.0, heartbeat_interval=0.5)
    s.broker_id, s.broker_epoch, s.registered, s.healthy = 1, 7, True, True
    assert asyncio.run(s.shut_down()) and not s.lease_valid()
    with pytest.raises(CoordinatorError):
        asyncio.run(s.allocate_producer_ids(1))
    assert 62 not in asked
