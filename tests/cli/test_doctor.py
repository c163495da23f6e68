"""`sandbox doctor` as a user runs it: `python -m sandbox doctor` subprocesses in a temp project with
a sandbox.toml on free ports (127.0.0.1 only). Free ports pass; a port another process listens on
fails naming that process; a broken sandbox.toml is one line and exit 2; docker mode without an
engine fails the docker check while native mode does not care; a data_dir under a regular file
fails the data check; a journal file dated in the future warns; a running stack's own ports are
"in use by this sandbox".

Every run points DOCKER_HOST at a socket that does not exist, so no test depends on (or touches)
a Docker engine on this machine. The project fixture always runs `sandbox down` and kills (and
reports) whatever of the project is left; a port holder is killed in a finally.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integration.stack_kit import Project, make_project  # tests/ is on sys.path (pytest's pythonpath)

CHECKS = ["config", "ports", "disk", "data", "docker", "clock", "python"]
NO_ENGINE = "unix:///nonexistent/docker.sock"


@pytest.fixture
def project(tmp_path):
    proj = make_project(tmp_path / "doctorproj")
    yield proj
    problems = proj.teardown()
    assert not problems, "\n".join(problems)


def doctor(proj: Project, *args: str, docker_host: str = NO_ENGINE, timeout: float = 60
           ) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["DOCKER_HOST"] = docker_host
    env.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "sandbox", "doctor", *args], cwd=proj.root, env=env,
                          capture_output=True, text=True, timeout=timeout)


def doctor_json(proj: Project, *args: str, **kw) -> tuple[int, dict, dict]:
    """(exit code, the JSON, {check name: check})"""
    r = doctor(proj, "--json", *args, **kw)
    assert "Traceback" not in r.stderr, r.stderr
    try:
        data = json.loads(r.stdout)
    except ValueError:
        raise AssertionError(f"doctor --json printed no JSON (exit {r.returncode}):\n"
                             f"stdout: {r.stdout}\nstderr: {r.stderr}") from None
    checks = {c["name"]: c for c in data["checks"]}
    assert [c["name"] for c in data["checks"]] == CHECKS, data
    for c in data["checks"]:
        assert c["result"] in ("ok", "warn", "fail"), c
        assert isinstance(c["detail"], str) and c["detail"] and "\n" not in c["detail"], c
    assert data["ok"] == all(c["result"] != "fail" for c in data["checks"]), data
    return r.returncode, data, checks


def _one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def _set_sandbox_key(proj: Project, line: str) -> None:
    assert proj.toml.startswith("[sandbox]\n"), proj.toml
    proj.write_toml(proj.toml.replace("[sandbox]\n", f"[sandbox]\n{line}\n", 1))


def _hold_port(port: int) -> subprocess.Popen:
    """A python process listening on 127.0.0.1:port (so port_owner names "python"), ready on return."""
    code = ("import socket, sys, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
            f"s.bind(('127.0.0.1', {port})); s.listen(1)\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()   # returns at the print or when the process dies (EOF)
    if line.strip() != "ready":
        proc.kill()
        proc.wait(10)
        raise AssertionError(f"could not hold port {port}: {proc.stderr.read() if proc.stderr else ''}")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for f in (proc.stdout, proc.stderr):
        if f is not None:
            f.close()


@pytest.mark.timeout(60)
def test_all_free_passes_and_creates_nothing(project: Project):
    code, data, checks = doctor_json(project)
    assert code == 0, data
    assert data["ok"] is True
    for name in ("config", "ports", "disk", "data", "docker", "python"):
        assert checks[name]["result"] == "ok", checks[name]
    assert str(project.config_path) in checks["config"]["detail"]
    for port in (project.port, project.coordinator_port, project.http_port):
        assert str(port) in checks["ports"]["detail"]
    assert "not needed in native mode" in checks["docker"]["detail"]
    assert not project.data_dir.exists(), "doctor created the data folder"

    r = doctor(project)   # the human table: one row per check
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "DETAIL"]
    assert [ln.split()[0] for ln in lines[1:1 + len(CHECKS)]] == CHECKS
    assert not project.data_dir.exists()


@pytest.mark.timeout(60)
def test_port_taken_by_another_process_fails_naming_it(project: Project):
    holder = _hold_port(project.coordinator_port)
    try:
        r = doctor(project)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert "Traceback" not in out, out
        row = next(ln for ln in r.stdout.splitlines() if ln.startswith("ports "))
        assert "FAIL" in row and str(project.coordinator_port) in row and "python" in row.lower(), row
        assert f"pid {holder.pid}" in row and "coordinator_port = " in row, row

        code, data, checks = doctor_json(project)
        assert code == 1 and data["ok"] is False
        ports = checks["ports"]
        assert ports["result"] == "fail", ports
        assert str(project.coordinator_port) in ports["detail"] and "python" in ports["detail"].lower(), ports
        assert "sandbox.toml" in ports["detail"], ports
        assert "broker-1" not in ports["detail"], f"a free port was reported as taken: {ports}"
        assert checks["data"]["result"] == "ok" and checks["disk"]["result"] != "fail"
    finally:
        _stop(holder)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("as_json", [False, True])
def test_broken_sandbox_toml_is_one_line_and_exit_2(project: Project, as_json):
    text = project.toml.replace("brokers = 1", "brokers = 0")
    assert text != project.toml
    project.write_toml(text)
    line_no = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("brokers = 0"))
    r = doctor(project, *(["--json"] if as_json else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.strip() == ""
    line = _one_line(r.stderr)
    # the same sentence every command gives (`fail` prefixes "error: ")
    assert line.removeprefix("error: ").startswith(f"sandbox.toml:{line_no}:"), line
    assert "brokers" in line


@pytest.mark.timeout(60)
def test_missing_config_path_is_exit_2(project: Project):
    r = doctor(project, "--config", "nothere.toml")
    assert r.returncode == 2, r.stdout + r.stderr
    line = _one_line(r.stderr)
    assert "nothere.toml" in line


@pytest.mark.timeout(60)
def test_docker_mode_without_engine_fails_the_docker_check(project: Project):
    _set_sandbox_key(project, 'mode = "docker"')
    code, data, checks = doctor_json(project)
    assert code == 1 and data["ok"] is False, data
    d = checks["docker"]
    assert d["result"] == "fail", d
    assert d["detail"].count(". ") == 0 and d["detail"].endswith("."), f"not one sentence: {d['detail']}"
    assert "Docker" in d["detail"]
    assert [n for n, c in checks.items() if c["result"] == "fail"] == ["docker"], data

    r = doctor(project)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("docker "))
    assert "FAIL" in row


@pytest.mark.timeout(60)
def test_native_mode_does_not_need_docker(project: Project):
    code, data, checks = doctor_json(project)
    assert code == 0 and data["ok"] is True, data
    assert checks["docker"]["result"] == "ok"
    assert "not needed in native mode" in checks["docker"]["detail"]


@pytest.mark.timeout(60)
def test_data_dir_under_a_regular_file_fails_the_data_check(project: Project, tmp_path: Path):
    afile = tmp_path / "afile"
    afile.write_text("not a folder", encoding="utf-8")
    data_dir = afile / "data"
    text = project.toml.replace('data_dir = ".sandbox"', f'data_dir = "{data_dir.as_posix()}"')
    assert text != project.toml
    project.write_toml(text)
    code, data, checks = doctor_json(project)
    assert code == 1 and data["ok"] is False, data
    d = checks["data"]
    assert d["result"] == "fail", d
    assert "afile" in d["detail"] and "is a file" in d["detail"] and "data_dir" in d["detail"], d
    assert afile.is_file() and afile.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.timeout(60)
def test_file_dated_in_the_future_warns_about_the_clock(project: Project):
    seg = project.data_dir / "broker-1" / "orders-0" / "00000000000000000000.log"
    seg.parent.mkdir(parents=True)
    seg.write_bytes(b"")
    ahead = time.time() + 3600
    os.utime(seg, (ahead, ahead))
    code, data, checks = doctor_json(project)
    assert code == 0 and data["ok"] is True, data
    clock = checks["clock"]
    assert clock["result"] == "warn", clock
    assert "00000000000000000000.log" in clock["detail"], clock
    assert checks["data"]["result"] == "ok"
    assert sorted(p.name for p in project.data_dir.iterdir()) == ["broker-1"], "doctor left a file behind"

    r = doctor(project)
    assert r.returncode == 0, r.stdout + r.stderr
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("clock "))
    assert "warn" in row


@pytest.mark.integration
@pytest.mark.timeout(150)
def test_running_stack_ports_are_in_use_by_this_sandbox(project: Project):
    r = project.up()
    assert r.returncode == 0, f"`sandbox up` failed:\n{r.stdout}{r.stderr}\n{project.diagnostics()}"
    code, data, checks = doctor_json(project)
    assert code == 0 and data["ok"] is True, f"{json.dumps(data, indent=1)}\n{project.diagnostics()}"
    ports = checks["ports"]
    assert ports["result"] == "ok", ports
    assert "in use by this sandbox" in ports["detail"], ports
    for port in (project.port, project.coordinator_port, project.http_port):
        assert str(port) in ports["detail"], ports
    assert "free" not in ports["detail"], ports
    assert "running" in checks["config"]["detail"] and "not running" not in checks["config"]["detail"]
    assert checks["data"]["result"] == "ok" and checks["clock"]["result"] == "ok", data
    assert not list(project.data_dir.glob(".doctor-*")), "doctor left its probe file in the data folder"


def test_a_host_this_machine_cannot_listen_on_fails_the_ports_check(project: Project):
    """Found by review: host = "10.99.99.99" passed doctor ("free on 127.0.0.1"), and `up` then
    failed. The address is TEST-NET-1-like and never this machine's: nothing is sent to it, a bind
    is only asked of the kernel."""
    project.write_toml(project.toml.replace('host = "127.0.0.1"', 'host = "192.0.2.77"'))
    code, data, checks = doctor_json(project)
    assert code == 1 and checks["ports"]["result"] == "fail", checks["ports"]
    assert "192.0.2.77" in checks["ports"]["detail"] and 'set host = "127.0.0.1"' in checks["ports"]["detail"]
