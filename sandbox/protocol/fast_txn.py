"""Hand-rolled response encoders for the two requests a transactional producer sends every
transaction, AddPartitionsToTxn (24, v0-v3; v4+ through kio) and EndTxn (26, v0-v5),
byte-identical to kio's: its generic entity building costs more than the handlers' own work."""

from __future__ import annotations

import struct

from .fast import _I16, _I32, _ms, _put_array_len, _put_string, _response_start
from .registry import FastCodec, _generic_encode

_PART = struct.Struct(">ih")      # partition index, error code
_ID_EPOCH = struct.Struct(">qh")  # producer id, producer epoch (EndTxn v5)


def _finish(out: bytearray) -> bytes:
    _I32.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def encode_add_partitions_response(correlation_id: int, version: int, body: dict) -> bytes:
    """The whole AddPartitionsToTxn response frame (size prefix included)."""
    if version >= 4:   # the batched form brokers send: rare, left to kio
        return _generic_encode(correlation_id, version, 24, body)
    flexible = version >= 3
    out = _response_start(correlation_id, flexible)
    out += _I32.pack(_ms(body.get("throttle_time", 0)))
    topics = body["results_by_topic_v3_and_below"]
    _put_array_len(out, len(topics), flexible)
    for t in topics:
        _put_string(out, t["name"], flexible)
        parts = t["results_by_partition"]
        _put_array_len(out, len(parts), flexible)
        for p in parts:
            out += _PART.pack(p["partition_index"], int(p["partition_error_code"]))
            if flexible:
                out.append(0)
        if flexible:
            out.append(0)
    if flexible:
        out.append(0)
    return _finish(out)


def encode_end_txn_response(correlation_id: int, version: int, body: dict) -> bytes:
    """The whole EndTxn response frame (size prefix included)."""
    flexible = version >= 3
    out = _response_start(correlation_id, flexible)
    out += _I32.pack(_ms(body.get("throttle_time", 0)))
    out += _I16.pack(int(body["error_code"]))
    if version >= 5:
        out += _ID_EPOCH.pack(body.get("producer_id", -1), body.get("producer_epoch", -1))
    if flexible:
        out.append(0)
    return _finish(out)


#: registered per API key (see sandbox.protocol.registry)
FAST_CODECS = (
    FastCodec(24, 0, 5, encode=encode_add_partitions_response),
    FastCodec(26, 0, 5, encode=encode_end_txn_response),
)
