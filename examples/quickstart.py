"""Quickstart in GigQ's style: define jobs, submit them to a queue, run a worker."""

import os
import sys

from gigq_flow import Job, JobQueue, Worker


def square(x):
    return x * x


def total(parent_results):
    return sum(parent_results.values())


def main(db_path: str = "quickstart.db") -> int:
    queue = JobQueue(db_path)
    squares = [Job(f"square-{x}", square, params={"x": x}) for x in range(1, 5)]
    for job in squares:
        queue.submit(job)
    summed = Job("total", total, dependencies=[job.id for job in squares])
    queue.submit(summed)

    worker = Worker(db_path)
    while worker.process_one():
        pass
    print("total of squares:", queue.get_result(summed.id))
    print("stats:", queue.stats())
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main(*sys.argv[1:]))
