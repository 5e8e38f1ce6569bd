"""Fan out CPU-bound work over worker processes, then fan the results back in.

    plan ──┬── count_primes (chunk 1) ──┐
           ├── count_primes (chunk 2) ──┤
           ├── ...                      ├── combine
           └── count_primes (chunk N) ──┘

``plan`` splits ``[0, limit)`` into chunks; one ``count_primes`` job per chunk counts the
primes in it; ``combine`` adds the counts up. The chunks run in parallel on worker
*processes* (threads would share one interpreter lock), started here with
``multiprocessing``; in production they would be ``gigq-flow worker`` processes on as
many machines as share the queue.

Worker processes import each job's function by module and name, so the jobs must name
this module (``fan_out_fan_in``), not ``__main__``: the last lines run ``main()`` from
the module as imported by that name.

    python examples/fan_out_fan_in.py [--db fan_out.db] [--limit 2000000] [--chunks 16]
                                      [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import sys
import time

from gigq_flow import JobQueue, Worker, Workflow, task


@task
def plan(limit: int, chunks: int) -> list[list[int]]:
    """The chunk boundaries: ``chunks`` half-open ranges covering ``[0, limit)``."""
    step = math.ceil(limit / chunks)
    return [[start, min(start + step, limit)] for start in range(0, limit, step)]


@task
def count_primes(chunk: int, parent_results) -> dict:
    """How many primes lie in the ``chunk``-th range of the plan (and which process counted)."""
    start, stop = parent_results.by_name["plan"][chunk]
    return {"chunk": chunk, "primes": sum(1 for n in range(start, stop) if is_prime(n)),
            "pid": os.getpid()}


@task
def combine(parent_results) -> dict:
    """Fan-in: every chunk's count, added up; parents arrive in dependency order."""
    parts = [part for name, part in parent_results.by_name.items() if name.startswith("chunk")]
    return {"primes": sum(part["primes"] for part in parts),
            "processes": len({part["pid"] for part in parts})}


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    return all(n % d for d in range(3, math.isqrt(n) + 1, 2))


def build(limit: int, chunks: int) -> Workflow:
    wf = Workflow(f"primes below {limit}")
    planned = wf.add_task(plan, {"limit": limit, "chunks": chunks})
    parts = [wf.add_task(count_primes, {"chunk": i}, depends_on=[planned], name=f"chunk_{i}")
             for i in range(chunks)]
    wf.add_task(combine, depends_on=parts)
    return wf


def run_worker(db_path: str, index: int) -> None:
    """The body of one worker process: runs jobs until SIGTERM, then exits 0."""
    Worker(db_path, worker_id=f"primes-{index}", polling_interval=0.5).start()


def wait_for_workers(queue: JobQueue, count: int, timeout: float = 60) -> None:
    """Until ``count`` workers are alive on the queue (they handle SIGTERM from then on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(worker["state"] == "alive" for worker in queue.list_workers()) >= count:
            return
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="fan_out.db", help="the queue file")
    parser.add_argument("--limit", type=int, default=2_000_000)
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="worker processes (default: one per CPU)")
    args = parser.parse_args(argv)

    queue = JobQueue(args.db)
    started = time.monotonic()
    run = build(args.limit, args.chunks).submit(queue)
    context = multiprocessing.get_context("spawn")  # fresh interpreters, as on any OS
    workers = [context.Process(target=run_worker, args=(args.db, i)) for i in range(args.workers)]
    for process in workers:
        process.start()
    try:
        wait_for_workers(queue, len(workers))  # a SIGTERM before a worker starts kills it
        finished = run.wait(timeout=600, progress=True)
    finally:
        for process in workers:
            process.terminate()  # SIGTERM: the worker finishes its job, then exits 0
        for process in workers:
            process.join(60)
    elapsed = time.monotonic() - started
    if not finished or run.failed():
        print("the run did not complete:", run.failed(), file=sys.stderr)
        return 1
    total = run.results()["combine"]
    print(f"primes below {args.limit}: {total['primes']} "
          f"({args.chunks} chunks on {total['processes']} processes, {elapsed:.1f} s)")
    print("worker exit codes:", [process.exitcode for process in workers])
    return 0 if all(process.exitcode == 0 for process in workers) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fan_out_fan_in  # the jobs must name an importable module, not __main__

    sys.exit(fan_out_fan_in.main())
