"""Kafka's error names with what a person can do about the ones the CLI's users meet most (review:
`produce 'bad topic!'` said only "failed with INVALID_TOPIC_EXCEPTION")."""

import pytest

from sandbox.client import KafkaClientError
from sandbox.client.base import _check


@pytest.mark.parametrize("code, said", [(17, "not a valid topic name"), (24, "a group id cannot be empty"),
                                        (10, "max.message.bytes"), (3, "sandbox topics list")])
def test_common_errors_carry_a_hint(code, said):
    with pytest.raises(KafkaClientError) as e:
        _check(code, "metadata of topic x")
    assert said in str(e.value) and e.value.error_code == code


def test_the_brokers_own_message_is_kept():
    with pytest.raises(KafkaClientError, match="failed with UNKNOWN_TOPIC_OR_PARTITION: its own words$"):
        _check(3, "deleting topic x", "its own words")
