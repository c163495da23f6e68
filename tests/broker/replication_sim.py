"""A deterministic in-process cluster for the replication simulation (test_replication_sim.py):
a virtual-time event loop, a fake network that delays, drops and cuts messages between nodes,
a coordinator (the real MetadataMachine) and brokers running the real replication code."""

from __future__ import annotations

import asyncio
import random
import selectors
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

from sandbox.broker.config import BrokerConfig
from sandbox.broker.context import RequestContext
from sandbox.broker.handlers import REGISTRY
from sandbox.broker.state import BrokerState
from sandbox.client.async_connection import ExchangeFailed
from sandbox.coordinator import CoordinatorError, isr
from sandbox.coordinator.machine import MetadataMachine
from sandbox.log import build_batch
from sandbox.protocol.fast import join_parts
from sandbox.protocol import (RequestHeader, build, decode_produce_request, decode_request,
                              decode_response, encode_request, peek_header, request_class)
from sandbox.protocol.errors import REQUEST_TIMED_OUT

COORD = 0                 # the coordinator's node id on the fake network
CLIENT = -1               # the producing application's node id
SESSION_TIMEOUT_S = 9.0
HEARTBEAT_S = 0.5
REPLICA_LAG_MS = 3000
TOPIC = "t"


# ---- virtual time ------------------------------------------------------------------------------
class _VirtualSelector(selectors.BaseSelector):
    """No I/O ever becomes ready: select(timeout) only moves the loop's clock on by timeout."""

    def __init__(self, loop: "VirtualTimeLoop") -> None:
        self._loop = loop
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj, events, data=None):
        key = selectors.SelectorKey(fileobj, selectors._fileobj_to_fd(fileobj), events, data)
        self._keys[key.fd] = key
        return key

    def unregister(self, fileobj):
        return self._keys.pop(selectors._fileobj_to_fd(fileobj))

    def select(self, timeout=None):
        if timeout is None:
            raise RuntimeError("simulation stalled: nothing is scheduled")
        self._loop.now += max(timeout, 0.0)
        return []

    def get_map(self):
        return self._keys

    def close(self) -> None:
        self._keys.clear()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when nothing is ready: sleeping costs nothing."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self.now


