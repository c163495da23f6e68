"""DescribeUserScramCredentials v0 with tagged fields this sandbox's brokers add when the request
asks for them (its own tagged field) and the asker is a super user: per credential, the salt and
the stored and server keys (RFC 5802), what the coordinator's journal keeps, never a password.
The supervisor's catalog keeps them, so users made with Kafka's tools (`kafka-configs --alter
--add-config 'SCRAM-SHA-256=[...]'`, an admin client's `alter_user_scram_credentials`) come back
with a fresh journal after the old one was destroyed, as the topics do. Kafka has no API that
answers them: AlterUserScramCredentials takes a salted password, from which the keys are made and
which cannot be made back from them. As with log_dirs.py, only a request that carries the asking
tag gets them, so no other client ever sees them, and the tags are far above Kafka's."""

from dataclasses import dataclass, field

from kio.schema.describe_user_scram_credentials.v0.request import DescribeUserScramCredentialsRequest
from kio.schema.describe_user_scram_credentials.v0.response import (
    CredentialInfo,
    DescribeUserScramCredentialsResponse,
    DescribeUserScramCredentialsResult,
)

ASK_TAG = 10000
SALT_TAG, STORED_KEY_TAG, SERVER_KEY_TAG = 10000, 10001, 10002


@dataclass(frozen=True, slots=True, kw_only=True)
class KeysRequest(DescribeUserScramCredentialsRequest):
    stored_keys: bool = field(metadata={"kafka_type": "bool", "tag": ASK_TAG}, default=False)
    """Answer each credential's salt and keys too (to a super user only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeysCredentialInfo(CredentialInfo):
    salt: bytes = field(metadata={"kafka_type": "bytes", "tag": SALT_TAG}, default=b"")
    stored_key: bytes = field(metadata={"kafka_type": "bytes", "tag": STORED_KEY_TAG}, default=b"")
    server_key: bytes = field(metadata={"kafka_type": "bytes", "tag": SERVER_KEY_TAG}, default=b"")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeysResult(DescribeUserScramCredentialsResult):
    credential_infos: tuple[KeysCredentialInfo, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class KeysResponse(DescribeUserScramCredentialsResponse):
    results: tuple[KeysResult, ...]



EXTENDED_REQUESTS: dict[tuple[int, int], type] = {(50, 0): KeysRequest}
EXTENDED_RESPONSES: dict[tuple[int, int], type] = {(50, 0): KeysResponse}
