"""Job functions and worker subprocesses for the reliability suite.

Workers import job functions by module and name, so these live in an importable
module (``tests/`` is on ``sys.path`` in the test process and on ``PYTHONPATH`` in
worker subprocesses). The second half holds what the tests need to drive real worker
processes: :func:`worker_main` (the body of a worker subprocess) and
:class:`WorkerPool` (start, signal, kill and reap them).

Jobs that coordinate with the test process do it through files, since they run in
other processes: a job appends its pid to a "started" file, waits for a "release"
file, and so on.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from shutil import copyfile  # used by ``snapshot``; see test_allow_list_covers_imported_names
from typing import Any, Sequence
import gigq_flow
import helpers
from helpers import rows, wait_until

FAIL_ENV = "RELFUNCS_FAIL"
"""When set in a worker's environment, :func:`hold` raises instead of returning."""


# -- job functions -------------------------------------------------------------------------
def noop() -> None:
    return None


def add(a: int, b: int) -> int:
    return a + b


def identity(path: Any) -> Any:
    return path


def work(key: str, ms: float) -> dict[str, Any]:
    """Sleep ``ms`` milliseconds; the result names the job and the process that ran it."""
    time.sleep(ms / 1000)
    return {"key": key, "pid": os.getpid()}


def dag_step(key: str, ms: float, parents: list[str], violations: str,
             parent_results: Any = None) -> dict[str, Any]:
    """A DAG node: check that every parent's result is there (the parent completed
    before this attempt started); a missing one is appended to ``violations``."""
    seen = {value.get("key") for value in (parent_results or {}).values()
            if isinstance(value, dict)}
    missing = sorted(set(parents) - seen)
    if missing:
        with open(violations, "a") as f:
            f.write(f"{key} started before {missing} completed\n")
    time.sleep(ms / 1000)
    return {"key": key, "pid": os.getpid()}


def append_line(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(f"{text}\n")
        f.flush()


def hold(started: str, release: str, timeout: float = 120.0) -> dict[str, Any]:
    """Append this pid to ``started``, wait for the file ``release`` to exist, then
    return ``{"pid": ...}`` (or raise, in a worker whose environment sets FAIL_ENV)."""
    append_line(started, str(os.getpid()))
    deadline = time.monotonic() + timeout
    while not os.path.exists(release):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{release} never appeared")
        time.sleep(0.01)
    if os.environ.get(FAIL_ENV):
        raise RuntimeError(f"attempt in process {os.getpid()} failed on purpose")
    return {"pid": os.getpid()}


def hold_job(directory: Path, name: str = "held", **options) -> tuple[gigq_flow.Job, str, str]:
    """A Job running ``hold``, with the paths of its started and release files."""
    started, release = str(directory / f"{name}.started"), str(directory / f"{name}.release")
    return gigq_flow.Job(name, hold, params={"started": started, "release": release},
                         **options), started, release


def sleep_for(seconds: float, started: str) -> float:
    append_line(started, str(os.getpid()))
    time.sleep(seconds)
    return seconds


def die(started: str) -> None:
    """Kill the worker process running it, every time (a poison job)."""
    append_line(started, str(os.getpid()))
    os._exit(1)


def touch(path: str) -> str:
    """Create ``path``. Pickled payloads call it on unpickling to show they were decoded."""
    Path(path).touch()
    return path


def snapshot(src: str, dst: str) -> str:
    copyfile(src, dst)
    return dst


class UnpicklingSideEffect:
    """Unpickling this object creates a file: proof that a payload was decoded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (touch, (self.path,))


# -- worker subprocesses -------------------------------------------------------------------
def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for worker subprocesses, without this process's failure switch."""
    env = helpers.subprocess_env()
    env.pop(FAIL_ENV, None)
    env.update(extra or {})
    return env


def worker_main(argv: Sequence[str]) -> int:
    """Body of a worker subprocess: ``Worker(...).start()`` with the options given.

    Prints ``ready <pid>`` once the worker object exists, then (with ``--go FILE``)
    waits for that file, and prints ``exited cleanly`` when ``start()`` returns.
    """
    parser = argparse.ArgumentParser(prog="relfuncs-worker")
    parser.add_argument("db")
    parser.add_argument("--id", default=None)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--allow", action="append", default=None)
    parser.add_argument("--allow-pickle", action="store_true")
    parser.add_argument("--go", default=None, help="wait for this file before starting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    from gigq_flow import Worker

    worker = Worker(args.db, worker_id=args.id, polling_interval=args.poll,
                    concurrency=args.concurrency, lease_timeout=args.lease,
                    grace_period=args.grace, allowed_modules=args.allow,
                    allow_pickle=args.allow_pickle)
    print(f"ready {os.getpid()}", flush=True)
    if args.go:
        while not os.path.exists(args.go):
            time.sleep(0.005)
    worker.start()
    print("exited cleanly", flush=True)
    return 0


class WorkerProcess:
    """One worker subprocess, its output in ``<dir>/<name>.out`` / ``.err``."""

    def __init__(self, db: Path, directory: Path, name: str, *, env: dict[str, str] | None = None,
                 **options: Any) -> None:
        self.name = name
        self.worker_id = options.pop("worker_id", name)
        args = [str(db), "--id", self.worker_id]
        for option, value in options.items():
            flag = "--" + option.replace("_", "-")
            if value is True:
                args.append(flag)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    args += [flag, str(item)]
            elif value is not None and value is not False:
                args += [flag, str(value)]
        self.out_path = directory / f"{name}.out"
        self.err_path = directory / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c",
                 "import sys, relfuncs; sys.exit(relfuncs.worker_main(sys.argv[1:]))", *args],
                env=subprocess_env(env), stdout=out, stderr=err, cwd=str(directory),
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def ready(self) -> bool:
        return "ready" in self.out_path.read_text()

    def registered(self, db: Path) -> bool:
        """True once ``start()`` runs: its signal handlers are installed, and it recorded
        itself in the workers table (a SIGTERM before that kills it outright)."""
        try:
            return bool(rows(db, "SELECT 1 FROM workers WHERE id = ? AND pid = ?",
                             (self.worker_id, self.pid)))
        except (sqlite3.OperationalError, gigq_flow.DatabaseError):  # no workers table yet
            return False

    def signal(self, signum: int) -> None:
        if self.alive():
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait()


class WorkerPool:
    """Starts worker subprocesses and makes sure none outlives the test."""

    def __init__(self, db: Path, directory: Path) -> None:
        self.db = db
        self.directory = directory
        self.started: list[WorkerProcess] = []

    def spawn(self, name: str, **options: Any) -> WorkerProcess:
        worker = WorkerProcess(self.db, self.directory, name, **options)
        self.started.append(worker)
        return worker

    def stop_all(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every live worker once it runs ``start()``, wait for it; returns exit
        codes by name."""
        for worker in self.started:
            if worker.alive():
                wait_until(lambda w=worker: w.registered(self.db) or not w.alive(), timeout,
                           what=f"{worker.name} registered")
                worker.signal(signal.SIGTERM)
        codes = {}
        for worker in self.started:
            try:
                codes[worker.name] = worker.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.kill()
                codes[worker.name] = worker.proc.returncode
        return codes

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()

    def outputs(self) -> str:
        return "\n".join(f"== {w.name} ==\n{w.output()}" for w in self.started)


def lines(path: str | Path) -> list[str]:
    try:
        return Path(path).read_text().split()
    except FileNotFoundError:
        return []
