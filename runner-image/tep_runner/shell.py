"""The thin shell: the one module that runs processes and touches files; the pure modules decide."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, TextIO

from tep_runner import adaptive, cgroup, durations, gitclone, history, retention, shards, stopping
from tep_runner.command import (
    durations_file,
    outside_file,
    pytest_command,
    record_file,
    split_file,
    stop_file,
)
from tep_runner.message import termination_message
from tep_runner.record import Record, read_record
from tep_runner.runid import run_id_for
from tep_runner.settings import Settings, SettingsError, settings_from_env
from tep_runner.summary import EXIT_CODES, empty_summary, summarize

POLL_SECONDS = 0.1  # how often the runner looks at pytest, the clock and the signals it received
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run(environ: Mapping[str, str], *, stdout: TextIO | None = None) -> int:
    """Run one plan's tests as a runner pod (or `tep run --local`) does; return 0, 1 or 2.

    `environ` holds the TEP_* settings (docs/architecture.md); pytest runs with os.environ updated by it.
    Output streams to `stdout` (default sys.stdout) and into the run folder's pytest.log.
    """
    out = stdout or sys.stdout
    try:
        settings = settings_from_env(environ)
    except SettingsError as e:
        out.write(f"tep-runner: {e}\n")
        summary = empty_summary("Error", str(e), 0, 1, "", "", _now().isoformat())
        _write_termination_log(environ.get("TEP_TERMINATION_LOG", ""), summary, out)
        return 2
    return _Run(settings, environ, out).execute()


class _Run:
    def __init__(self, settings: Settings, environ: Mapping[str, str], out: TextIO) -> None:
        # Absolute: pytest runs with the tests folder as its working directory.
        self.settings = settings = replace(
            settings,
            source_root=settings.source_root.absolute(),
            tests_dir=settings.tests_dir.absolute(),
            reports_dir=settings.reports_dir.absolute(),
        )
        self.out = out
        self.env = {**os.environ, **environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        self.start = _now()
        self.run_id = run_id_for(settings.run_id, settings.job_name, self.start, secrets.token_hex(4))
        self.plan_dir = settings.reports_dir / settings.namespace / settings.plan
        self.run_dir = self.plan_dir / self.run_id
        shard_dir = f"shard-{settings.shard_index}" if settings.shards > 1 else ""
        self.out_dir = self.run_dir / shard_dir
        self.rel_dir = Path(settings.namespace, settings.plan, self.run_id, shard_dir)
        self.began = time.monotonic()  # the deadline counts from here
        self.stop_cause = ""  # why the run is being stopped: the deadline or a signal (stopping.py)
        self.stopped_pytest = False  # the stop came while pytest ran, so the runner stopped it
        # The run's record (record.py), and the stop's cause written for the plugin (command.py names both).
        self.record_file: Path | None = None
        self.stop_file: Path | None = None

    def execute(self) -> int:
        # SIGTERM (the kubelet at the pod's deadline, a deletion, `kill`) and SIGINT (Ctrl-C) stop the run the
        # same way: pytest is asked to stop and every artifact is still written. Only the main thread may.
        handlers = (
            {signum: signal.signal(signum, self._on_signal) for signum in STOP_SIGNALS}
            if threading.current_thread() is threading.main_thread()
            else {}
        )
        try:
            try:
                summary = self._run()
            except (OSError, subprocess.SubprocessError, ET.ParseError, json.JSONDecodeError) as e:
                self._say(f"the run broke: {e}")
                summary = self._empty("Error", f"the run broke: {e}")
            _write_termination_log(str(self.settings.termination_log or ""), summary, self.out)
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return EXIT_CODES[summary["result"]]

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only noted here; the loop waiting for pytest acts on it (a handler may run at any bytecode).
        if not self.stop_cause:
            self.stop_cause = stopping.signal_cause(
                signum, time.monotonic() - self.began, self.settings.deadline_seconds
            )

    def _check_deadline(self) -> None:
        deadline = self.settings.deadline_seconds
        if deadline is not None and not self.stop_cause and time.monotonic() - self.began >= deadline:
            self.stop_cause = stopping.deadline_cause(deadline)

    def _run(self) -> dict[str, Any]:
        s = self.settings
        self.plan_dir.mkdir(parents=True, exist_ok=True)
        self._prune()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._update_latest()
        if not s.tests_dir.is_dir():
            summary = self._empty("Error", f"TEP_TESTS_DIR: {s.tests_dir} is not a directory")
        elif not s.tests_dir.resolve().is_relative_to(s.source_root.resolve()):
            summary = self._empty("Error", f"TEP_TESTS_DIR: {s.tests_dir} is not inside TEP_SOURCE_ROOT")
        else:
            with tempfile.TemporaryDirectory(prefix="tep-runner-") as tmp:
                summary = self._pytest(Path(tmp))
        _write_atomic(self.out_dir / "summary.json", json.dumps(summary, indent=2))
        if s.shards > 1:
            self._merge_if_complete()
        else:  # a sharded run's history is written once, by the shard that merges
            history.write_run(self.plan_dir, self.run_dir, self.settings, self._say)
        return summary

    def _pytest(self, tmp: Path) -> dict[str, Any]:
        s = self.settings
        self._check_deadline()
        if self.stop_cause:  # before pytest started
            return self._empty("Error", stopping.stop_reason(self.stop_cause, ()))
        self.record_file, self.stop_file = record_file(tmp), stop_file(tmp)
        log = self.out_dir / "pytest.log"
        # The plan's history is the durations store: read once here, handed to every pytest process.
        records = history.read_records(self.plan_dir)
        expected = durations.from_history(records)
        if expected:
            durations_file(tmp).write_text(durations.dumps(expected))
        s = self._workers(records)
        in_pod = "KUBERNETES_SERVICE_HOST" in self.env  # the kubelet sets it in every container
        cpus, cpu_before = cgroup.cpu_limit(), cgroup.cpu_seconds(in_pod)
        began = time.monotonic()

        def command(bounded: bool) -> list[str]:
            return pytest_command(
                s, self.out_dir, tmp, sys.executable, bounded=bounded, durations=bool(expected)
            )

        code = self._stream(command(False), log)
        if outside_file(tmp).exists():
            found = outside_file(tmp).read_text()
            self._say(
                f"ignoring {found}: it lies above the source root {s.source_root}, where a pod has nothing"
            )
            # The same run's second start: its deadline and a signal stop it as they would the first.
            code = self._stream(command(True), log)
        duration = time.monotonic() - began
        measures = {
            adaptive.UTILIZATION: round(
                (cgroup.cpu_seconds(in_pod) - cpu_before) / max(duration * cpus, 1e-9), 3
            ),
            adaptive.PEAK_MEMORY: cgroup.peak_child_memory(),
        }
        split = split_file(tmp)
        report = "report.html" if (self.out_dir / "report.html").exists() else "pytest.log"
        return (
            summarize(
                record=self._record(),
                split=json.loads(split.read_text()) if split.exists() else {},
                log_text=log.read_text(errors="replace"),
                exit_code=code,
                duration_seconds=duration,
                shard=s.shard_index,
                shards=s.shards,
                report_path=str(self.rel_dir / report),
                run_id=self.run_id,
                start_time=self.start.isoformat(),
                stopped_by=self.stop_cause if self.stopped_pytest else "",
            )
            | measures
        )

    def _workers(self, records: list[dict[str, Any]]) -> Settings:
        """The settings with `workers: adaptive` resolved to a count, the choice said in the run's log."""
        s = self.settings
        if s.workers != adaptive.ADAPTIVE:
            return s
        decision = adaptive.decide(records, cgroup.cpu_limit(), s.max_workers, cgroup.memory_limit())
        self._say(f"workers: adaptive: {decision.reason}")
        return replace(s, workers=decision.workers)

    def _stream(self, command: list[str], log_path: Path) -> int:
        """Run a command in the tests folder; its output goes to `out` as it comes and into `log_path`.

        At the deadline or on a signal the command is stopped (`_stop`). Its own session, so that Ctrl-C
        reaches the runner only, and so that whatever it leaves behind can be killed with it at the end.
        """
        self._check_deadline()
        if self.stop_cause:
            self.stopped_pytest = True  # stopped before it could start
            return -signal.SIGINT
        self._say(f"running: {' '.join(command)}")
        with (
            log_path.open("wb") as log,
            subprocess.Popen(
                command,
                cwd=self.settings.tests_dir,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ) as proc,
        ):
            assert proc.stdout is not None
            reader = threading.Thread(target=self._copy, args=(proc.stdout, log), daemon=True)
            reader.start()
            # Waited for in a thread, so the runner goes on the moment pytest ends (a sleep between polls
            # would add up to POLL_SECONDS to every run), while this thread watches the clock and the signals.
            exited = threading.Event()

            def wait() -> None:
                proc.wait()
                exited.set()

            threading.Thread(target=wait, daemon=True).start()
            while not exited.wait(POLL_SECONDS) and not self.stop_cause:
                self._check_deadline()
            if not exited.is_set():
                self._stop(proc)
            code = proc.wait()
            # A process a test started may still hold the output pipe: the run leaves nothing behind.
            _kill(proc.pid, group=True)
            reader.join(timeout=5)
            return code

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        """Ask pytest to stop (SIGINT) and give it STOP_SECONDS to write its reports; kill it after that."""
        self._say(f"{self.stop_cause}: stopping pytest")
        self.stopped_pytest = True
        if self.stop_file:
            self.stop_file.write_text(self.stop_cause)  # the plugin's words for the tests it reports stopped
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        while proc.poll() is None and time.monotonic() - began < stopping.ACK_SECONDS:
            if self._record().acknowledged:
                # The controller has reported the running tests and takes no more events from its workers;
                # a worker blocked in a test would hold its teardown for 5-10 s (execnet's timeouts).
                for child in _children(proc.pid):
                    _kill(child)
                break
            time.sleep(POLL_SECONDS)
        try:
            proc.wait(timeout=max(stopping.STOP_SECONDS - (time.monotonic() - began), 0))
        except subprocess.TimeoutExpired:
            self._say(f"pytest did not stop within {stopping.STOP_SECONDS} s: killing it")
            _kill(proc.pid, group=True)

    def _record(self) -> Record:
        path = self.record_file
        if path is None or not path.exists():
            return Record()
        return read_record(path.read_text(errors="replace").splitlines())

    def _copy(self, source: IO[bytes], log: IO[bytes]) -> None:
        # Chunks, not lines: pytest's progress dots of one file share a line, and `kubectl logs -f` should
        # show them as they come.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # Closed under it only when a process that escaped pytest's session kept the pipe open (_stream).
        with contextlib.suppress(OSError, ValueError):
            while chunk := os.read(source.fileno(), 65536):
                log.write(chunk)
                self.out.write(decoder.decode(chunk))
                self.out.flush()

    def _prune(self) -> None:
        entries = []
        for path in self.plan_dir.iterdir():
            try:
                mtime = datetime.fromtimestamp(path.lstat().st_mtime, UTC)
            except FileNotFoundError:  # removed meanwhile by another shard's pruning
                continue
            entries.append(retention.Entry(path.name, path.is_dir() and not path.is_symlink(), mtime))
        s = self.settings
        for entry in retention.to_delete(entries, self.run_id, s.keep_last, s.max_age_days, self.start):
            path = self.plan_dir / entry.name
            self._say(f"retention: removing {path}")
            if entry.is_dir:
                # A concurrent shard may be removing the same run; rmtree never follows links inside.
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)  # a file or a link (never its target)

    def _update_latest(self) -> None:
        # Replace the link atomically: readers never see `latest` missing.
        temporary = self.plan_dir / f".latest-{secrets.token_hex(4)}"
        temporary.symlink_to(self.run_id)
        os.replace(temporary, self.plan_dir / retention.LATEST)

    def _merge_if_complete(self) -> None:
        """The last shard to finish writes the run-level files; the lock makes "last" well defined."""
        from filelock import FileLock  # here, as in history.write_run: off the path to pytest's start

        n = self.settings.shards
        with FileLock(self.run_dir / ".merge.lock"):
            paths = [self.run_dir / f"shard-{i}" / "summary.json" for i in range(n)]
            if not all(p.exists() for p in paths):
                return
            summaries = [json.loads(p.read_text()) for p in paths]
            run = shards.merge_summaries(summaries, str(self.rel_dir.parent / "report.html"))
            junits = [p.with_name("junit.xml") for p in paths if p.with_name("junit.xml").exists()]
            _write_atomic(self.run_dir / "junit.xml", shards.merge_junit([j.read_text() for j in junits]))
            _write_atomic(self.run_dir / "report.html", self._merged_report(run, summaries))
            logs = [p.with_name("pytest.log") for p in paths if p.with_name("pytest.log").exists()]
            text = [f"===== shard {i} =====\n{log.read_text(errors='replace')}" for i, log in enumerate(logs)]
            _write_atomic(self.run_dir / "pytest.log", "".join(text))
            _write_atomic(self.run_dir / "summary.json", json.dumps(run, indent=2))
            history.write_run(self.plan_dir, self.run_dir, self.settings, self._say)
            self._say(f"merged {n} shards: {run['result']}")

    def _merged_report(self, run: Mapping[str, Any], summaries: list[dict[str, Any]]) -> str:
        """One pytest-html report of every shard's results (htmlreport.py); the index of the shards' own
        reports when a shard has none (it broke before pytest ran)."""
        # Here, not at the top: it loads pytest, pytest-html and jinja2 (a quarter of a second of CPU), which
        # only the merging shard needs, after its run; every run would pay it before pytest starts.
        from tep_runner import htmlreport

        reports = []
        for i in range(self.settings.shards):
            folder = self.run_dir / f"shard-{i}"
            if not (folder / "report.html").exists():
                return shards.index_html(run, summaries)
            junit = folder / "junit.xml"
            reruns = htmlreport.reruns_from_junit(junit.read_text()) if junit.exists() else None
            reports.append(htmlreport.ShardReport(i, (folder / "report.html").read_text(), reruns))
        lines = [
            f"{run['shards']} shards, split by duration; the slowest took {run['imbalance']:.2f} x the mean",
            *(
                f"shard {s['shard']}: {s['result']}, {s['total']} tests, {s['durationSeconds']:.1f} s"
                for s in summaries
            ),
        ]
        try:
            return htmlreport.merge(reports, float(run["durationSeconds"]), lines)
        except ValueError as e:  # a report pytest-html did not finish (pytest killed)
            self._say(f"merged report: {e}; writing an index of the shards' reports")
            return shards.index_html(run, summaries)

    def _empty(self, result: str, reason: str) -> dict[str, Any]:
        s = self.settings
        log = self.out_dir / "pytest.log"
        path = str(self.rel_dir / "pytest.log") if log.exists() else ""
        start = self.start.isoformat()
        return empty_summary(result, reason, s.shard_index, s.shards, path, self.run_id, start)

    def _say(self, text: str) -> None:
        self.out.write(f"tep-runner: {text}\n")
        self.out.flush()


