"""Builds kio entities of any API version from plain Python values.

Handlers describe a response once as dicts/ints; `build(cls, data)` keeps the fields the
version has, converts ints to ErrorCode/timedelta/datetime as the schema wants, and recurses.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from functools import cache
from types import EllipsisType, NoneType, UnionType
from typing import Any, Callable, Union, get_args, get_origin

from kio.schema.errors import ErrorCode

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)


def _error_code(v: Any) -> ErrorCode:
    return v if isinstance(v, ErrorCode) else ErrorCode(int(v))


def _td(v: Any) -> datetime.timedelta:
    return v if isinstance(v, datetime.timedelta) else datetime.timedelta(milliseconds=int(v))


def _dt(v: Any) -> datetime.datetime | None:
    if v is None or isinstance(v, datetime.datetime):
        return v
    v = int(v)
    if v < 0:
        return None
    return _EPOCH + datetime.timedelta(milliseconds=v)


def _uuid(v: Any) -> uuid.UUID | None:
    if v is None or isinstance(v, uuid.UUID):
        return v
    return uuid.UUID(bytes=v) if isinstance(v, bytes) else uuid.UUID(str(v))


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "error_code": _error_code,
    "timedelta_i32": _td,
    "timedelta_i64": _td,
    "datetime_i64": _dt,
    "uuid": _uuid,
}


def _entity_of(tp: Any) -> type | None:
    """The nested entity class of a field type like tuple[X, ...], X | None or tuple[X, ...] | None."""
    for _ in range(2):
        if get_origin(tp) in (UnionType, Union):
            args = [a for a in get_args(tp) if a is not NoneType]
            tp = args[0] if len(args) == 1 else tp
        if get_origin(tp) is tuple:
            args = get_args(tp)
            if len(args) == 2 and isinstance(args[1], EllipsisType):
                tp = args[0]
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def _is_tuple(tp: Any) -> bool:
    if get_origin(tp) in (UnionType, Union):
        return any(get_origin(a) is tuple for a in get_args(tp))
    return get_origin(tp) is tuple


@cache
def _plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None, type | None, bool, bool], ...]:
    plan = []
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        conv = _CONVERT.get(kafka_type) if kafka_type else None
        nested = _entity_of(f.type)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        plan.append((f.name, conv, nested, _is_tuple(f.type), has_default))
    return tuple(plan)


def build(cls: type, data: Any) -> Any:
    """Build `cls` from a dict (extra keys ignored, missing ones take defaults)."""
    if data is None or isinstance(data, cls):
        return data
    kwargs = {}
    for name, conv, nested, is_tuple, has_default in _plan(cls):
        if name not in data:
            if has_default:
                continue
            if is_tuple:
                kwargs[name] = ()
                continue
            if conv is _td:  # throttle times: zero unless said otherwise
                kwargs[name] = _td(0)
                continue
            raise KeyError(f"{cls.__qualname__}.{name} is required")
        v = data[name]
        if nested is not None:
            if is_tuple:
                v = None if v is None else tuple(build(nested, item) for item in v)
            else:
                v = build(nested, v)
        elif conv is not None and v is not None:
            v = tuple(conv(item) for item in v) if is_tuple else conv(v)   # e.g. an array of uuids
        elif is_tuple and v is not None and not isinstance(v, tuple):
            v = tuple(v)
        kwargs[name] = v
    return cls(**kwargs)


def field_names(cls: type) -> frozenset[str]:
    return frozenset(p[0] for p in _plan(cls))
