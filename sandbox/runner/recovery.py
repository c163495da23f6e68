"""What follows a service's exit in the native supervisor: a restart with backoff, a crash loop,
a stop on a configuration error, or a quarantine of its journal (unrepairable, crash-looping, or a
path that cannot be used) followed by a clean start and the topics re-created."""

from __future__ import annotations

import re

from sandbox.lifecycle import EXIT_CONFIG, JOURNAL_OPENING
from sandbox.runner.logscan import mentions, tail_lines
from sandbox.runner.policy import EXIT_UNREPAIRABLE, EXIT_USAGE
from sandbox.runner.probe import port_owner
from sandbox.runner.quarantine import (DISK_FULL, QuarantineError, clear_leftovers, has_data, path_problem, prune,
                                      quarantine)
from sandbox.runner.service import ServiceRecord, recreate_off_pass, recreate_topics

LOG_TAIL_LINES = 20
DISK_FULL_RETRY_S = 1.0   # a start put off for want of space is tried again this often (one small write)
FILE_IN_USE = "file-in-use"   # a service's config-error reason: a file it must remove or rename is held
FILE_HELD = "a file is held by another program"   # how such a service's problem starts
FILE_IN_USE_RETRY_S = 1.0   # such a start is tried again this often, for as long as it takes
PORT_TAKEN = "port-taken"   # a service's config-error reason: its port is bound by another program
PORT_HELD = "its port is held by another program"   # how such a service's problem starts
PORT_CHECK_S = 1.0   # a service waiting for its port looks again this often (a bind, no process started)


def _address(where: str | None, default_port: int) -> tuple[str, int]:
    """(host, port) of a config-error's address ("127.0.0.1:9092", "listener SASL at 0.0.0.0:19092",
    "[::1]:9092"); the service's own port on 127.0.0.1 when it names none."""
    found = re.search(r"\[?([^\s\[\]]*?)\]?:(\d+)$", where or "")
    if found is None:
        return "127.0.0.1", default_port
    return found.group(1) or "0.0.0.0", int(found.group(2))