def git_clone(environ: Mapping[str, str], credentials: Path = gitclone.CREDENTIALS_DIR) -> int:
    """`tep-runner git-clone`: fetch TEP_GIT_REF of TEP_GIT_URL into TEP_GIT_DEST; 0, or 2 on failure."""
    try:
        settings = gitclone.git_settings_from_env(environ)
    except SettingsError as e:
        print(f"tep-runner git-clone: {e}", file=sys.stderr)
        return 2
    present = frozenset(p.name for p in credentials.iterdir()) if credentials.is_dir() else frozenset()
    with tempfile.TemporaryDirectory(prefix="tep-git-") as tmp:
        key = None
        if "ssh-privatekey" in present:
            key = Path(tmp, "id")
            shutil.copyfile(credentials / "ssh-privatekey", key)
            key.chmod(0o600)  # Secret volumes are often 0644, which ssh refuses for a private key
        known_hosts = credentials / "known_hosts" if "known_hosts" in present else Path(tmp, "known_hosts")
        env = {**os.environ, **environ, **gitclone.credential_env(credentials, present, key, known_hosts)}
        for command in gitclone.clone_commands(settings):
            if subprocess.run(command, env=env, check=False).returncode != 0:
                print(f"tep-runner git-clone: failed: {' '.join(command)}", file=sys.stderr)
                return 2
    return 0


def _write_termination_log(path: str, summary: Mapping[str, Any], out: TextIO) -> None:
    if not path:
        return
    try:
        Path(path).write_text(termination_message(summary))
    except OSError as e:
        out.write(f"tep-runner: cannot write the termination message to {path}: {e}\n")


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (xdist's workers of a controller); none where /proc is missing."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _kill(pid: int, *, group: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already (a group: nothing left in it)
        (os.killpg if group else os.kill)(pid, signal.SIGKILL)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    temporary.write_text(text)
    os.replace(temporary, path)


def _now() -> datetime:
    return datetime.now(UTC)
