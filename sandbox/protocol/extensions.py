"""Names this sandbox adds in open fields of the Kafka protocol, shared by the services that send
and read them (the supervisor, the coordinator)."""

# A CreateTopics config entry the supervisor sends when it re-creates a topic after the
# coordinator's journal was destroyed: the first leader epoch of its partitions, above every epoch
# its replicas' logs hold. The coordinator takes it out; it is never stored as a topic config.
RESTORE_LEADER_EPOCH = "sandbox.restore.leader.epoch"

# Sent beside it: the topic id the topic had (from the supervisor's catalog). A topic re-created
# under a new id is, to a client, a topic deleted and made again: librdkafka's consumers can stop
# fetching it without an error, Java's and franz-go's treat it as fatal. Taken out the same way.
RESTORE_TOPIC_ID = "sandbox.restore.topic.id"

RESTORE_KEYS = frozenset({RESTORE_LEADER_EPOCH, RESTORE_TOPIC_ID})

# The only key of an IncrementalAlterConfigs of the cluster's BROKER resource (name "") the
# supervisor sends last in that restore: the cluster id clients knew, so the fresh journal answers
# with it (a changed cluster id makes clients warn, and tools that keep it may object).
RESTORE_CLUSTER_ID = "sandbox.restore.cluster.id"
