"""Throughput with 1, 4 and 8 worker processes: gigq_flow on PostgreSQL beside gigq_flow on
SQLite and procrastinate (a PostgreSQL task queue) on the same server, in one run.

    python bench/postgres.py [--jobs 3000] [--repeat 2] [--url postgresql://...] [--json PATH]

For each system and process count: ``--jobs`` no-op jobs are inserted in one transaction
(not timed), then that many worker processes, started together behind a barrier, drain
the queue one job at a time (gigq_flow: ``Worker.process_one`` until none is ready;
procrastinate: ``run_worker(wait=False, concurrency=1)``); the figure is jobs per second
from the common start to the last completion in any process, the best of ``--repeat``.
Also measured: submitting SUBMIT_JOBS jobs one by one (one transaction each) from one process.
Every PostgreSQL measurement uses a fresh schema, dropped afterwards. The server is the
one at ``--url`` (default $GIGQ_FLOW_BENCH_POSTGRES, else the local test database),
with its own settings (``synchronous_commit`` as configured: each commit waits for the
WAL flush); SQLite runs with gigq_flow's default ``synchronous=NORMAL``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from harness import postgres_jobs
from harness.machine import describe, installed, summary
from harness.processes import Drain, in_processes, time_processes
from harness.tempdirs import temporary_directory

import gigq_flow
from gigq_flow.codec import to_new_job
from gigq_flow.store import open_store
from gigq_flow.store.postgres_connection import close_pools

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_ENV = "GIGQ_FLOW_BENCH_POSTGRES"
DEFAULT_JOBS = 3000
DEFAULT_REPEAT = 2
PROCESS_COUNTS = (1, 4, 8)
SUBMIT_JOBS = 1000
SYSTEMS = ("gigq_flow pg", "gigq_flow sqlite", "procrastinate")


# -- one system's queue: create, fill, drain in a child, drop -----------------------------
class Queue:
    """A fresh queue of one system; ``location`` is what a worker process needs."""

    def __init__(self, system: str, server: str, directory: str) -> None:
        self.system, self.server = system, server
        self.schema = f"bench_{uuid.uuid4().hex[:12]}"
        if system == "gigq_flow sqlite":
            self.location = os.path.join(directory, f"{self.schema}.db")
        elif system == "gigq_flow pg":
            self.location = f"{server}?schema={self.schema}"
        else:
            self.location = f"{server}|{self.schema}"
            asyncio.run(self._procrastinate_schema())

    async def _procrastinate_schema(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.server, autocommit=True) as conn:
            await conn.execute(f'CREATE SCHEMA "{self.schema}"')
        app = postgres_jobs.procrastinate_app(self.server, self.schema)
        async with app.open_async():
            await app.schema_manager.apply_schema_async()

    def fill(self, jobs: int) -> None:
        """Insert ``jobs`` no-op jobs in one transaction."""
        if self.system == "procrastinate":
            asyncio.run(self._procrastinate_fill(jobs))
            return
        store = open_store(self.location)
        store.submit([to_new_job(gigq_flow.Job(f"noop-{i}", postgres_jobs.noop))
                      for i in range(jobs)])
        store.close()

    async def _procrastinate_fill(self, jobs: int) -> None:
        app = postgres_jobs.procrastinate_app(self.server, self.schema)
        async with app.open_async():
            await app.tasks["noop"].batch_defer_async(*({} for _ in range(jobs)))

    def submit_one_by_one(self, jobs: int) -> float:
        """Jobs per second submitted one transaction each, from this process."""
        if self.system == "procrastinate":
            return asyncio.run(self._procrastinate_submit(jobs))
        queue = gigq_flow.JobQueue(self.location)
        began = time.perf_counter()
        for i in range(jobs):
            queue.submit(gigq_flow.Job(f"noop-{i}", postgres_jobs.noop))
        return jobs / (time.perf_counter() - began)

    async def _procrastinate_submit(self, jobs: int) -> float:
        app = postgres_jobs.procrastinate_app(self.server, self.schema)
        async with app.open_async():
            task = app.tasks["noop"]
            began = time.perf_counter()
            for _ in range(jobs):
                await task.defer_async()
            return jobs / (time.perf_counter() - began)

    def unfinished(self) -> int:
        if self.system == "gigq_flow sqlite":
            stats = gigq_flow.JobQueue(self.location).stats()
            return stats["pending"] + stats["running"]
        with psycopg.connect(self.server) as conn:
            table = "procrastinate_jobs" if self.system == "procrastinate" else "jobs"
            status = "status IN ('todo', 'doing')" if self.system == "procrastinate" \
                else "status IN ('pending', 'running')"
            return conn.execute(f'SELECT COUNT(*) FROM "{self.schema}".{table} WHERE {status}'
                                ).fetchone()[0]

    def drop(self) -> None:
        if self.system == "gigq_flow sqlite":
            return
        close_pools()
        with psycopg.connect(self.server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@contextmanager
def worker_drain(system: str, location: str) -> Iterator[Drain]:
    """What one worker process drains: procrastinate's worker until the queue is empty,
    or a gigq_flow Worker's ``process_one`` until none is ready."""
    if system == "procrastinate":
        app = postgres_jobs.procrastinate_app(*location.split("|"))

        def drain() -> float | None:
            app.run_worker(queues=["bench"], wait=False, concurrency=1,
                           install_signal_handlers=False, listen_notify=False)
            return postgres_jobs.last_completion()

        yield drain
        return
    worker = gigq_flow.Worker(location)

    def drain_gigq_flow() -> float | None:
        while worker.process_one():
            pass
        return postgres_jobs.last_completion()

    try:
        yield drain_gigq_flow
    finally:
        worker.close()


