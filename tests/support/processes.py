"""Worker subprocesses for the tests that need real worker processes, and what the tests
read from /proc about processes.

:func:`worker_main` is the body of a worker subprocess; :class:`WorkerPool` (the ``pool``
fixture) starts, signals, kills and reaps them. Jobs in those processes coordinate with
the test through files (see :func:`support.jobs.hold` and :func:`hold_job`).
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gigq_flow
from support import jobs
from support.db import rows
from support.helpers import subprocess_env, wait_until


def hold_job(directory: Path, name: str = "held", **options) -> tuple[gigq_flow.Job, str, str]:
    """A Job running :func:`support.jobs.hold`, with the paths of its started and release
    files."""
    started, release = str(directory / f"{name}.started"), str(directory / f"{name}.release")
    return gigq_flow.Job(name, jobs.hold, params={"started": started, "release": release},
                         **options), started, release


def worker_main(argv: Sequence[str]) -> int:
    """Body of a worker subprocess: ``Worker(...).start()`` with the options given.

    Prints ``ready <pid>`` once the worker object exists, then (with ``--go FILE``)
    waits for that file, and prints ``exited cleanly`` when ``start()`` returns.
    """
    parser = argparse.ArgumentParser(prog="support-worker")
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


WORKER_COMMAND = ("import sys; from support.processes import worker_main; "
                  "sys.exit(worker_main(sys.argv[1:]))")


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
                [sys.executable, "-c", WORKER_COMMAND, *args],
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


# -- processes as /proc shows them ---------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields is not None and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found
