"""DescribeLogDirs v4 with tagged fields that this sandbox's brokers add when the request asks
for them (its own tagged field): per partition, the topic id the partition folder's
partition.metadata names and when that file was written, by the broker's clock; and in the
answer, the broker's clock when it answered. Kafka
has no API that tells another broker which topic a folder holds; a broker putting back a topic
the metadata lost (a destroyed coordinator journal) needs it to rank the other brokers' folders:
a folder of an older topic of that name (deleted and made again while its broker was paused) must
never lead the newer one. The supervisor's catalog keeps each broker's clock at its refresh next
to its own time, so it tells a folder written after the catalog on the broker's clock alone (in
Docker mode the brokers run on Docker Desktop's VM, whose clock can drift from the host's).
Tagged fields are the protocol's open part: a client that does not know a tag may skip it
(KIP-482; kio, for one, refuses it instead), and a response without them reads as "not known"
(the zero id, -1). Only a request that carries the asking tag gets them, so no other client ever
sees them.
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

from .scram_keys import EXTENDED_REQUESTS as _SCRAM_REQUESTS, EXTENDED_RESPONSES as _SCRAM_RESPONSES

TOPIC_ID_TAG = 10000
WRITTEN_MS_TAG = 10001
NOW_MS_TAG = 10002
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


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderTopic(DescribeLogDirsTopic):
    partitions: tuple[FolderPartition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderResult(DescribeLogDirsResult):
    topics: tuple[FolderTopic, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderLogDirsResponse(DescribeLogDirsResponse):
    results: tuple[FolderResult, ...]
    now_ms: i64 = field(metadata={"kafka_type": "int64", "tag": NOW_MS_TAG}, default=i64(-1))
    """The broker's clock when it answered, in ms since the epoch (-1: not told)."""


#: (api key, version) -> the classes this sandbox reads and writes instead of kio's (with
#: scram_keys.py's)
EXTENDED_REQUESTS: dict[tuple[int, int], type] = {(35, 4): FolderLogDirsRequest, **_SCRAM_REQUESTS}
EXTENDED_RESPONSES: dict[tuple[int, int], type] = {(35, 4): FolderLogDirsResponse, **_SCRAM_RESPONSES}
