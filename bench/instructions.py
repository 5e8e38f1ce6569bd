"""Instructions per job, counted by valgrind's callgrind: steady where timings are not.

Each loop runs twice under ``valgrind --tool=callgrind``, once submitting its jobs and
once submitting and draining them; the difference, divided by the number of jobs, is
what draining one job costs in user-space instructions (the kernel's work is not
counted). Needs valgrind (Debian: ``apt-get install valgrind``).

    python bench/instructions.py [LOOP ...]

Loops: ``gigq_flow`` and ``raw sqlite`` (the systems of ``bench/harness/systems.py``,
3,000 no-op jobs, ``process_one``), ``sql-only`` (gigq_flow's claim and completion
statements in a bare loop over a gigq_flow file), ``dag`` (1,000 parent-child pairs
of a workflow, drained by ``Worker.process_one``) and ``kernel-dag`` (run.py's layered
kernel-dag DAG of 3,000 steps, drained as a ``Workflow.run`` thread drains it: quick
steps claimed and completed in batches).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import partial

from harness.jobs import noop
from harness.kernel_dag_systems import gigq_flow_workflow
from harness.systems import SYSTEMS
from harness.tempdirs import temporary_directory

import gigq_flow
from gigq_flow.clock import now_iso
from gigq_flow.store import sqlite as sqlite_store

JOBS = 3000
PAIRS = 1000


def system_loop(name: str, drain: bool, directory: str) -> None:
    system = SYSTEMS[name](directory)
    system.submit(JOBS)
    while drain and system.process_one():
        pass
    system.close()


def sql_only(drain: bool, directory: str) -> None:
    path = os.path.join(directory, "q.db")
    queue = gigq_flow.JobQueue(path)
    for _ in range(JOBS):
        queue.submit(gigq_flow.Job("noop", noop))
    run = queue.store.db.connection().hot.execute  # the cursor the store runs them on
    attempt = 0
    while drain:
        run("BEGIN IMMEDIATE")
        now = now_iso()
        row = run(sqlite_store.CLAIM_HEAD, (now,)).fetchone()
        if row is None:
            run("COMMIT")
            break
        attempt += 1
        run(sqlite_store.CLAIM_ROW, ("w", now, now, f"x-{attempt}", row[-1]))
        run("COMMIT")
        noop()
        now = now_iso()
        run(sqlite_store.COMPLETE_CHILDLESS, (None, now, now, row[-1], f"x-{attempt}", row[0]))
    queue.close()


def dag(drain: bool, directory: str) -> None:
    path = os.path.join(directory, "q.db")
    workflow = gigq_flow.Workflow("pairs")
    for i in range(PAIRS):
        parent = workflow.add_task(noop, name=f"parent {i}")
        workflow.add_task(noop, depends_on=[parent], name=f"child {i}")
    workflow.submit(gigq_flow.JobQueue(path))
    worker = gigq_flow.Worker(path)
    while drain and worker.process_one():
        pass
    worker.close()


def kernel_dag(drain: bool, directory: str) -> None:
    queue = gigq_flow.JobQueue(os.path.join(directory, "q.db"))
    gigq_flow_workflow(JOBS).submit(queue)
    worker = gigq_flow.Worker(queue, polling_interval=1)
    worker.running = True
    worker._thread_state.batch = worker._batches.new()  # as a loop thread, in this one
    misses = 0
    while drain and misses < 2:  # after the first miss, its last batch is written
        misses = 0 if worker._process_one("w") else misses + 1
    worker.running = False
    worker.close()


LOOPS = {"gigq_flow": partial(system_loop, "gigq_flow"),
         "raw sqlite": partial(system_loop, "raw sqlite"), "sql-only": sql_only, "dag": dag,
         "kernel-dag": kernel_dag}


def run_phase(loop: str, phase: str) -> None:
    """Run one loop's phase in this process (what valgrind measures)."""
    with temporary_directory() as directory:
        LOOPS[loop](phase == "drain", directory)


def count(loop: str, phase: str) -> int:
    """Instructions of a whole phase, run under callgrind in a child process."""
    with temporary_directory() as out:
        result = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.out",
             sys.executable, __file__, "--phase", phase, loop],
            env={**os.environ, "PYTHONMALLOC": "malloc"}, capture_output=True, text=True,
            check=True,
        )
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


def main() -> None:
    if sys.argv[1:2] == ["--phase"]:
        run_phase(sys.argv[3], sys.argv[2])
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed; on Debian: apt-get install valgrind")
    for loop in sys.argv[1:] or list(LOOPS):
        if loop not in LOOPS:
            sys.exit(f"unknown loop {loop!r}; choose from {', '.join(LOOPS)}")
        jobs = 2 * PAIRS if loop == "dag" else JOBS
        per_job = (count(loop, "drain") - count(loop, "submit")) / jobs
        print(f"{loop:<12} {per_job:>10,.0f} instructions per job")


if __name__ == "__main__":
    main()