class Recovery:
    """Mixed into Supervisor (it owns the services, events, policy and clocks these use)."""

    def _journal_usable(self, svc: ServiceRecord, now: float) -> bool:
        """A journal path that cannot be used (a file or a dangling link where the folder should
        be, a folder that cannot be created or written) is handled like an unrepairable journal:
        moved into quarantine, never deleted, and the service starts clean."""
        spec = svc.spec
        try:
            held = clear_leftovers(spec.data_dir)
        except OSError:   # the folder itself cannot be read: path_problem says why
            held = None
        if held is not None:
            self._wait_for_leftovers(svc, held, now)
            return False
        problem = path_problem(spec.data_dir)
        if svc.problem and svc.problem.startswith(DISK_FULL) and not (problem or "").startswith(DISK_FULL):
            svc.problem = None
            self._emit(svc, "disk-full", "writes succeed again", resolved=True)
        if problem is None:
            return True
        if problem.startswith(DISK_FULL):
            # never a reason to move a journal aside: wait for space, trying again now and then
            if svc.problem != f"{problem}; free space on that disk":
                svc.problem = f"{problem}; free space on that disk"
                self._emit(svc, "disk-full", svc.problem, path=str(spec.data_dir))
            svc.state, svc.next_start = "recovering", now + DISK_FULL_RETRY_S
            return False
        if spec.data_dir.exists() or spec.data_dir.is_symlink():
            owed_before, svc.recreate_pending = svc.recreate_pending, True   # owed from before the move
            try:
                where, _ = quarantine(spec.data_dir, self.quarantine_root, spec.name, self._wall(), sleep=self._sleep)
            except (OSError, QuarantineError) as e:
                where, problem = None, f"{problem}, and it could not be moved aside: {e}"
                svc.recreate_pending = owed_before
            if where is not None:
                svc.fresh_journal = svc.recreate_pending = True
                svc.recreate_failed_reported = False
                self._emit(svc, "wipe", f"journal {spec.data_dir} unusable ({problem}): moved to {where}; "
                                        f"starting clean", path=str(where), rule="unusable-path")
                held = clear_leftovers(spec.data_dir)   # a copy left files another program holds
                if held is not None:
                    self._wait_for_leftovers(svc, held, now)
                    return False
                problem = path_problem(spec.data_dir)
                if problem is None:
                    return True
        svc.state, svc.next_start = "crashed", None
        svc.problem = f"its data folder {spec.data_dir} cannot be used: {problem}; fix it and run `sandbox restart`"
        self._emit(svc, "config-error", svc.problem, reason="data-folder")
        return False

    # ---- exits and recovery

    def _on_exit(self, svc: ServiceRecord, code: int, now: float) -> None:
        self._scan_log(svc)  # repair lines it wrote before dying come first
        tail = tail_lines(svc.spec.log_path, LOG_TAIL_LINES, since=svc.start_offset)
        svc.handle, svc.pid, svc.healthy, svc.last_exit_code = None, None, False, code
        svc.journal_reached = mentions(svc.spec.log_path, JOURNAL_OPENING, svc.start_offset)
        if self._on_spawn is not None:
            self._on_spawn(svc.spec, None)
        if code == EXIT_CONFIG and (svc.config_error or {}).get("reason") == FILE_IN_USE:
            why = svc.config_error.get("message") or f"exit code {code}: see {svc.spec.log_path}"
            svc.config_error = None
            self._wait_for_held_file(svc, why, now)
            return
        if code == EXIT_CONFIG and svc.served and (svc.config_error or {}).get("reason") == PORT_TAKEN:
            where = svc.config_error.get("address")
            svc.config_error = None
            self._wait_for_port(svc, where, now)
            return
        if svc.problem and svc.problem.startswith((FILE_HELD, PORT_HELD)):
            svc.problem = None   # that file was let go, or that port: this exit has a cause of its own
        if code == EXIT_CONFIG:
            # it cannot run as configured: restarting or wiping would not help; say why and stop
            why = (svc.config_error or {}).get("message") or f"exit code {code}: see {svc.spec.log_path}"
            svc.state, svc.next_start, svc.problem = "crashed", None, why
            self._emit(svc, "config-error", why, exit_code=code, reason=(svc.config_error or {}).get("reason"),
                       log_tail=tail)
            svc.config_error = None
            return
        detail = f"exit code {code}"
        if code == EXIT_UNREPAIRABLE:
            detail += " (its journal cannot be repaired)"
        if any("already in use" in line for line in tail):
            owner = port_owner(svc.spec.port)
            if owner:
                detail += f"; port {svc.spec.port} is held by {owner}"
        self._emit(svc, "crash", detail, exit_code=code, log_tail=tail)
        self._after_exit(svc, code, now)

    def _wait_for_leftovers(self, svc: ServiceRecord, held: str, now: float) -> None:
        """Not started before the files its journal's quarantine could not remove are gone."""
        self._wait_for_held_file(svc, f"{held} is left of its journal's quarantine (the journal was copied "
                                      f"aside) and must go before it starts clean", now, started=False)

    def _wait_for_held_file(self, svc: ServiceRecord, why: str, now: float, *, started: bool = True) -> None:
        """A start refused a file another program holds (Windows: a virus scanner, the indexer,
        an editor): nothing is wrong with the journal, and the holder lets go, usually within
        seconds. Start again every second, for as long as it takes, without counting the exits
        toward a crash loop (a quarantine would throw a sound journal away); say it once."""
        if not svc.wanted:
            svc.state = "stopped"
            return
        if self.policy.on_crash == "off":
            svc.state, svc.next_start, svc.problem = "crashed", None, f"{FILE_HELD}: {why}"
            self._emit(svc, "file-in-use", f"{why}; on_crash = \"off\": not started again")
            return
        problem = f"{FILE_HELD}: {why}; it is started again every {FILE_IN_USE_RETRY_S:g} s until that program lets go"
        if svc.problem != problem:
            svc.problem = problem
            self._emit(svc, "file-in-use", problem)
        svc.restarts += started   # a start put off is no restart
        svc.state, svc.next_start = "recovering", now + FILE_IN_USE_RETRY_S
        svc.restart_reason = "a file it needed was held by another program"

    def _wait_for_port(self, svc: ServiceRecord, where: str | None, now: float) -> None:
        """A service that served on its ports in this supervisor's life found one bound by another
        program when it was started again (a crash or `sandbox restart`, and something took the
        port meanwhile: a dev server, a second Kafka): nothing is wrong with it or its journal, and
        `up` checked that port. Say once who holds it and start it once the port is free (looked
        at every second with a bind of the address the service named: its main port, its SASL
        listener's or a named listener's; no process started meanwhile), never counted as a crash."""
        if not svc.wanted:
            svc.state = "stopped"
            return
        host, port = _address(where, svc.spec.port)
        svc.held_address = (host, port)
        owner = port_owner(port) or "another program"
        said = svc.problem
        if self.policy.on_crash == "off":
            svc.state, svc.next_start = "crashed", None
            svc.problem = f"{PORT_HELD}: port {port} is held by {owner}; on_crash = \"off\": not started again"
            self._emit(svc, "port-in-use", svc.problem, port=port)
            return
        svc.problem = (f"{PORT_HELD}: port {port} is held by {owner}; it is started again once that port is "
                       f"free (stop that program or give it another port)")
        if svc.problem != said:   # once, not at every try
            self._emit(svc, "port-in-use", svc.problem, port=port)
        svc.state, svc.next_start = "recovering", now + PORT_CHECK_S
        svc.restart_reason = f"port {port} was held by another program"

    def _port_still_held(self, svc: ServiceRecord, now: float) -> bool:
        """Before a start: a service waiting for its port is put off another second while it is taken."""
        if not (svc.problem or "").startswith(PORT_HELD) or svc.held_address is None:
            return False
        if self._port_free(*svc.held_address):
            return False
        svc.next_start = now + PORT_CHECK_S
        return True

    def _after_exit(self, svc: ServiceRecord, code: int | None, now: float, cause: str = "crash") -> None:
        """Decide what follows an exit: nothing, a restart with backoff, a crash-loop, or a wipe."""
        policy = self.policy
        if not svc.wanted:
            svc.state = "stopped"
            return
        if policy.on_crash == "off":
            svc.state, svc.next_start = "crashed", None
            return
        if svc.killed_on_request:   # `sandbox kill`: a rehearsal, never a step towards a crash loop
            svc.killed_on_request = False
            svc.restarts += 1
            svc.state, svc.next_start, svc.restart_reason = "recovering", now, "after a kill on request"
            return
        count = svc.window.record(now)
        looping = count > policy.max_restarts
        unrepairable = code == EXIT_UNREPAIRABLE
        if not looping and not unrepairable:
            svc.looping = svc.repair_attempted = False
        wipe = False
        if looping or unrepairable:
            why = (f"journal cannot be repaired (exit code {code})" if unrepairable
                   else f"{count} exits within {policy.restart_window_s:g}s")
            mode = policy.on_corrupt_journal
            if mode == "wipe" or (mode == "repair-then-wipe" and (unrepairable or svc.repair_attempted)):
                wipe = True
            elif mode == "repair-then-wipe":
                svc.repair_attempted = svc.looping = True
                self._emit(svc, "crash-loop", f"{why}; restarting once more so it can repair its journal, "
                                              f"then its journal will be quarantined", exits=count)
            elif not svc.looping:
                svc.looping = True
                self._emit(svc, "crash-loop", f"{why}; on_corrupt_journal=repair keeps restarting it; "
                                              f"`sandbox recover --wipe` quarantines the journal", exits=count)
            if wipe and code == EXIT_USAGE:
                wipe = False
                if not svc.looping:
                    svc.looping = True
                    self._emit(svc, "crash-loop", f"{why}; exit code {EXIT_USAGE} is a usage error (see its log), "
                                                  f"wiping the journal would not help", exits=count)
        if wipe and not unrepairable and not svc.journal_reached:
            # it died before it opened its journal (a broken Python environment, a missing
            # dependency): moving the journal aside would lose its records and cure nothing
            svc.state, svc.next_start = "crashed", None
            svc.problem = (f"{svc.name} exits before it opens its journal ({why}): not a journal problem, "
                           f"so its journal is kept; see {svc.spec.log_path}, fix the cause and run "
                           f"`sandbox restart {svc.name}`")
            self._emit(svc, "crash-loop", svc.problem, exits=count)
            return
        if wipe:
            if svc.fresh_journal:
                svc.state, svc.next_start = "crashed", None
                self._emit(svc, "crash-loop", f"{why}; it keeps failing with a fresh journal, so this is not a "
                                              f"journal problem: giving up (see {svc.spec.log_path})", exits=count)
                return
            if not self._wipe(svc, "unrepairable-journal" if unrepairable else "crash-loop", why):
                svc.state, svc.next_start = "crashed", None
                return
            svc.window.clear()
            svc.looping = svc.repair_attempted = False
            svc.restarts += 1
            svc.state, svc.next_start, svc.restart_reason = "recovering", now, "clean journal"
            return
        svc.restarts += 1
        delay = policy.backoff(count)
        svc.state, svc.next_start = "recovering", now + delay
        svc.restart_reason = f"after {cause}, backoff {delay:g}s"

    def _wipe(self, svc: ServiceRecord, rule: str, why: str) -> bool:
        """Quarantine the journal; the event names the rule (unrepairable-journal, crash-loop) and why."""
        spec = svc.spec
        if not has_data(spec.data_dir):
            svc.fresh_journal = svc.recreate_pending = True
            svc.recreate_failed_reported = False
            self._emit(svc, "wipe", f"journal {spec.data_dir} was already empty: nothing to quarantine ({why})",
                       path=None, rule=rule)
            return True
        svc.recreate_pending = True   # first: a supervisor killed from here on leaves the restore owed
        try:
            where, how = quarantine(spec.data_dir, self.quarantine_root, spec.name, self._wall(), sleep=self._sleep)
        except (QuarantineError, OSError) as e:
            # the journal stayed where it was: no fresh journal, nothing owed; a later restart
            # (once the cause is fixed) tries the quarantine again
            svc.recreate_pending = False
            svc.problem = f"its journal could not be moved aside ({e}); fix that and run `sandbox restart`"
            self._emit(svc, "crash-loop", f"{why}; its journal could not be moved aside ({e}): giving up, "
                                          f"fix that and run `sandbox restart` or `sandbox recover --wipe`")
            return False
        svc.fresh_journal = svc.recreate_pending = True
        svc.recreate_failed_reported = False
        pruned = prune(self.quarantine_root, spec.name, self.policy.keep_quarantines, sleep=self._sleep)
        detail = f"journal quarantined: {where}" + ("" if how == "renamed" else f" ({how})")
        if pruned:
            detail += f"; deleted {len(pruned)} older quarantine(s) (keep_quarantines={self.policy.keep_quarantines})"
        self._emit(svc, "wipe", f"{detail} ({rule}: {why})", path=str(where), rule=rule,
                   pruned=[str(p) for p in pruned])
        return True

    def _recreate(self, svc: ServiceRecord) -> None:
        """Put back what a wiped journal had: with recreate_in_thread (the stack's supervisor) on a
        thread of its own, a later pass taking its answer (service.recreate_off_pass)."""
        if self.recreate_in_thread:
            recreate_off_pass(self._recreating, self._events, svc, self._recreate_topics)
        else:
            recreate_topics(self._events, svc, self._recreate_topics)
