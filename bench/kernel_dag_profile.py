"""Where gigq_flow's time goes on run.py's kernel-dag DAG (``harness/kernel_dag_systems.py``).

    python bench/kernel_dag_profile.py [--steps 2000] [--workers 4] [--top 25]

In this process, on fresh SQLite files:

- breakdown: the parts of ``Workflow.run`` timed apart, as it does them: build
  (``Workflow`` and ``add_task`` for every step), validate+submit (``workflow.submit``),
  run (a ``Worker(concurrency=--workers)`` in background threads, ``run.wait()``, then
  ``worker.stop(wait=True)``), results (``run.results()``); then ``Workflow.run`` end to
  end for comparison; with 1 worker and with ``--workers``.
- cProfile of the run with one worker: the same DAG, submitted, drained by one worker
  thread's loop (claims and completions in batches, as ``Workflow.run``'s threads do)
  run in this thread, under cProfile; the top ``--top`` functions by own time and by
  cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import threading
import time

from harness.kernel_dag_systems import WIDTH, gigq_flow_workflow
from harness.tempdirs import temporary_directory

from gigq_flow import JobQueue, Worker


def breakdown(steps: int, workers: int) -> dict[str, float]:
    with temporary_directory() as directory:
        queue = JobQueue(os.path.join(directory, "queue.db"))
        began = time.perf_counter()
        workflow = gigq_flow_workflow(steps)
        built = time.perf_counter()
        worker = Worker(queue, polling_interval=1, concurrency=workers)
        worker.start_background()
        run = workflow.submit(queue)
        submitted = time.perf_counter()
        run.wait()
        worker.stop(wait=True)
        ran = time.perf_counter()
        results = run.results()
        done = time.perf_counter()
        assert sum(len(values) for values in results.values()) == steps
        queue.close()
    with temporary_directory() as directory:
        queue = JobQueue(os.path.join(directory, "queue.db"))
        whole = time.perf_counter()
        gigq_flow_workflow(steps).run(queue, workers=workers, progress=False).results()
        whole = time.perf_counter() - whole
        queue.close()
    return {"build": built - began, "validate+submit (worker starting)": submitted - built,
            "run, wait, stop": ran - submitted, "results": done - ran, "total": done - began,
            "Workflow.run end to end": whole}


def profile(steps: int, top: int) -> str:
    """cProfile of one worker thread's loop draining the DAG, run in this thread (as a
    ``Workflow.run`` thread runs it: claims and completions in batches)."""
    with temporary_directory() as directory:
        queue = JobQueue(os.path.join(directory, "queue.db"))
        run = gigq_flow_workflow(steps).submit(queue)
        worker = Worker(queue, polling_interval=0.05)
        worker.running = True

        def stop_when_done() -> None:
            run.wait()
            worker.stop()

        threading.Thread(target=stop_when_done, daemon=True).start()
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        worker._loop(0)  # the loop of a worker thread, here, until the run is done
        profiler.disable()
        seconds = time.perf_counter() - began
        worker.close()
        assert sum(len(values) for values in run.results().values()) == steps
        queue.close()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    out.write(f"one worker thread's loop, {steps} steps: {seconds:.3f} s under cProfile, "
              f"{1e6 * seconds / steps:.0f} µs a step\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps of the DAG (2000)")
    parser.add_argument("--workers", type=int, default=4, help="worker threads (4)")
    parser.add_argument("--top", type=int, default=25, help="functions listed (25)")
    args = parser.parse_args()
    if args.steps < 2 * WIDTH or args.steps % WIDTH or args.workers < 1 or args.top < 1:
        parser.error(f"--steps must be a multiple of {WIDTH}, at least {2 * WIDTH}; "
                     "--workers and --top at least 1")
    print(f"{args.steps:,} no-op steps ({args.steps // WIDTH} layers of {WIDTH}), "
          f"load average {' '.join(f'{load:.1f}' for load in os.getloadavg())}")
    for workers in sorted({1, args.workers}):
        parts = breakdown(args.steps, workers)
        print(f"workers={workers}: " + ", ".join(f"{part} {seconds:.3f} s"
                                                 for part, seconds in parts.items()))
    print(profile(args.steps, args.top))


if __name__ == "__main__":
    main()
