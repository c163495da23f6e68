"""Finalized features (KIP-584) as Kafka's KRaft controller keeps them, pure: what this software
supports, what is finalized (metadata.version 25 = 4.0-IV3, the level of the Kafka 4.0 APIs the
brokers advertise), and UpdateFeatures' checks, with the controller's refusals and messages."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from sandbox.protocol.errors import INVALID_UPDATE_VERSION, NONE

METADATA_VERSION = "metadata.version"
UNKNOWN, UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 0, 1, 2, 3
CONTROLLER = "Local controller 0"
# feature -> (min, max) level this sandbox can honour; metadata.version 7 = 3.3-IV3, 25 = 4.0-IV3
SUPPORTED: dict[str, tuple[int, int]] = {METADATA_VERSION: (7, 25)}
DEFAULT_LEVELS: dict[str, int] = {METADATA_VERSION: 25}


def finalized(stored: Mapping[str, int]) -> dict[str, int]:
    """Every finalized feature: the defaults a fresh cluster starts with, then what was updated
    (a level of 0 removes a feature, except metadata.version)."""
    levels = {**DEFAULT_LEVELS, **stored}
    return {k: v for k, v in sorted(levels.items()) if v > 0 or k == METADATA_VERSION}


def _refusal(name: str, level: int, upgrade_type: int, current: int) -> str | None:
    if upgrade_type not in (UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE):
        return "The controller does not support the given upgrade type."
    if level < 0:
        return "A feature version cannot be less than 0."
    lo, hi = SUPPORTED.get(name, (0, 0))
    if not lo <= level <= hi and not (level == 0 and name != METADATA_VERSION):
        if hi == 0:
            return f"{CONTROLLER} does not support this feature."
        return f"{CONTROLLER} only supports versions [{lo}-{hi}]"
    if level < current and upgrade_type == UPGRADE:
        return ("Can't downgrade the version of this feature without setting the upgrade type to "
                "either safe or unsafe downgrade.")
    if level > current and upgrade_type != UPGRADE:
        return "Can't downgrade to a newer version."
    return None


def _metadata_refusal(level: int, upgrade_type: int, current: int) -> str | None:
    if level < current:   # every level since 3.3 changed the metadata: Kafka refuses both kinds
        if upgrade_type == UNSAFE_DOWNGRADE:
            return "Unsafe metadata downgrade is not supported in this version."
        return ("Refusing to perform the requested downgrade because it might delete metadata "
                "information. Retry using UNSAFE_DOWNGRADE if you want to force the downgrade to proceed.")
    return None


def updates(stored: Mapping[str, int], wanted: Sequence[tuple[str, int, int]]
            ) -> tuple[list[dict[str, Any]], dict[str, tuple[int, str | None]]]:
    """Journal records and per-feature (error code, message) for UpdateFeatures' (feature, max
    level, upgrade type) triples: a record for each accepted feature, none for a refused one."""
    levels = finalized(stored)
    records: list[dict[str, Any]] = []
    results: dict[str, tuple[int, str | None]] = {}
    for name, level, upgrade_type in wanted:
        current = levels.get(name, 0)
        reason = _refusal(name, level, upgrade_type, current)
        if reason is None and name == METADATA_VERSION:
            reason = _metadata_refusal(level, upgrade_type, current)
            if reason is not None:
                results[name] = (INVALID_UPDATE_VERSION, f"Invalid metadata.version {level}. {reason}")
                continue
        if reason is not None:
            results[name] = (INVALID_UPDATE_VERSION, f"Invalid update version {level} for feature {name}. {reason}")
            continue
        records.append({"type": "feature-level", "name": name, "level": level})
        results[name] = (NONE, None)
    return records, results


def apply(stored: dict[str, int], record: Mapping[str, Any]) -> None:
    stored[str(record["name"])] = int(record["level"])


# ---- requests and responses (the broker's and the coordinator's handlers share these) -------------

def wanted_of(request, version: int) -> list[tuple[str, int, int]]:
    """(feature, level, upgrade type) per update; v0 says allow_downgrade instead of a type."""
    out = []
    for u in request.feature_updates:
        if version == 0:
            kind = SAFE_DOWNGRADE if getattr(u, "allow_downgrade", False) else UPGRADE
        else:
            kind = int(u.upgrade_type)
        out.append((u.feature, int(u.max_version_level), kind))
    return out


def update_response(results: Mapping[str, tuple[int, str | None]], version: int) -> dict:
    """v0-v1 list each feature's result; v2 has none, so the first refusal is the top-level error."""
    failed = [(code, msg) for code, msg in results.values() if code != NONE]
    top = failed[0] if version >= 2 and failed else (NONE, None)
    return {"throttle_time": 0, "error_code": top[0], "error_message": top[1], "results": [
        {"feature": name, "error_code": code, "error_message": msg} for name, (code, msg) in results.items()]}


def api_versions_fields(levels: Mapping[str, int], epoch: int) -> dict:
    """ApiVersions v3+'s supported and finalized features and their epoch (the metadata offset)."""
    return {"supported_features": [{"name": n, "min_version": lo, "max_version": hi} for n, (lo, hi) in SUPPORTED.items()],
            "finalized_features": [{"name": n, "min_version_level": v, "max_version_level": v}
                                   for n, v in levels.items()],
            "finalized_features_epoch": epoch}
