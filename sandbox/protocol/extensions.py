"""Names this sandbox adds in open fields of the Kafka protocol, shared by the services that send
and read them (the supervisor, the coordinator)."""

# A CreateTopics config entry the supervisor sends when it re-creates a topic after the
# coordinator's journal was destroyed: the first leader epoch of its partitions, above every epoch
# its replicas' logs hold. The coordinator takes it out; it is never stored as a topic config.
RESTORE_LEADER_EPOCH = "sandbox.restore.leader.epoch"
