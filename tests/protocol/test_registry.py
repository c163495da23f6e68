"""The registry both services are built on, with stand-in handler modules: discovery from more
than one package, the ApiVersions answer derived from it, fast codecs per key, and dispatch."""

from __future__ import annotations

import asyncio
import logging
import sys
import types
from dataclasses import dataclass

import pytest

from sandbox.protocol import (
    CLOSE, FAST_CODECS, FastCodec, Registry, RequestHeader, build, decode_response, encode_request,
    request_class,
)
from sandbox.protocol import errors as E
from sandbox.protocol.registry import handler_of


@dataclass
class Ctx:
    owner: object
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    listener: str = "PLAINTEXT"


def module(name: str, api_key: int, lo: int, hi: int, handle, **extra) -> types.ModuleType:
    m = types.ModuleType(f"fake.{name}")
    m.API_KEY, m.MIN_VERSION, m.MAX_VERSION, m.handle = api_key, lo, hi, handle
    for k, v in extra.items():
        setattr(m, k, v)
    return m


def api_versions_handler(ctx, request):
    return REG.api_versions()


def metadata_handler(ctx, request):
    return {"brokers": [{"node_id": 7, "host": ctx.client_id, "port": 1}], "topics": []}


async def list_groups_handler(ctx, request):
    await asyncio.sleep(0)
    return {"error_code": 0, "groups": [{"group_id": ctx.owner, "protocol_type": "", "group_state": "Empty"}]}


def no_answer(ctx, request):
    return None


def broken(ctx, request):
    raise RuntimeError("a handler bug")


MODULES = [
    module("k00_produce", 0, 3, 9, no_answer, ADVERTISED_MIN_VERSION=0),
    module("k03_metadata", 3, 0, 12, metadata_handler),
    module("k16_list_groups", 16, 0, 4, list_groups_handler),
    module("k18_api_versions", 18, 0, 3, api_versions_handler),
    module("k32_describe_configs", 32, 1, 4, broken),
    module("k71_get_telemetry_subscriptions", 71, 0, 0, no_answer, ADVERTISED=False),
]
REG = Registry([handler_of(m) for m in MODULES], context=Ctx, log=logging.getLogger("test.registry"))


def frame(api_key: int, version: int, body: dict, corr: int = 9) -> bytes:
    entity = build(request_class(api_key, version), body)
    return encode_request(RequestHeader(api_key, version, corr, "client-a"), entity)[4:]


