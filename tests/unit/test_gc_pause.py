"""The cyclic collector is held off around a submission and a picture of a run, and
handed back as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest
from support import jobs

from gigq_flow import JobQueue, Workflow
from gigq_flow.gc_pause import collector_paused


@pytest.fixture
def eager_collector() -> Iterator[list[int]]:
    """A collector that runs every few allocations; yields the generations it ran."""
    ran: list[int] = []

    def note(phase: str, info: dict) -> None:
        if phase == "start":
            ran.append(info["generation"])

    thresholds = gc.get_threshold()
    gc.set_threshold(5, 1, 1)
    gc.callbacks.append(note)
    try:
        yield ran
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*thresholds)


def test_the_collector_is_off_inside_and_on_again_after_the_outermost_pause():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_pauses_of_two_threads_end_together():
    paused, release = threading.Barrier(2), threading.Event()

    def other() -> None:
        with collector_paused():
            paused.wait()
            release.wait()

    thread = threading.Thread(target=other)
    thread.start()
    with collector_paused():
        paused.wait()
    assert not gc.isenabled()  # the other thread's pause goes on
    release.set()
    thread.join()
    assert gc.isenabled()


def test_a_collector_the_program_turned_off_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_submission_and_a_picture_collect_as_often_whatever_their_size(
        tmp_path, eager_collector):
    queue = JobQueue(str(tmp_path / "q.db"))

    def collections(steps: int) -> int:
        wf = Workflow(f"w{steps}")
        for i in range(steps):
            wf.add_task(jobs.identity, name=f"step-{i // 10}")
        before = len(eager_collector)
        wf.submit(queue).visualize()
        return len(eager_collector) - before

    collections(10)  # the first picture imports the drawing code
    small, large = collections(100), collections(1000)
    assert large == small  # the bulk work triggers none (about 1,000 without the pause)
    before = len(eager_collector)
    kept = [[] for _ in range(100)]  # outside the pauses the collector runs as set
    assert len(eager_collector) > before and len(kept) == 100
    queue.close()
