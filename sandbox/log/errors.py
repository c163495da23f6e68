"""Exceptions raised by the journal (sandbox.log).

Each maps onto a Kafka error code the broker returns; UnrecoverableJournalError means a human must look.
"""


class LogError(Exception):
    """Base class of every journal error."""


class CorruptRecordError(LogError):
    """Bad CRC, bad magic byte or bad framing (Kafka CORRUPT_MESSAGE, code 2)."""


class RecordTooLargeError(LogError):
    """A batch is larger than max.message.bytes (Kafka MESSAGE_TOO_LARGE, code 10)."""


class InvalidRecordError(LogError):
    """A well-framed batch the broker refuses, e.g. magic 0/1 or no records (INVALID_RECORD, 87)."""


class OffsetOutOfRangeError(LogError):
    """The requested offset is below the log start or above the log end (code 1)."""


class OutOfOrderSequenceError(LogError):
    """An idempotent producer skipped or reordered sequence numbers (code 45); `expected` is the
    sequence the partition waits for, when known."""

    def __init__(self, message: str, expected: int | None = None) -> None:
        super().__init__(message)
        self.expected = expected


class InvalidProducerEpochError(LogError):
    """An idempotent producer used an epoch older than the latest one seen (code 47)."""


class TransactionCoordinatorFencedError(LogError):
    """A transaction marker from an older coordinator epoch than the producer's last marker had
    (TRANSACTION_COORDINATOR_FENCED, code 52): a zombie coordinator's."""


class InvalidTxnStateError(LogError):
    """A producer wrote outside the transaction it has open here (INVALID_TXN_STATE, code 48)."""


class UnrecoverableJournalError(LogError):
    """Acknowledged data is damaged or the journal is locked: refuse to start rather than lose data."""


class JournalLockedError(UnrecoverableJournalError):
    """Another live process holds the journal's lock: nothing is damaged, so nothing may be moved."""
