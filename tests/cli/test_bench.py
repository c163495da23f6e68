"""`sandbox bench` against a real native stack in a temp project on free ports (127.0.0.1 only):
the JSON result has plausible numbers and the bench topic is gone afterwards; without a running
stack it exits 3 with one sentence; without confluent-kafka it says how to install it.

The stack fixture always runs `sandbox down` and kills (and reports) whatever of the project is left.
"""

from __future__ import annotations

import json
import time
from array import array

import pytest
from typer.testing import CliRunner

from integration.stack_kit import Project, make_project  # tests/ is on sys.path (pytest's pythonpath)
from sandbox import bench_worker
from sandbox.bench_worker import percentiles_ms


@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "benchproj")
    yield proj
    problems = proj.teardown()
    assert not problems, "\n".join(problems)


def _one_sentence(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one sentence, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.integration
@pytest.mark.timeout(90)
def test_bench_json_against_running_stack(project: Project):
    r = project.up()
    assert r.returncode == 0, f"`sandbox up` failed:\n{r.stdout}{r.stderr}\n{project.diagnostics()}"

    r = project.cli("bench", "--records", "20000", "--json", "--timeout", "60", timeout=90)
    assert r.returncode == 0, f"bench exited {r.returncode}:\n{r.stdout}\n{r.stderr}\n{project.diagnostics()}"
    assert "Traceback" not in r.stderr
    res = json.loads(r.stdout)

    prod, cons = res["produce"], res["consume"]
    assert res["records"] == prod["records"] == cons["records"] == 20000
    assert prod["bytes"] == cons["bytes"] == 20000 * 100
    for phase in (prod, cons):
        assert phase["seconds"] > 0 and phase["records_per_s"] > 0 and phase["mb_per_s"] > 0
        assert phase["broker_cpu_s"] is not None and phase["broker_cpu_s"] >= 0
        assert phase["broker_cpu_s_per_million"] is not None and phase["broker_cpu_s_per_million"] >= 0
    lat = prod["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert prod["latency_sampled_every"] == 16   # as fast as it goes: produce_batch, sampled callbacks
    assert [b["name"] for b in res["brokers"]] == ["broker-1"]
    assert "produce: 20,000/20,000" in r.stderr and "consume: 20,000/20,000" in r.stderr  # plain progress

    listed = project.cli("topics", "list")
    assert res["topic"] not in listed.stdout, "the bench topic was not deleted"


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_bench_without_running_stack_exits_3(project: Project):
    r = project.cli("bench", "--records", "10", timeout=30)
    assert r.returncode == 3, f"exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    line = _one_sentence(r.stderr)
    assert "not running" in line and "sandbox up" in line
    assert r.stdout.strip() == ""


def test_bench_without_confluent_kafka_says_how_to_install(monkeypatch):
    from sandbox.cli import bench_cmds
    from sandbox.cli.app import build_app

    monkeypatch.setattr(bench_cmds, "running_cfg", lambda config: object())
    monkeypatch.setattr(bench_cmds, "confluent_available", lambda: False)
    r = CliRunner().invoke(build_app(), ["bench", "--records", "10"])
    assert r.exit_code == 2
    line = _one_sentence(r.output)
    assert "pip install confluent-kafka" in line


def test_percentiles_nearest_rank():
    lat = percentiles_ms(array("d", [i / 1000 for i in range(1, 101)]))  # 1..100 ms
    assert lat == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms(array("d"))["p99"] is None


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_worker_paced_run_has_a_callback_per_record(broker):
    res = bench_worker.produce(broker.bootstrap, "paced", 600, 10, "all", rate=3000, timeout=30)
    assert res["records"] == 600 and res["latency_sampled"] == 1
    assert bench_worker.end_offsets(broker.bootstrap, "paced", time.monotonic() + 10) == {0: 600}


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_worker_batched_run_checks_the_topic_got_every_record(broker, monkeypatch):
    res = bench_worker.produce(broker.bootstrap, "fast", 5000, 10, "1", rate=0, timeout=30)
    assert res["records"] == 5000 and res["latency_sampled"] == bench_worker.SAMPLE_EVERY
    # only 1 in 16 records has a callback: a record the broker lost would go unseen but for the
    # end offsets, so a topic short of records fails the run
    real = bench_worker.end_offsets
    calls = []

    def short_by_one(bootstrap, topic, deadline):
        out = real(bootstrap, topic, deadline)
        calls.append(out)
        return {p: o - (len(calls) == 2) for p, o in out.items()}

    monkeypatch.setattr(bench_worker, "end_offsets", short_by_one)
    with pytest.raises(RuntimeError, match="4999 of 5000 records reached the topic"):
        bench_worker.produce(broker.bootstrap, "fast", 5000, 10, "1", rate=0, timeout=30)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_bench_stopped_by_sigterm_deletes_its_topic(project: Project):
    """SIGTERM (a `kill`, a CI job's timeout) ends a bench as Ctrl-C does: its topic is deleted and
    its worker stopped. Before, the process died at once and left bench-<time> behind."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    r = project.up()
    assert r.returncode == 0, f"`sandbox up` failed:\n{r.stdout}{r.stderr}\n{project.diagnostics()}"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("COLUMNS", None)
    proc = subprocess.Popen([sys.executable, "-m", "sandbox", "bench", "--records", "100000000", "--rate", "2000",
                             "--topic", "sigterm-bench", "--timeout", "60"], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        workers: list = []
        while time.monotonic() < deadline and not workers:   # producing: its worker runs
            workers = [c for c in psutil.Process(proc.pid).children() if "bench_worker" in " ".join(c.cmdline())]
            time.sleep(0.1)
        assert workers, "the bench never started its producer"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, (proc.returncode, err)
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers), "worker left running"
    listed = project.cli("topics", "list")
    assert "sigterm-bench" not in listed.stdout, "the bench topic was left behind"


def test_a_paced_run_keeps_its_rate_when_delivery_reports_wake_the_wait(monkeypatch):
    """Found by review: `bench --rate 5` sent 20 records in 0.11 s: poll() returns at the first
    delivery report, and the pace was not checked again."""
    from sandbox import bench_worker

    now = [0.0]
    monkeypatch.setattr(bench_worker.time, "perf_counter", lambda: now[0])

    class Early:   # a delivery report arrives 1 ms into every wait
        def poll(self, t):
            now[0] += min(t, 0.001)

        def produce(self, topic, value, on_delivery):
            pass

    bench_worker._produce_one_by_one(Early(), "t", 5, b"x", None, 50.0, 0.0, float("inf"), lambda: 0)
    assert now[0] >= 4 / 50   # the 5th record goes at 80 ms


def test_a_record_no_retry_can_send_ends_the_run_instead_of_waiting_for_ever():
    from confluent_kafka import KafkaError

    from sandbox import bench_worker

    class TooLarge:
        def produce_batch(self, topic, batch):
            for m in batch:
                m["_error"] = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
            return 0

        def poll(self, t):
            pass

    with pytest.raises(ValueError, match="the client refused a record"):
        bench_worker._produce_batched(TooLarge(), "t", 2, b"x", None, float("inf"), lambda: 0)
