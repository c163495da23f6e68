"""A broker's folder events (a stray partition folder deleted, a topic put back from disk) are
read from its log by the supervisor and told in one sentence each, as status shows them."""

from sandbox.lifecycle import event_line
from sandbox.runner.logscan import FOLDER_EVENTS, describe_event, scan_events


def test_folder_events_are_read_from_the_log_and_told_in_one_sentence(tmp_path):
    log = tmp_path / "broker-3.log"
    log.write_text("\n".join([
        "2026-12-01 23:27:33,405 INFO sandbox.broker: listening",
        "2026-12-01 23:27:33,406 WARNING sandbox.broker: " + event_line("stray-partition-deleted", {
            "topic": "gone", "partition": 0, "why": "its topic was deleted while this broker was down"}),
        "2026-12-01 23:27:34,406 WARNING sandbox.broker: " + event_line("stray-partition-set-aside", {
            "topic": "again", "partition": 0, "why": "it holds another topic of that name than its leader",
            "path": "/d/again-0.ab-stray"}),
        "2026-12-01 23:27:43,406 WARNING sandbox.broker: " + event_line("topic-restored", {
            "topic": "orders", "partitions": 3, "from": "journal on disk"}),
        "2026-12-01 23:27:43,407 WARNING sandbox.broker: " + event_line("leader", {"topic": "x"}),
        ""]))
    found, _ = scan_events(log, 0)
    assert [k for k, _ in found] == ["stray-partition-deleted", "stray-partition-set-aside", "topic-restored"]
    assert all(k in FOLDER_EVENTS for k, _ in found)
    told = [describe_event(k, d) for k, d in found]
    assert told == ["gone-0 deleted from disk: its topic was deleted while this broker was down",
                    "again-0 set aside as /d/again-0.ab-stray: it holds another topic of that name than its leader",
                    "topic orders put back from its folders on disk (3 partition(s)): the metadata had lost it"]


def test_expired_offsets_are_read_from_the_log_and_told_with_the_group():
    """Why a consumer started over from auto.offset.reset: its group's offsets expired."""
    from sandbox.runner.logscan import GROUP_EVENTS, parse_events

    found = parse_events(["2026-12-03 12:00:00,000 INFO sandbox.broker: " + event_line(
        "offsets-expired", {"group": "billing", "offsets": 3, "retention_minutes": 10080})])
    assert [k for k, _ in found] == ["offsets-expired"] and found[0][0] in GROUP_EVENTS
    assert describe_event(*found[0]) == "group billing: 3 committed offset(s) expired (offsets.retention.minutes=10080)"
