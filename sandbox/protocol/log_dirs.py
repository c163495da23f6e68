"""DescribeLogDirs v4 with tagged fields per partition that this sandbox's brokers add when the
request asks for them (its own tagged field): the topic id the partition folder's
partition.metadata names, when that file was written, and how long before the answer that was (by
the answering broker's clock, so a reader on another clock, a supervisor on the host of Docker
Desktop's VM whose clock drifted after the laptop slept, still tells which folder was written
after its catalog: `written_at`). Kafka
has no API that tells another broker which topic a folder holds; a broker putting back a topic
the metadata lost (a destroyed coordinator journal) needs it to rank the other brokers' folders:
a folder of an older topic of that name (deleted and made again while its broker was paused) must
never lead the newer one. Tagged fields are the protocol's open part: any client that does not
know a tag skips it (KIP-482), and a response without them reads as "not known" (the zero id).
Only a request that carries the asking tag gets them (kio, for one, refuses a tag it does not
know), so no other client ever sees them.
The tags are far above the ones Kafka numbers from 0, so a future Kafka field is not mistaken
for them. codec.response_class answers these classes for (35, 4), so the broker's handler and
every reader of that response use them; they are subclasses of kio's, so nothing else changes."""


import uuid
from dataclasses import dataclass, field

from kio.schema.describe_log_dirs.v4.request import DescribeLogDirsRequest
from kio.schema.describe_log_dirs.v4.response import (
    DescribeLogDirsPartition,
    DescribeLogDirsResponse,
    DescribeLogDirsResult,
    DescribeLogDirsTopic,
)
from kio.static.constants import uuid_zero
from kio.static.primitive import i64

TOPIC_ID_TAG = 10000
WRITTEN_MS_TAG = 10001
AGE_MS_TAG = 10002
ASK_TAG = 10000


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderLogDirsRequest(DescribeLogDirsRequest):
    folder_ids: bool = field(metadata={"kafka_type": "bool", "tag": ASK_TAG}, default=False)
    """Answer each partition's folder topic id and when its partition.metadata was written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderPartition(DescribeLogDirsPartition):
    topic_id: uuid.UUID = field(metadata={"kafka_type": "uuid", "tag": TOPIC_ID_TAG}, default=uuid_zero)
    """The topic id the folder's partition.metadata names (zero: none, or not told)."""
    metadata_written_ms: i64 = field(metadata={"kafka_type": "int64", "tag": WRITTEN_MS_TAG}, default=i64(-1))
    """When that file was last written, in ms since the epoch (-1: not known)."""
    metadata_age_ms: i64 = field(metadata={"kafka_type": "int64", "tag": AGE_MS_TAG}, default=i64(-1))
    """How long before the answer that was, in ms, by the answering broker's clock (-1: not told,
    a broker of an earlier version)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderTopic(DescribeLogDirsTopic):
    partitions: tuple[FolderPartition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderResult(DescribeLogDirsResult):
    topics: tuple[FolderTopic, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderLogDirsResponse(DescribeLogDirsResponse):
    results: tuple[FolderResult, ...]


def written_at(partition, received_at: float) -> float | None:
    """When a told folder's partition.metadata was written, in seconds since the epoch by the
    reader's clock (`received_at`: its time when the answer came): from the age where the broker
    told it (the clocks' difference drops out; the answer's travel, milliseconds, is counted as
    age), else the broker's own time; None if neither was told."""
    age = getattr(partition, "metadata_age_ms", -1)
    if age >= 0:
        return received_at - age / 1000
    written = getattr(partition, "metadata_written_ms", -1)
    return written / 1000 if written >= 0 else None


#: (api key, version) -> the classes this sandbox reads and writes instead of kio's
EXTENDED_REQUESTS: dict[tuple[int, int], type] = {(35, 4): FolderLogDirsRequest}
EXTENDED_RESPONSES: dict[tuple[int, int], type] = {(35, 4): FolderLogDirsResponse}