def drain(system: str, location: str, processes: int) -> float:
    """Seconds from the common start to the last completion in any process."""
    return time_processes(worker_drain, (system, location), processes, system)


# -- the run ---------------------------------------------------------------------------------
def procrastinate_unavailable(server: str) -> str | None:
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        return "procrastinate is not installed (pip install procrastinate)"
    try:
        queue = Queue("procrastinate", server, "")
        queue.drop()
    except Exception as exc:  # noqa: BLE001 - reported, and the column left out
        return f"procrastinate cannot run here: {type(exc).__name__}: {exc}"
    return None


def measure(server: str, jobs: int, repeat: int, systems: list[str],
            log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Jobs per second by row label, then system."""
    rates: dict[str, dict[str, float]] = {}
    with temporary_directory() as directory:
        for run in range(1, repeat + 1):
            label = f"submit {SUBMIT_JOBS}, one by one"
            for system in systems:
                log(f"  {label}, run {run}/{repeat}: {system}")
                queue = Queue(system, server, directory)
                try:
                    rate = queue.submit_one_by_one(SUBMIT_JOBS)
                finally:
                    queue.drop()
                by_system = rates.setdefault(label, {})
                by_system[system] = max(rate, by_system.get(system, 0.0))
            for count in PROCESS_COUNTS:
                label = in_processes(count)
                for system in systems:
                    log(f"  {label}, run {run}/{repeat}: {system}")
                    queue = Queue(system, server, directory)
                    try:
                        queue.fill(jobs)
                        seconds = drain(system, queue.location, count)
                        left = queue.unfinished()
                        if left:
                            raise RuntimeError(f"{system}: {left} jobs unfinished after the drain")
                    finally:
                        queue.drop()
                    by_system = rates.setdefault(label, {})
                    by_system[system] = max(jobs / seconds, by_system.get(system, 0.0))
    return rates


def machine(server: str) -> dict[str, str]:
    with psycopg.connect(server) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    return describe({
        "postgresql": f"{server_version} (synchronous_commit={commit}, same machine)",
        "psycopg": installed("psycopg"),
        "procrastinate": installed("procrastinate"),
        "gigq_flow": installed("gigq-flow"),
    })


def table(rates: dict[str, dict[str, float]], systems: list[str]) -> str:
    """Jobs per second by system, then gigq_flow on PostgreSQL against the others."""
    ours = systems[0]
    peers = systems[1:]
    width = max(len(label) for label in rates)
    header = [f"{'jobs/s':<{width}}", *(f"{name:>17}" for name in systems),
              *(f"{'pg vs ' + peer.replace('gigq_flow ', ''):>17}" for peer in peers)]
    lines = ["  ".join(header)]
    for label, by_system in rates.items():
        cells = [f"{label:<{width}}", *(f"{by_system[name]:>17,.0f}" for name in systems),
                 *(f"{by_system[ours] / by_system[peer]:>17.2f}" for peer in peers)]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def scaling(rates: dict[str, dict[str, float]], systems: list[str]) -> str:
    one = in_processes(1)
    lines = []
    for system in systems:
        steps = [f"{rates[label][system] / rates[one][system]:.2f}x with {label.split(', ')[1]}"
                 for label in rates if label.startswith("run, ") and label != one]
        lines.append(f"{system}: {', '.join(steps)} (against 1 process)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get(URL_ENV, DEFAULT_URL),
                        help=f"the PostgreSQL database (default: ${URL_ENV}, else {DEFAULT_URL})")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS,
                        help=f"no-op jobs drained per measurement ({DEFAULT_JOBS})")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help=f"runs per measurement; the best is kept ({DEFAULT_REPEAT})")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args()
    if args.jobs < 1 or args.repeat < 1:
        parser.error("--jobs and --repeat must be at least 1")

    about = machine(args.url)
    systems = list(SYSTEMS)
    missing = procrastinate_unavailable(args.url)
    if missing:
        systems.remove("procrastinate")
    began = time.perf_counter()
    rates = measure(args.url, args.jobs, args.repeat, systems,
                    lambda line: print(line, file=sys.stderr, flush=True))
    print(summary(about))
    print(f"--jobs {args.jobs}, best of {args.repeat}, {time.perf_counter() - began:.0f} s\n")
    print(table(rates, systems))
    print()
    print(scaling(rates, systems))
    if missing:
        print(f"\nprocrastinate left out: {missing}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"machine": about, "jobs": args.jobs, "repeat": args.repeat,
                       "rates": rates, "procrastinate": missing or "measured"}, out, indent=2)


if __name__ == "__main__":
    main()
