"""sandbox.log: the partition journal (Kafka v2 record batches in segments, indexes, recovery, retention).

Imports only the stdlib and crc32c; knows nothing of the network.
"""
from .errors import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTxnStateError,
    LogError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    RecordTooLargeError,
    JournalLockedError,
    TransactionCoordinatorFencedError,
    UnrecoverableJournalError,
)
from .batch import HEADER_SIZE, BatchHeader, build_batch, iter_batches, iter_records, parse_header, validate_batches
from .config import LogConfig
from .partition import AppendInfo, PartitionLog
from .reading import MAX_TIMESTAMP
from .slices import LogSlices
from .manager import LogDir

__all__ = [
    "AppendInfo", "BatchHeader", "LogSlices", "MAX_TIMESTAMP", "CorruptRecordError", "HEADER_SIZE", "InvalidProducerEpochError",
    "InvalidRecordError", "InvalidTxnStateError", "LogConfig", "LogDir", "LogError", "OffsetOutOfRangeError",
    "OutOfOrderSequenceError", "PartitionLog", "RecordTooLargeError", "TransactionCoordinatorFencedError",
    "UnrecoverableJournalError", "JournalLockedError",
    "build_batch", "iter_batches", "iter_records", "parse_header", "validate_batches",
]
