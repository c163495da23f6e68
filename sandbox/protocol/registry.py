"""The request registry both services are built on: handler modules found per API key, the
ApiVersions answer derived from them, fast codecs registered per key, and dispatch of one frame.
Pure: no sockets, no event loop; an async handler's answer is an awaitable the server awaits."""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator

from . import errors
from .build import build
from .codec import API_VERSIONS_KEY, DecodeError, decode_request, encode_response, peek_header, response_class

#: dispatch's answer when the connection must be closed (bad bytes, an API we lack, a handler bug)
CLOSE = False


@dataclass(frozen=True)
class FastCodec:
    """A hand-rolled codec for one API key, used instead of kio's generic one for the versions
    it covers. decode(frame) -> (header, request); encode(correlation_id, version, result) ->
    the response frame as bytes or as a list of parts (see fast.join_parts). frame_views: the
    decoded request holds views into the frame that its handler may write through, so the
    frame must arrive as a bytearray."""

    api_key: int
    min_version: int
    max_version: int
    decode: Callable[[Any], tuple[Any, Any]] | None = None
    encode: Callable[[int, int, Any], Any] | None = None
    frame_views: bool = False


def _generic_decode(frame) -> tuple[Any, Any]:
    return decode_request(frame if isinstance(frame, bytes) else bytes(frame))


def _generic_encode(correlation_id: int, api_version: int, api_key: int, result: Any) -> bytes:
    return encode_response(correlation_id, build(response_class(api_key, api_version), result))


@dataclass(frozen=True)
class Handler:
    """One handler module: its key, the versions it answers (and advertises), handle(ctx, request)
    returning a dict shaped like the response (None: no response), and its codec."""

    api_key: int
    min_version: int
    max_version: int
    advertised_min: int
    handle: Callable[..., Any]
    is_async: bool
    name: str
    advertised: bool = True
    fast: FastCodec | None = None

    def decode(self, frame) -> tuple[Any, Any]:
        """(header, request) of a frame of this key at a supported version; DecodeError if bad."""
        if self.fast is not None and self.fast.decode is not None:
            return self.fast.decode(frame)
        return _generic_decode(frame)

    def encode(self, correlation_id: int, api_version: int, result: Any):
        """The response frame for the handler's result (bytes, or parts from a fast encoder);
        None when the handler answered None (no response, e.g. Produce with acks=0)."""
        if result is None:
            return None
        if self.fast is not None and self.fast.encode is not None:
            return self.fast.encode(correlation_id, api_version, result)
        return _generic_encode(correlation_id, api_version, self.api_key, result)


def handler_of(module: Any, fast: FastCodec | None = None) -> Handler:
    """A Handler from a module's API_KEY, MIN_VERSION, MAX_VERSION and handle(); optional:
    ADVERTISED_MIN_VERSION (a lower minimum ApiVersions lists), ADVERTISED = False (answered but
    not listed, as Kafka answers the telemetry APIs)."""
    h = Handler(
        module.API_KEY, module.MIN_VERSION, module.MAX_VERSION,
        getattr(module, "ADVERTISED_MIN_VERSION", module.MIN_VERSION), module.handle,
        inspect.iscoroutinefunction(module.handle), module.__name__.rpartition(".")[2],
        getattr(module, "ADVERTISED", True), fast,
    )
    if fast is not None and not fast.min_version <= h.min_version <= h.max_version <= fast.max_version:
        raise ValueError(f"fast codec for api key {h.api_key} covers v{fast.min_version}-v{fast.max_version}, "
                         f"not {h.name}'s v{h.min_version}-v{h.max_version}")
    return h


def handler_modules(package: str) -> Iterator[Any]:
    """The kNN_name modules of a package, imported, in name order."""
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("k") and info.name[1:3].isdigit():
            yield importlib.import_module(f"{package}.{info.name}")