METADATA = {"topics": [], "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
API_VERSIONS = {"client_software_name": "t", "client_software_version": "1"}


# ---- ApiVersions
def test_api_versions_are_derived_from_the_handlers():
    # by key; the advertised minimum where a module declares one; a module with ADVERTISED = False
    # is answered but not listed
    assert REG.supported_versions() == [(0, 0, 9), (3, 0, 12), (16, 0, 4), (18, 0, 3), (32, 1, 4)]
    body = REG.api_versions(finalized_features_epoch=3)
    assert body["error_code"] == E.NONE and body["finalized_features_epoch"] == 3
    assert [(k["api_key"], k["min_version"], k["max_version"]) for k in body["api_keys"]] == REG.supported_versions()


def test_api_versions_answer_on_the_wire():
    out = REG.dispatch(frame(18, 3, API_VERSIONS), "owner", "peer")
    corr, resp = decode_response(out[4:], 18, 3)
    assert corr == 9 and int(resp.error_code) == E.NONE
    assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == REG.supported_versions()


def test_api_versions_at_an_unsupported_version_is_a_v0_answer_with_the_list():
    raw = bytearray(frame(18, 3, API_VERSIONS))
    raw[2:4] = (99).to_bytes(2, "big")    # a version from the future: its body is unknown too
    corr, resp = decode_response(REG.dispatch(bytes(raw), "owner", "peer")[4:], 18, 0)
    assert corr == 9 and int(resp.error_code) == E.UNSUPPORTED_VERSION
    assert [(k.api_key, k.min_version, k.max_version) for k in resp.api_keys] == REG.supported_versions()


# ---- dispatch
def test_sync_handler_sees_the_context_and_its_answer_is_encoded():
    out = REG.dispatch(frame(3, 12, METADATA), "owner", "peer")
    corr, resp = decode_response(out[4:], 3, 12)
    assert corr == 9 and [(b.node_id, b.host) for b in resp.brokers] == [(7, "client-a")]


def test_async_handler_answers_through_an_awaitable():
    out = REG.dispatch(frame(16, 4, {"states_filter": []}), "the-owner", "peer")
    assert asyncio.iscoroutine(out)
    corr, resp = decode_response(asyncio.run(out)[4:], 16, 4)
    assert [g.group_id for g in resp.groups] == ["the-owner"]


def test_no_answer_is_none():
    produce = {"transactional_id": None, "acks": 0, "timeout": 1000, "topic_data": []}
    assert REG.dispatch(frame(0, 9, produce), "owner", "peer") is None


@pytest.mark.parametrize("raw, said", [
    (b"\x00\x03\x00", "shorter than a request header"),
    (b"\x00\x63\x00\x00\x00\x00\x00\x01\xff\xff", "unsupported api_key=99 version=0"),
    (frame(3, 12, METADATA)[:12], "bad k03_metadata request"),
])
def test_what_closes_the_connection(raw, said, caplog):
    with caplog.at_level(logging.WARNING, "test.registry"):
        assert REG.dispatch(raw, "owner", "10.0.0.1:5") is CLOSE
    assert "closing connection from 10.0.0.1:5: " in caplog.text and said in caplog.text


def test_a_version_outside_the_handlers_range_closes(caplog):
    raw = bytearray(frame(3, 12, METADATA))
    raw[2:4] = (13).to_bytes(2, "big")
    with caplog.at_level(logging.WARNING, "test.registry"):
        assert REG.dispatch(bytes(raw), "owner", "peer") is CLOSE
    assert "unsupported api_key=3 version=13" in caplog.text


def test_a_failing_handler_closes_with_its_traceback(caplog):
    body = {"resources": [], "include_synonyms": False, "include_documentation": False}
    with caplog.at_level(logging.ERROR, "test.registry"):
        assert REG.dispatch(frame(32, 4, body), "owner", "peer") is CLOSE
    assert "k32_describe_configs v4 failed" in caplog.text and "a handler bug" in caplog.text


# ---- fast codecs
def test_a_fast_codec_answers_its_key():
    seen, handler_got = [], []

    def decode(raw):
        seen.append(type(raw))
        return RequestHeader(3, 12, 9, "fast"), "decoded"

    codec = FastCodec(3, 0, 13, decode=decode, encode=lambda corr, ver, result: [b"parts", corr, ver, result],
                      frame_views=True)
    handle = lambda ctx, request: handler_got.append(request) or "answer"  # noqa: E731
    reg = Registry([handler_of(module("k03_metadata", 3, 0, 12, handle), codec)], context=Ctx)
    assert reg.writable_keys == {3}
    assert reg.dispatch(bytearray(frame(3, 12, METADATA)), "owner", "peer") == [b"parts", 9, 12, "answer"]
    assert seen == [bytearray] and handler_got == ["decoded"]


def test_a_fast_codec_must_cover_the_handlers_versions():
    with pytest.raises(ValueError, match="covers v0-v5"):
        handler_of(MODULES[1], FastCodec(3, 0, 5, encode=lambda *a: b""))


def test_the_shipped_fast_codecs_are_one_per_key():
    keys = [c.api_key for c in FAST_CODECS]
    assert sorted(keys) == sorted(set(keys)) == [0, 1, 3, 24, 26]
    assert [c.api_key for c in FAST_CODECS if c.frame_views] == [0]


# ---- discovery
def _package(root, name: str, modules: dict[str, int]) -> None:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text('"""test package"""\n')
    (pkg / "common.py").write_text('"""not a handler"""\n')
    for mod, key in modules.items():
        (pkg / f"{mod}.py").write_text(f'"""k"""\nAPI_KEY = {key}\nMIN_VERSION = 0\nMAX_VERSION = 2\n'
                                       f'def handle(ctx, request):\n    return {{}}\n')


@pytest.fixture
def packages(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in ("svc_own", "svc_shared", "svc_clash")]:
        del sys.modules[name]


def test_discovery_from_two_packages(packages):
    _package(packages, "svc_own", {"k03_metadata": 3, "k18_api_versions": 18})
    _package(packages, "svc_shared", {"k32_describe_configs": 32})
    reg = Registry.discover("svc_own", "svc_shared", context=Ctx)
    assert list(reg) == [3, 18, 32] and reg.get(32).name == "k32_describe_configs"
    assert 5 not in reg and len(reg) == 3


def test_one_key_in_two_packages_is_an_error(packages):
    _package(packages, "svc_own", {"k03_metadata": 3})
    _package(packages, "svc_clash", {"k03_other_metadata": 3})
    with pytest.raises(RuntimeError, match="two handlers for api key 3"):
        Registry.discover("svc_own", "svc_clash", context=Ctx)


def test_a_fast_codec_without_a_handler_is_an_error(packages):
    _package(packages, "svc_own", {"k03_metadata": 3})
    with pytest.raises(ValueError, match=r"without a handler: \[1\]"):
        Registry.discover("svc_own", context=Ctx, fast=[FastCodec(1, 0, 2, encode=lambda *a: b"")])


def test_the_registry_reads_as_a_mapping_in_key_order():
    assert list(REG) == [0, 3, 16, 18, 32, 71] and REG[3].name == "k03_metadata"
    assert REG.get(5) is None and 5 not in REG and len(REG) == 6
    assert [k for k, _h in REG.items()] == list(REG)
