"""``JobQueue.running_by_tag``: the running jobs of each limited tag, as the limits commands
and tools show them."""

from __future__ import annotations

import uuid

import pytest
from support import jobs
from support.helpers import status_of, wait_until

from gigq_flow import Job

pytestmark = pytest.mark.contract


def test_counts_running_jobs_of_limited_tags_only(queue, db_path, make_worker):
    queue.set_limit("gpu", 2)
    queue.set_limit("io", 5)
    queue.set_limit("idle", 1)
    keys = [f"tag-{uuid.uuid4()}" for _ in range(4)]
    held = [queue.submit(Job(f"held-{i}", jobs.block_until_released, params={"key": key},
                             tags=tags))
            for i, (key, tags) in enumerate(zip(keys, (["gpu", "io"], ["gpu", "io"], ["gpu"],
                                                       ["cpu"]), strict=True))]
    assert queue.running_by_tag() == {}
    make_worker(db_path, concurrency=4, polling_interval=0.05).start_background()
    try:
        for key in (keys[0], keys[1], keys[3]):
            assert jobs.event(f"{key}:started").wait(10)
        # the third gpu job waits for a place; cpu has no limit, idle runs nothing
        assert status_of(queue, held[2]) == "pending"
        assert queue.running_by_tag() == {"gpu": 2, "io": 2}
        assert queue.limits() == {"gpu": 2, "idle": 1, "io": 5}
    finally:
        for key in keys:
            jobs.event(f"{key}:release").set()
    wait_until(lambda: all(status_of(queue, job_id) == "completed" for job_id in held),
               what="every held job completed")
    assert queue.running_by_tag() == {}
