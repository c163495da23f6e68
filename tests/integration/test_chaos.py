"""The fault campaign (scripts/chaos.py) on a fixed set of seeds: random SIGKILL/SIGSTOP of every
service and of the supervisor (followed by `sandbox up`), torn tails, journals deleted or replaced by
a file, the coordinator's journal destroyed, against a real 3-broker stack under an idempotent
acks=all producer, a transactional one, and two consumer groups (classic and KIP-848) that commit
what they processed. Invariants: no acknowledged record lost unless the
fault destroyed its journal or a quarantine keeps it, no duplicate, read_committed shows every
committed transaction whole and nothing of an aborted one, healthy again after each fault (how
soon is reported, not asserted: `python scripts/chaos.py` checks the 10 s promise), status never shows a dead pid as running, every partition back in sync and its replicas byte for
byte the same, nothing left after `down`; no acknowledged group commit lost, no record skipped
below a group's committed offset, nothing handed to a consumer that the log does not keep, the
groups catch up and status shows their lag as 0 (scripts/chaos_group.py), the cluster id is the one clients knew, and
no fault lets a SASL user do what ACLs deny her (scripts/chaos_acl.py). One more seed adds network faults (connections reset, a
service's port cut off), one moves partition leaders by reassignment, and one deletes topics
and makes them again while a broker is down (scripts/chaos_churn.py).

The seeds are the ones that found bugs (each now a regression): seed 1 reaches a destroyed
coordinator journal after ten other faults (a killed adopted broker's lock once quarantined a
healthy journal, and the re-created topic had 1 partition instead of 6); seed 2 destroys the
coordinator's journal three times in a row (a broker once adopted every partition on itself);
seed 34 destroys it first thing (the supervisor read the brokers' metadata of the destroyed journal,
re-created nothing, and 10 s later the brokers put the partitions back on themselves alone, RF 1:
committed transactions lost, healthy only after 12 s)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chaos.py"
spec = importlib.util.spec_from_file_location("sandbox_chaos", SCRIPT)
chaos = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = chaos   # dataclasses look their module up by name
spec.loader.exec_module(chaos)


def _campaign(tmp_path, seed: int, faults: int, network: bool = False, moves: bool = False,
              windows_files: bool = False, churn: bool = False, churned: int = 0, compound: bool = False,
              disk_full: bool = False, only: tuple[str, ...] = (), held_files: bool = False, ports: bool = False):
    """Run one campaign and check every invariant; the report. How soon the stack is healthy
    again is reported (report.line()), not asserted: a bound in seconds is a benchmark figure
    (`python scripts/chaos.py` checks the 10 s promise), and CI machines are shared."""
    lines: list[str] = []
    report = chaos.run(seed, faults, tmp_path / "proj", brokers=3, say=lines.append, network=network, moves=moves,
                       windows_files=windows_files, churn=churn, compound=compound, heal_bound_s=None,
                       disk_full=disk_full, only=only, held_files=held_files, ports=ports)
    print(report.line())
    # the loads ran on after the last fault (for at most chaos.WORKLOAD_WAIT_S) until past these
    floor = chaos.WORKLOAD_FLOOR
    assert len(report.faults) == faults and report.acked > floor["acked"], report.line()
    assert report.txns_committed > floor["committed"] and report.txns_aborted > floor["aborted"], report.line()
    assert report.group_commits > floor["group commits"], report.line()
    assert report.acl_refused > floor["denied writes refused"], report.line()   # the ACL probe was answered
    assert not report.violations, "\n".join([report.line(), *lines, *report.violations[:20]])
    assert report.lost == report.destroyed + report.quarantined
    assert report.duplicates == 0
    assert report.replicas_compared == chaos.PARTITIONS + chaos.chaos_txn.TXN_PARTITIONS + churned, report.line()
    return report


# seed 2 × 7 runs under Windows' file rules below (the same schedule: the rules change no choice);
# seed 34's bug was its first fault, so three of its faults keep the regression
@pytest.mark.parametrize("seed,faults", [(1, 11), (34, 3)])
def test_fault_campaign_keeps_every_acknowledged_record(tmp_path, seed, faults):
    _campaign(tmp_path, seed, faults)


def test_fault_campaign_with_network_faults(tmp_path):
    """Seed 62 resets every TCP connection of a service first, then cuts a service's port off
    (every packet dropped for 1-12 s; status, asked meanwhile, must not call it healthy)."""
    missing = chaos.network_faults_missing()
    if missing:
        if os.environ.get("SANDBOX_REQUIRE_NETWORK_FAULTS") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    report = _campaign(tmp_path, 62, 7, network=True)
    assert {"reset-connections", "cut-off-service"} <= set(report.faults), report.faults


def test_fault_campaign_with_leaders_moved_by_reassignment(tmp_path):
    """Seed 5 with --moves starts by reassigning a partition's leader out of its replicas (the
    coordinator moves leadership at once, with writes in flight) and back. The bug it guards
    against: a Produce pipelined behind a waiting one was answered as written by the broker that
    no longer led, and acknowledged records were lost."""
    report = _campaign(tmp_path, 5, 6, moves=True)
    assert report.faults[0] == "move-leader", report.faults


def test_fault_campaign_under_windows_file_rules(tmp_path):
    """Seed 2 (three destroyed coordinator journals, a deleted broker journal, kills and a pause)
    with every process of the stack under Windows' file rules (tests/winfiles_site: an open file
    cannot be removed or renamed, nor its folder): repairs, quarantines, the restore, retention of
    the campaign's 16 KiB segments and the offsets topic's compaction never refuse."""
    report = _campaign(tmp_path, 2, 7, windows_files=True)
    assert "coordinator-journal-destroyed" in report.faults and "journal-deleted" in report.faults


def test_the_windows_refusals_are_read_from_the_services_logs(tmp_path):
    """What the Windows campaign reads: which services ran under the rules, and each refusal."""
    (tmp_path / "broker-1.log").write_text(
        f"{chaos.VETO_MARK} file rules on for /x\n2026 INFO fine\n"
        f"{chaos.VETO_MARK} veto: cannot remove: /x/t-0/0.log is open (from files.py:40)\n")
    (tmp_path / "coordinator.log").write_text("nothing here\n")
    ruled, refused = chaos.windows_refusals(tmp_path)
    assert ruled == ["broker-1"] and len(refused) == 1 and refused[0].startswith("broker-1: ")
    assert chaos.windows_refusals(tmp_path / "missing") == ([], [])


def test_the_replica_comparison_finds_a_byte_that_differs(tmp_path):
    """The campaign's last check (replicas byte for byte the same where they overlap) over logs
    made here: equal replicas pass, one changed record is reported, a shorter replica is compared
    over what it holds."""
    from sandbox.log import LogConfig, PartitionLog
    from sandbox.log.batch import build_batch

    def write(broker: int, values: list[bytes]) -> None:
        log = PartitionLog(tmp_path / f"broker-{broker}" / "t-0", LogConfig())
        try:
            for v in values:
                log.append(build_batch([(None, v)], timestamp_ms=1))
        finally:
            log.close()

    write(1, [b"a", b"b", b"c"])
    write(2, [b"a", b"b", b"c"])
    write(3, [b"a", b"b"])          # behind: compared over offsets 0-1
    assert chaos.replicas_disagree(tmp_path, 3, {"t": 1}) == ([], 1)
    write(4, [b"a", b"X"])
    differ, compared = chaos.replicas_disagree(tmp_path, 4, {"t": 1})
    assert compared == 1 and len(differ) == 1 and "t-0 differ within offsets 0-2" in differ[0], differ


def test_fault_campaign_with_topics_deleted_and_made_again_while_a_broker_is_down(tmp_path):
    """Seed 6 with --churn twice kills a broker (the supervisor frozen meanwhile) while one topic
    is deleted and another deleted and made again under its name, then lets the supervisor restart
    it (scripts/chaos_churn.py). The bugs it guards against: the broker put the deleted topic back
    as one nobody made, and kept the old topic's records under the new one, in the ISR with bytes
    its leader did not have (the replica comparison after `down` found them)."""
    report = _campaign(tmp_path, 6, 4, churn=True, churned=2)
    assert report.faults.count("churn-while-down") == 2, report.faults


def test_fault_campaign_with_a_topic_made_again_while_a_broker_is_paused_and_the_coordinator_journal_lost(tmp_path):
    """Seed 9508 with --compound starts with churn-through-lost-journal: a broker paused (`sandbox
    pause`) while a topic is deleted and made again, then the coordinator's journal destroyed
    before it is resumed, so nothing records the deletion (scripts/chaos_churn.py). The bugs it
    guards against: the catalog stood still while the broker was paused, so the restore did not
    know the remade topic and the paused broker's folder of the old one led it; and a follower's
    folder of the old topic was kept, cut to the leader's log end (the replica comparison)."""
    report = _campaign(tmp_path, 9508, 2, compound=True, churned=1)
    assert report.faults[0] == "churn-through-lost-journal", report.faults


