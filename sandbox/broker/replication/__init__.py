"""Replication in the broker: followers fetch from leaders, leaders keep the ISR and the high
watermark, acks=all waits for the ISR (see manager.py)."""

from .manager import ReplicaManager

__all__ = ["ReplicaManager"]
