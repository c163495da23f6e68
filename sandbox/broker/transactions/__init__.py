"""Kafka's transaction coordinator: records of `__transaction_state` (records.py), the pure state
machine (machine.py), the topic-backed store (store.py), marker dispatch (markers.py) and the
coordinator tying them together with its housekeeping (coordinator.py)."""

from .coordinator import TxnCoordinator

__all__ = ["TxnCoordinator"]
