"""Tags and limits on every backend: ``JobQueue.set_limit(tag, n)`` lets at most n jobs
tagged ``tag`` run at once across worker threads, step processes and worker processes,
measured from the start and end times the jobs record; untagged jobs are not held back;
limits change while jobs wait; ``max_active`` on a map; priority across gated and free
jobs; bad input refused."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support import jobs
from support.cli import start_cli, stop
from support.helpers import drain, lines, wait_until

from gigq_flow import Job, JobQueue, Workflow, WorkflowRun, task
from gigq_flow.errors import ConfigurationError

pytestmark = pytest.mark.contract

Interval = tuple[str, float, float]


def intervals(log: Path) -> list[Interval]:
    """What :func:`support.jobs.timed` recorded: (label, start, end) per job."""
    found = []
    for line in lines(log):
        label, start, end = line.split()
        found.append((label, float(start), float(end)))
    return found


def peak(spans: list[Interval]) -> int:
    """The most spans that overlap at one moment (one ending as another starts: no overlap)."""
    events = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    running = most = 0
    for _, delta in events:
        running += delta
        most = max(most, running)
    return most


def timed_task(wf: Workflow, label: str, log: Path, seconds: float, **options) -> Job:
    return wf.add_task(jobs.timed, params={"label": label, "log_path": str(log),
                                           "seconds": seconds}, name=label, **options)


def running_count(queue: JobQueue) -> int:
    return len(queue.list_jobs(status="running"))


class Workers:
    """Starts six places to run jobs in one of three ways, and ends them."""

    def __init__(self, mode: str, db_path, tmp_path: Path, make_worker) -> None:
        self.mode, self.db_path, self.tmp_path = mode, db_path, tmp_path
        self.make_worker = make_worker
        self.commands: list = []

    def start(self, queue: JobQueue) -> None:
        """Start them and return once each is registered with the queue."""
        if self.mode == "cli":
            self.commands = [
                start_cli("--db", self.db_path, "worker", "--concurrency", "2",
                          "--polling-interval", "0.1", "--worker-id", f"cli-{i}",
                          cwd=self.tmp_path)
                for i in range(3)]
            expected = 3
        else:
            self.make_worker(self.db_path, polling_interval=0.05, concurrency=6,
                             executor=self.mode).start_background()
            expected = 1
        wait_until(lambda: sum(w["state"] == "alive" for w in queue.list_workers()) >= expected,
                   30, what=f"{expected} workers alive")

    def stop(self) -> None:
        for command in self.commands:
            code, _, err = stop(command)
            assert code == 0 and "Traceback" not in err, err


@pytest.mark.parametrize("mode", ["threads", "processes", "cli"])
def test_tagged_jobs_never_exceed_the_limit_while_untagged_ones_run_in_parallel(
        queue, db_path, tmp_path, make_worker, mode):
    tagged, free = tmp_path / "tagged.log", tmp_path / "free.log"
    queue.set_limit("t", 2)
    wf = Workflow("limited")
    for i in range(8):
        timed_task(wf, f"t{i}", tagged, 0.25, tags=["t"])
    for i in range(4):
        timed_task(wf, f"f{i}", free, 0.8)
    workers = Workers(mode, db_path, tmp_path, make_worker)
    workers.start(queue)
    try:
        run = wf.submit(queue)
        assert run.wait(60), run
    finally:
        workers.stop()

    assert set(run.results()) == {job.name for job in wf.jobs}
    assert peak(intervals(tagged)) == 2
    assert peak(intervals(free)) >= 3


def test_a_job_with_two_limited_tags_respects_both(queue, db_path, tmp_path, make_worker):
    both, only_b = tmp_path / "both.log", tmp_path / "b.log"
    queue.set_limit("a", 2)
    queue.set_limit("b", 3)
    wf = Workflow("two-tags")
    for i in range(6):
        timed_task(wf, f"ab{i}", both, 0.2, tags=["a", "b"])
        timed_task(wf, f"b{i}", only_b, 0.2, tags=["b"])
    worker = make_worker(db_path, polling_interval=0.05, concurrency=6)
    worker.start_background()
    run = wf.submit(queue)
    assert run.wait(60), run

    assert peak(intervals(both)) == 2  # a's limit
    assert peak(intervals(both) + intervals(only_b)) == 3  # b's limit, reached
    assert queue.get_status(wf.jobs[0].id)["gate"] == "a\nb"


def test_raising_then_removing_a_limit_lets_more_run(queue, db_path, make_worker, request):
    keys = [f"{request.node.nodeid}:{i}" for i in range(6)]
    queue.set_limit("t", 1)
    ids = [queue.submit(Job(f"held {i}", jobs.block_until_released, params={"key": key},
                            tags=["t"]))
           for i, key in enumerate(keys)]
    worker = make_worker(db_path, polling_interval=0.05, concurrency=6)
    worker.start_background()
    try:
        wait_until(lambda: running_count(queue) == 1, what="the first job running")
        time.sleep(0.3)  # five idle threads poll in the meantime
        assert running_count(queue) == 1

        queue.set_limit("t", 3)
        wait_until(lambda: running_count(queue) == 3, what="three jobs running")
        time.sleep(0.3)
        assert running_count(queue) == 3

        queue.set_limit("t", None)
        assert queue.limits() == {}
        wait_until(lambda: running_count(queue) == 6, what="all six jobs running")
    finally:
        for key in keys:
            jobs.event(f"{key}:release").set()
    wait_until(lambda: all(queue.status_of(job_id) == "completed" for job_id in ids),
               what="all six completed")
    assert all(queue.get_status(job_id)["gate"] is None for job_id in ids)


def test_limits_lists_each_limit_and_none_removes_it(queue):
    assert queue.limits() == {}
    queue.set_limit("gpu", 1)
    queue.set_limit("api", 4)
    queue.set_limit("gpu", 2)
    assert queue.limits() == {"api": 4, "gpu": 2}
    queue.set_limit("api", None)
    queue.set_limit("never set", None)
    assert queue.limits() == {"gpu": 2}
    assert JobQueue(queue.db_path).limits() == {"gpu": 2}  # stored, not held in memory


def test_a_limit_set_after_submission_applies_to_the_waiting_jobs(queue, db_path, tmp_path,
                                                                  make_worker):
    log = tmp_path / "tagged.log"
    wf = Workflow("late-limit")
    for i in range(6):
        timed_task(wf, f"t{i}", log, 0.2, tags=["t", "other"])
    run = wf.submit(queue)
    assert queue.get_status(wf.jobs[0].id)["gate"] is None

    queue.set_limit("t", 2)
    assert {queue.get_status(job.id)["gate"] for job in wf.jobs} == {"t"}
    worker = make_worker(db_path, polling_interval=0.05, concurrency=6)
    worker.start_background()
    assert run.wait(60), run
    assert peak(intervals(log)) == 2


def test_a_limit_on_a_tag_that_json_escapes_applies_to_waiting_jobs(queue):
    tags = ['say "hi"', "back\\slash", "100%_done"]
    ids = [queue.submit(Job(f"job {i}", jobs.noop, tags=[tag])) for i, tag in enumerate(tags)]
    for tag in tags:
        queue.set_limit(tag, 1)
    assert [queue.get_status(job_id)["gate"] for job_id in ids] == tags


def test_max_active_on_a_map_holds_and_its_limit_goes_with_the_map(queue, db_path, tmp_path,
                                                                  make_worker):
    log = tmp_path / "items.log"
    wf = Workflow("max-active")
    labels = wf.add_task(jobs.identity, params={"value": [f"i{n}" for n in range(8)]},
                         name="labels")
    mapped = wf.map(jobs.timed, over=labels, params={"log_path": str(log), "seconds": 0.2},
                    item_param="label", name="timed", max_active=2, tags=["mine"])
    worker = make_worker(db_path, polling_interval=0.05, concurrency=6)
    worker.start_background()
    run: WorkflowRun = wf.submit(queue)
    wait_until(lambda: f"map:{mapped.id}" in queue.limits(), what="the map expanded")
    assert queue.limits() == {f"map:{mapped.id}": 2}
    assert run.wait(60), run

    assert run.results()["timed"] == [f"i{n}" for n in range(8)]
    assert peak(intervals(log)) == 2
    items = [row for row in queue.list_jobs(limit=100) if row["map_of"] == mapped.id]
    assert [row["tags"] for row in items] == [["mine", f"map:{mapped.id}"]] * 8
    # gone with the map: it is read from the map while it waits for its items
    assert queue.limits() == {}


def test_priority_order_holds_between_gated_and_free_jobs(queue, db_path, tmp_path,
                                                          make_worker):
    log = tmp_path / "calls.log"
    queue.set_limit("t", 1)

    def rec(label, priority, tags=()):
        return queue.submit(Job(label, jobs.record_call, priority=priority, tags=list(tags),
                                params={"log_path": str(log), "label": label}))

    rec("free 1", 1)
    rec("gated 5", 5, ["t"])
    rec("free 3", 3)
    rec("gated 2", 2, ["t"])
    rec("gated 3", 3, ["t"])  # ties with "free 3", submitted later
    rec("free 5", 5)  # ties with "gated 5", submitted later
    rec("untouched 4", 4, ["u"])  # a tag without a limit: not gated
    assert drain(make_worker(db_path)) == 7
    assert lines(log) == ["gated 5", "free 5", "untouched 4", "free 3", "gated 3", "gated 2",
                          "free 1"]


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize(("tag", "limit", "message"), [
    ("", 1, "a tag is a non-empty, one-line string, got ''"),
    ("   ", 1, "a tag is a non-empty, one-line string, got '   '"),
    ("a\nb", 1, "a tag is a non-empty, one-line string, got 'a\\nb'"),
    (None, 1, "a tag is a non-empty, one-line string, got None"),
    ("t", 0, "the limit of tag 't' must be an int >= 1, got 0"),
    ("t", -2, "the limit of tag 't' must be an int >= 1, got -2"),
    ("t", 1.5, "the limit of tag 't' must be an int >= 1, got 1.5"),
    ("t", "2", "the limit of tag 't' must be an int >= 1, got '2'"),
    ("t", True, "the limit of tag 't' must be an int >= 1, got True"),
])
def test_set_limit_refuses_bad_input_and_writes_nothing(queue, tag, limit, message):
    queue.set_limit("kept", 3)
    with pytest.raises(ConfigurationError) as refused:
        queue.set_limit(tag, limit)
    assert str(refused.value) == message
    assert queue.limits() == {"kept": 3}


@pytest.mark.parametrize("tags", ["x", ["ok", ""], ["a\nb"], [1], None])
def test_bad_tags_are_refused_naming_them_and_nothing_is_submitted(queue, tags):
    expected = f"tags of job 'noop' must be a list of non-empty, one-line strings, got {tags!r}"
    wf = Workflow("w")
    over = wf.add_task(jobs.numbers, params={"n": 2})
    for make in (
        lambda: Job("noop", jobs.noop, tags=tags),
        lambda: task(jobs.noop, tags=tags),
        lambda: wf.add_task(jobs.noop, tags=tags),
        lambda: wf.map(jobs.noop, over=over, name="noop", tags=tags),
    ):
        with pytest.raises(ConfigurationError) as refused:
            make()
        assert str(refused.value) == expected
    assert queue.stats()["total"] == 0


def test_tags_given_as_any_iterable_are_kept_once_each(queue):
    job = Job("j", jobs.noop, tags=(tag for tag in ["b", "a", "b"]))
    assert job.tags == ("b", "a")
    queue.submit(job)
    assert queue.get_status(job.id)["tags"] == ["b", "a"]