class Registry(Mapping[int, Handler]):
    """The handlers of one service by API key (a read-only mapping, keys in order), and what
    follows from them: ApiVersions and dispatch. context(owner, api_key, api_version, correlation_id, client_id, peer, *extra) builds
    what a handler sees; log gets one line per connection that dispatch closes."""

    def __init__(self, handlers: Iterable[Handler], context: Callable[..., Any],
                 log: logging.Logger | None = None) -> None:
        self.handlers: dict[int, Handler] = {}
        for h in handlers:
            if h.api_key in self.handlers:
                raise RuntimeError(f"two handlers for api key {h.api_key}: {self.handlers[h.api_key].name}, {h.name}")
            self.handlers[h.api_key] = h
        self.context = context
        self.log = log or logging.getLogger(__name__)
        #: api keys whose frames must arrive writable (see FastCodec.frame_views)
        self.writable_keys = frozenset(k for k, h in self.handlers.items() if h.fast and h.fast.frame_views)

    @classmethod
    def discover(cls, *packages: str, context: Callable[..., Any], fast: Iterable[FastCodec] = (),
                 log: logging.Logger | None = None) -> "Registry":
        """Every kNN_name handler module of the given packages (an API key in two is an error);
        fast: the hand-rolled codecs this service answers its keys with."""
        codecs = {c.api_key: c for c in fast}
        handlers = [handler_of(m, codecs.get(m.API_KEY)) for p in packages for m in handler_modules(p)]
        registry = cls(handlers, context, log)
        unused = set(codecs) - set(registry.handlers)
        if unused:
            raise ValueError(f"fast codecs for api keys without a handler: {sorted(unused)}")
        return registry

    # ---- lookup
    def __getitem__(self, api_key: int) -> Handler:
        return self.handlers[api_key]

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self.handlers))

    def __len__(self) -> int:
        return len(self.handlers)

    # ---- ApiVersions
    def supported_versions(self) -> list[tuple[int, int, int]]:
        """(api key, min, max) as ApiVersions advertises them, by key."""
        return [(k, h.advertised_min, h.max_version) for k, h in sorted(self.handlers.items()) if h.advertised]

    def api_versions(self, **extra: Any) -> dict:
        """The ApiVersions answer (a response dict); extra: fields of later versions (features)."""
        keys = [{"api_key": k, "min_version": lo, "max_version": hi} for k, lo, hi in self.supported_versions()]
        return {"error_code": errors.NONE, "api_keys": keys, "throttle_time": 0, **extra}

    def unsupported_version_response(self, correlation_id: int) -> bytes:
        """ApiVersions at a version we lack: the v0 body with UNSUPPORTED_VERSION and the full
        list, so librdkafka and the Java client retry at a version we speak."""
        body = self.api_versions()
        body["error_code"] = errors.UNSUPPORTED_VERSION
        return encode_response(correlation_id, build(response_class(API_VERSIONS_KEY, 0), body))

    # ---- dispatch
    def dispatch(self, frame, owner: Any, peer: str, *extra: Any):
        """Answer one request frame: the encoded reply (bytes, or a list of parts from a fast
        encoder), None for no reply, CLOSE (False) to close the connection; for an async handler
        an awaitable giving the same. owner and extra go to the context (see Registry)."""
        log = self.log
        try:
            api_key, api_version, correlation_id = peek_header(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: %s", peer, e)
            return CLOSE
        handler = self.handlers.get(api_key)
        if handler is None or not handler.min_version <= api_version <= handler.max_version:
            if api_key == API_VERSIONS_KEY:  # answer in v0 format so the client can retry lower
                return self.unsupported_version_response(correlation_id)
            log.warning("closing connection from %s: unsupported api_key=%d version=%d", peer, api_key, api_version)
            return CLOSE
        try:
            header, request = handler.decode(frame)
        except DecodeError as e:
            log.warning("closing connection from %s: bad %s request: %s", peer, handler.name, e)
            return CLOSE
        ctx = self.context(owner, api_key, api_version, correlation_id, header.client_id, peer, *extra)
        try:
            answer = handler.handle(ctx, request)
            if handler.is_async or inspect.isawaitable(answer):
                # an async handler, or one that answers at once but must wait this time
                # (Produce with acks=all on a replicated partition)
                return self._finish(handler, ctx, answer, peer)
            return handler.encode(correlation_id, api_version, answer)
        except Exception:
            log.exception("closing connection from %s: %s v%d failed", peer, handler.name, api_version)
            return CLOSE

    async def _finish(self, handler: Handler, ctx: Any, answer: Any, peer: str):
        try:
            return handler.encode(ctx.correlation_id, ctx.api_version, await answer)
        except Exception:
            self.log.exception("closing connection from %s: %s v%d failed", peer, handler.name, ctx.api_version)
            return CLOSE