# ---- the network -------------------------------------------------------------------------------
class Network:
    """Messages between nodes with a small random latency; a link can be cut, lossy, slow or set
    to drop its next message. Requests to a paused node wait; to a crashed node they are lost."""

    def __init__(self, sim: "Cluster", rng: random.Random) -> None:
        self.sim = sim
        self.rng = rng
        self.loss: dict[frozenset, float] = {}
        self.slow: dict[frozenset, float] = {}
        self.drop_next: dict[frozenset, int] = {}
        self.drop_reply: dict[tuple[int, str], int] = {}   # (requester, what) -> replies to lose

    def heal_all(self) -> None:
        self.loss.clear()
        self.slow.clear()
        self.drop_next.clear()
        self.drop_reply.clear()

    def _delay(self, a: int, b: int) -> float:
        return 0.0005 + 0.004 * self.rng.random() + self.slow.get(frozenset((a, b)), 0.0) * self.rng.random()

    def _lost(self, a: int, b: int) -> bool:
        link = frozenset((a, b))
        if self.drop_next.get(link):
            self.drop_next[link] -= 1
            return True
        p = self.loss.get(link, 0.0)
        return p >= 1.0 or (p > 0 and self.rng.random() < p)

    def _reply_lost(self, src: int, what: str) -> bool:
        if self.drop_reply.get((src, what)):
            self.drop_reply[(src, what)] -= 1
            return True
        return False

    async def call(self, src: int, dst: int, serve: Callable[[], Awaitable[Any]], timeout: float,
                   what: str = "") -> Any:
        """One request/response; CoordinatorError (as _Connection raises) when none comes in time."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        async def deliver() -> None:
            await asyncio.sleep(self._delay(src, dst))
            node = self.sim.node(dst)
            if self._lost(src, dst) or node is None or not node.up:
                return
            inc = node.incarnation
            await node.running()
            if not node.up or node.incarnation != inc:
                return
            try:
                reply = await serve()
            except CoordinatorError as e:
                reply = e
            except Exception as e:   # noqa: BLE001 - a handler failed: the test must see it
                self.sim.errors.append(f"node {dst} failed serving node {src}: {e!r}")
                raise
            await node.running()
            if not node.up or node.incarnation != inc:
                return
            await asyncio.sleep(self._delay(dst, src))
            if not self._lost(dst, src) and not self._reply_lost(src, what) and not fut.done():
                fut.set_result(reply)

        task = loop.create_task(deliver())
        node = self.sim.node(dst)
        if node is not None:
            node.tasks.add(task)
            task.add_done_callback(node.tasks.discard)
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise CoordinatorError(REQUEST_TIMED_OUT, f"node {dst} did not answer node {src}") from None
        if isinstance(reply, CoordinatorError):
            raise reply
        return reply


class CoordinatorNode:
    """The coordinator on the network: never paused, never crashed."""
    up, incarnation = True, 0

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task] = set()

    async def running(self) -> None:
        return None


class SimConnection:
    """What a ReplicaFetcher talks to its leader through (ReplicaManager.connect): real request
    frames over the fake network, one request in flight; no answer in time is ExchangeFailed, as
    sandbox.client.async_connection.AsyncConnection raises it."""

    def __init__(self, sim: "Cluster", src: int, host: str, port: int, client_id: str) -> None:
        self.sim, self.src, self.host, self.port, self.client_id = sim, src, host, port, client_id
        self.dst = sim.by_address[(host, port)]
        self._lock = asyncio.Lock()
        self._corr = 0

    connected = True   # no connection state: the fake network decides each call's fate

    async def request(self, body: Any, timeout: float) -> Any:
        key, version = body.__api_key__, body.__version__
        return await self.call(
            lambda corr, client_id: encode_request(RequestHeader(key, version, corr, client_id), body),
            lambda frame, _corr: decode_response(bytes(frame), key, version)[1], timeout)

    async def call(self, encode, decode, timeout: float) -> Any:
        """As AsyncConnection.call: encode(correlation id, client id) -> the request frame,
        decode(reply frame without its size prefix, correlation id) -> the answer."""
        async with self._lock:
            me = self.sim.brokers[self.src]
            await me.running()
            self._corr += 1
            frame = encode(self._corr, self.client_id)[4:]
            kind = "fetch" if peek_header(frame)[0] == 1 else "epoch"
            try:
                reply = await self.sim.net.call(self.src, self.dst, lambda: self.sim.serve(self.dst, frame), timeout,
                                                kind)
            except CoordinatorError as e:
                raise ExchangeFailed(e.message, timed_out=True) from None
            await me.running()
            return decode(bytearray(reply)[4:], self._corr)

    def close(self) -> None:
        pass


# ---- the coordinator as a broker sees it -------------------------------------------------------
class CoordinatorView:
    """A broker's `state.coordinator`: the metadata as delivered to this broker (late), broker
    addresses, AlterPartition over the network, and the lease RemoteCoordinator keeps."""

    def __init__(self, sim: "Cluster", broker: "SimBroker") -> None:
        self.sim, self.me = sim, broker
        self.offset = 0          # metadata offset of the mirror
        self._topics: list = []
        self.lease_until = 0.0
        self.cluster_changed_at = None   # the coordinator's journal is never replaced here
        self.cluster_id = "simulated-history"   # so its history id never changes either

    @property
    def metadata_offset(self) -> int:
        return self.offset

    def brokers(self):
        return self.sim.machine.brokers()

    def broker(self, broker_id: int):
        return self.sim.machine.broker(broker_id)

    def topics(self):
        return [t.copy() for t in self._topics]

    def topic(self, name: str):
        return next((t.copy() for t in self._topics if t.name == name), None)

    def partition_count(self, name: str) -> int:
        return next((len(t.partitions) for t in self._topics if t.name == name), 0)

    def broker_configs(self) -> dict:
        return {}   # no dynamic broker configs in the simulation

    def lease_valid(self) -> bool:
        return self.sim.loop.time() < self.lease_until

    def deliver(self, offset: int, topics: list) -> None:
        if offset > self.offset:
            self.offset, self._topics = offset, topics
            self.me.state.sync_partitions([])

    async def alter_partition(self, broker_id, topic_id, index, leader_epoch, partition_epoch, new_isr):
        me = self.me
        await me.running()

        async def serve():
            records, code, after = isr.alter_partition(self.sim.machine, broker_id, topic_id, index,
                                                       leader_epoch, partition_epoch, new_isr)
            self.sim.commit(records)
            return code, after

        reply = await self.sim.net.call(me.id, COORD, serve, 5.0, "alter")
        await me.running()
        return reply


# ---- brokers -----------------------------------------------------------------------------------
class SimBroker:
    def __init__(self, sim: "Cluster", broker_id: int, directory: Path) -> None:
        self.sim, self.id, self.directory = sim, broker_id, directory
        self.up = False
        self.incarnation = 0
        self._running = asyncio.Event()
        self._running.set()
        self.state: BrokerState | None = None
        self.view: CoordinatorView | None = None
        self.tasks: set[asyncio.Task] = set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def running(self) -> None:
        if not self._running.is_set():
            await self._running.wait()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def start(self) -> None:
        """A new incarnation: reopen the logs from the directory, register (fencing the old one)."""
        sim = self.sim
        self.incarnation += 1
        cfg = BrokerConfig(data_dir=self.directory, node_id=self.id, replica_lag_time_max_ms=REPLICA_LAG_MS,
                           min_insync_replicas=1, broker_session_timeout_ms=int(SESSION_TIMEOUT_S * 1000))
        state = BrokerState(cfg, clock=sim.loop.time)
        state.partitions = dict(state.logs.open())
        # checkpoints written at once: a worker thread runs on the real clock, and one left
        # running by a crash() would write after the restart (a process's threads die with it)
        state._checkpoints.in_thread = False
        self.view = CoordinatorView(sim, self)
        state.coordinator = self.view
        state.replicas.connect = lambda host, port, cid: SimConnection(sim, self.id, host, port, cid)
        self.state = state
        self.up = True
        host, port = sim.address(self.id)
        now = sim.loop.time()
        sim.commit(sim.machine.register_broker(self.id, host, port, None, uuid.uuid4(), int(now * 1000),
                                               listeners=[("INTERNAL", host, port)]))
        self.view.lease_until = now + 0.9 * SESSION_TIMEOUT_S
        self.view.deliver(sim.machine.metadata_offset, sim.machine.topics())
        for coro in (self._heartbeats(), self._ticks(), self._metadata()):
            task = sim.loop.create_task(coro)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def crash(self) -> None:
        """Like SIGKILL: what was written stays in the files, nothing else is flushed or saved."""
        self.up = False
        for t in list(self.tasks):
            t.cancel()
        state = self.state
        state.replicas.close()
        for plog in state.partitions.values():
            if plog.opened:
                for seg in plog._segments:
                    seg.close()
        state.logs._release_lock()   # the process is gone: its lock file is stale
        self._running.set()

    async def _heartbeats(self) -> None:
        sim, view = self.sim, self.view
        epoch = sim.machine.broker(self.id).epoch
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await self.running()
            sent, offset = sim.loop.time(), view.offset

            async def serve(offset=offset):
                records = sim.machine.broker_heartbeat(self.id, epoch, int(sim.loop.time() * 1000))
                sim.commit(records)
                info = sim.machine.broker(self.id)
                return info.fenced, offset >= sim.machine.metadata_offset - 1

            try:
                fenced, caught_up = await sim.net.call(self.id, COORD, serve, 2.0, "heartbeat")
            except CoordinatorError:
                continue
            await self.running()
            if not fenced and caught_up:
                view.lease_until = sent + 0.9 * SESSION_TIMEOUT_S

    async def _ticks(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(0.5)
            await self.running()
            self.state.replicas.tick()
            n += 1
            if n % 2 == 0:
                self.state.checkpoint_if_moved()

    async def _metadata(self) -> None:
        sim, view = self.sim, self.view
        while True:
            if view.offset >= sim.machine.metadata_offset:
                await sim.metadata_changed.wait()
                continue
            await self.running()
            offset, topics = sim.machine.metadata_offset, sim.machine.topics()
            await asyncio.sleep(0.001 + sim.meta_lag.get(self.id, 0.1) * sim.net.rng.random())
            await self.running()
            if sim.net.loss.get(frozenset((COORD, self.id)), 0.0) >= 1.0:
                await asyncio.sleep(0.1)   # cut off from the coordinator: try again
                continue
            view.deliver(offset, topics)


# ---- the cluster -------------------------------------------------------------------------------
class Cluster:
    def __init__(self, *, seed: int, partitions: int, min_isr: int, brokers: int = 3) -> None:
        self.loop = VirtualTimeLoop()
        self.tmp = Path(tempfile.mkdtemp(prefix="repl-sim-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        self.net = Network(self, random.Random(seed))
        self.machine = MetadataMachine()
        self.metadata_changed = asyncio.Event()
        self.meta_lag: dict[int, float] = {}
        self.coordinator = CoordinatorNode()
        self.brokers = {b: SimBroker(self, b, self.tmp / f"broker-{b}") for b in range(1, brokers + 1)}
        self.by_address = {self.address(b): b for b in self.brokers}
        self._background: list[asyncio.Task] = []
        self.errors: list[str] = []
        self.partitions = partitions
        self.min_isr = min_isr
        self.loop.run_until_complete(self._setup())

    @staticmethod
    def address(broker_id: int) -> tuple[str, int]:
        return f"broker-{broker_id}", 9090 + broker_id

    def node(self, node_id: int):
        return self.coordinator if node_id == COORD else self.brokers.get(node_id)

    async def _setup(self) -> None:
        for b in self.brokers.values():
            b.start()
        self.commit(self.machine.create_topic(TOPIC, self.partitions, len(self.brokers),
                                              {"min.insync.replicas": str(self.min_isr)}, uuid.uuid4()))
        for b in self.brokers.values():
            b.view.deliver(self.machine.metadata_offset, self.machine.topics())
        self._background.append(self.loop.create_task(self._fence_expired()))

    def commit(self, records: list) -> None:
        for r in records:
            self.machine.apply(r)
        if records:
            ev, self.metadata_changed = self.metadata_changed, asyncio.Event()
            ev.set()

    async def _fence_expired(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.commit(self.machine.fence_expired(int(self.loop.time() * 1000), int(SESSION_TIMEOUT_S * 1000)))

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def partition(self, index: int):
        return self.machine.topic(TOPIC).partitions[index]

    # ---- requests to brokers ------------------------------------------------------------------
    async def serve(self, broker_id: int, frame: bytes, seen: dict | None = None) -> bytes:
        """Handle one request frame on a broker with its real handler, as BrokerServer does."""
        state = self.brokers[broker_id].state
        api_key, version, corr = peek_header(frame)
        handler = REGISTRY[api_key]
        header, request = decode_produce_request(frame) if api_key == 0 else decode_request(frame)
        if seen is not None:   # the leader epoch the append stamps (read as the handler reads it)
            seen.update(leaders=dict(state.leaders), incarnation=self.brokers[broker_id].incarnation)
        ctx = RequestContext(state, api_key, version, corr, header.client_id, f"node-{broker_id}", "INTERNAL")
        if handler.is_async:
            result = await handler.handle(ctx, request)
        else:
            result = handler.handle(ctx, request)
            if asyncio.iscoroutine(result):
                if api_key == 0 and self.net.rng.random() < 0.3:
                    # pipelined: server.Connection appends a Produce behind a waiting acks=all one at
                    # once, but starts its wait only when the one ahead is answered, maybe after the
                    # partition has moved
                    await asyncio.sleep(self.net.rng.choice([0.01, 0.1, 0.3, 1.0]))
                result = await result
        if seen is not None:   # who the coordinator has as leaders when the broker decides its answer
            seen["decided"] = {(TOPIC, p.index): (p.leader, p.leader_epoch) for p in self.machine.topic(TOPIC).partitions}
        out = handler.encode(corr, version, result)   # the registry's encoder, fast codecs included
        return bytes(join_parts(out) if isinstance(out, list) else out)

    async def produce(self, broker_id: int, index: int, acks: int, values: list[bytes],
                      timeout_ms: int = 5000) -> tuple[int, int, dict]:
        """(error code, base offset, what the broker's metadata said at the append)."""
        batch = build_batch([(None, v) for v in values], timestamp_ms=int(self.loop.time() * 1000))
        body = build(request_class(0, 9), {"transactional_id": None, "acks": acks, "timeout": timeout_ms,
                                           "topic_data": [{"name": TOPIC, "partition_data": [
                                               {"index": index, "records": batch}]}]})
        frame = encode_request(RequestHeader(0, 9, 1, "sim-producer"), body)[4:]
        seen: dict = {}
        try:
            reply = await self.net.call(CLIENT, broker_id, lambda: self.serve(broker_id, frame, seen),
                                        timeout_ms / 1000 + 2.0, "produce")
        except CoordinatorError as e:
            return e.error_code, -1, seen
        _corr, resp = decode_response(bytes(reply)[4:], 0, 9)
        pr = resp.responses[0].partition_responses[0]
        return int(pr.error_code), int(pr.base_offset), seen

    # ---- teardown -----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            for b in self.brokers.values():
                if b.up:
                    b.crash()
            tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
