"""Kafka wire protocol, sans-io: framing and codec over kio. Bytes in, entities out."""

from .build import build, field_names
from .codec import (
    DecodeError,
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    peek_header,
    request_class,
    response_class,
)
from .framing import DEFAULT_MAX_FRAME, FrameBuffer, FrameError, frame, frame_size
from .fast import decode_produce_request, encode_fetch_response, encode_produce_response, join_parts
from . import fast, fast_metadata, fast_txn
from .registry import CLOSE, FastCodec, Handler, Registry

#: every hand-rolled codec, by the API key it answers (a service opts in: Registry.discover(fast=...))
FAST_CODECS = fast.FAST_CODECS + fast_metadata.FAST_CODECS + fast_txn.FAST_CODECS

__all__ = [
    "build", "field_names", "DecodeError", "RequestHeader", "decode_request", "decode_response",
    "encode_request", "encode_response", "peek_header", "request_class", "response_class",
    "DEFAULT_MAX_FRAME", "FrameBuffer", "FrameError", "frame", "frame_size",
    "decode_produce_request", "encode_fetch_response", "encode_produce_response", "join_parts",
    "CLOSE", "FAST_CODECS", "FastCodec", "Handler", "Registry",
]
