"""The log config a partition of this broker gets: its topic's own configs over the defaults,
which are the broker's static settings ([broker] in sandbox.toml) overlaid with the dynamic ones
set while the cluster runs (KIP-226: the cluster-wide default, then this broker's own). Rebuilt
only when the dynamic defaults change."""

from __future__ import annotations

import logging
from typing import Any

from sandbox.coordinator import broker_configs
from sandbox.log import LogConfig

log = logging.getLogger("sandbox.broker")


class LogDefaults:
    def __init__(self, static: LogConfig, node_id: int) -> None:
        self.static = static
        self.node_id = node_id
        self._key: tuple = ()
        self._base = static

    def base(self, coordinator: Any) -> LogConfig:
        """The defaults now: static settings, then dynamic ones (asked of the metadata). Ones the
        log cannot take (the coordinator checks them first, so only from a newer or hand-edited
        journal) are left out with a warning: they never stop the broker."""
        dyn = broker_configs.topic_defaults(coordinator.broker_configs(), self.node_id) if coordinator else {}
        key = tuple(sorted((k, v) for k, (v, _source) in dyn.items()))
        if key != self._key:
            base = self.static
            for k, v in key:
                try:
                    base = LogConfig.from_topic_config({k: v}, base=base)
                except ValueError as e:
                    log.warning("dynamic broker config for %s=%r not applied: %s", k, v, e)
            self._key, self._base = key, base
        return self._base

    def log_config(self, configs: dict[str, str], base: LogConfig) -> LogConfig:
        """One topic's log config over `base` (self.base(...))."""
        if configs.get("cleanup.policy") == "":
            # KAFKA-19112: an empty cleanup.policy keeps every record and compacts none, which the
            # log expresses as delete with unlimited retention (retention.* do not apply then)
            configs = {**configs, "cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}
        return LogConfig.from_topic_config(configs, base=base) if configs else base