def test_fault_campaign_on_a_disk_that_fills_up(tmp_path):
    """The project on a tmpfs of its own, filled to the last byte for 2-10 s six times, a broker
    killed during some of them (scripts/chaos_disk.py); status, asked during a long fill, must say
    the disk is full. The bugs seed 3 found: librdkafka bumped its producer epoch 126 times in a
    minute and wrote records twice (the batch behind one refused for want of space was answered out
    of order); a broker's storage-ok line, lost to the full disk, left status saying "disk full"
    for ever; a rolled segment's index write failed with "Task exception was never retrieved"."""
    missing = chaos.chaos_disk.missing()
    if missing:
        pytest.skip(missing)
    report = _campaign(tmp_path, 3, 6, disk_full=True, only=("disk-full",))
    assert report.faults == ["disk-full"] * 6


def test_fault_campaign_with_files_held_by_another_program(tmp_path):
    """Windows' file rules, and files the stack just wrote held open for 0.3-6 s by "another
    program" (a virus scanner: removing or renaming them is refused meanwhile), a broker killed
    during some holds (scripts/chaos_held.py). What seed 1 found: a broker killed while its stale
    `.lock` was held was stopped for good as misconfigured ("choose another data_dir"); the
    periodic checkpoint logged a traceback. Review found a follower's cut that a held segment
    stopped part way leaving closed segments in its log."""
    report = _campaign(tmp_path, 1, 10, held_files=True, only=("held-files",))
    assert report.faults == ["held-files"] * 10
    assert report.held_refused > 0, report.line()   # the holds were met, not missed


def test_fault_campaign_with_a_port_another_program_takes_while_a_broker_restarts(tmp_path):
    """A broker killed and its port bound by "another program" before the supervisor starts it
    again, for 1-8 s (scripts/chaos.py --ports). Before session 47 the broker stayed crashed until
    someone ran `sandbox restart`: the campaign's heal never came. Status, asked halfway through a
    hold, must not call the broker or the stack healthy."""
    report = _campaign(tmp_path, 1, 3, ports=True, only=("port-taken",))
    assert report.faults == ["port-taken"] * 3
