"""Incremental runs on every backend: what is reused and what runs, why (``explain``),
results stored once, reruns, clearing, and two workers reaching one key at once."""

from __future__ import annotations

import math

import pytest
from support import jobs
from support.helpers import lines
from support.workflows import finish

from gigq_flow import Job, JobQueue, Workflow, task
from gigq_flow.errors import ConfigurationError

pytestmark = pytest.mark.contract


def recorded(wf: Workflow, log, label: str, **options) -> Job:
    """A step that appends ``label`` to ``log`` when it really runs, and returns it."""
    return wf.add_task(jobs.record_call, params={"log_path": str(log), "label": label},
                       name=label, **options)


def pipeline(log, *, a: int = 1, b: int = 2) -> Workflow:
    """load_a, load_b -> total (sums its parents) -> report (logs its calls)."""
    wf = Workflow("pipeline")
    left = wf.add_task(jobs.add, params={"a": a, "b": 0}, name="load_a")
    right = wf.add_task(jobs.add, params={"a": b, "b": 0}, name="load_b")
    total = wf.add_task(jobs.sum_parents, depends_on=[left, right], name="total")
    recorded(wf, log, "report", depends_on=[total])
    return wf


def run(queue: JobQueue, wf: Workflow, cache=True):
    return finish(queue, wf.submit(queue, cache=cache))


def test_a_second_run_reuses_every_result_without_calling_a_step(queue, tmp_path):
    log = tmp_path / "calls.log"
    first = run(queue, pipeline(log))
    second = run(queue, pipeline(log))

    assert lines(log) == ["report"]  # the second run called nothing
    assert second.results() == first.results() == {
        "load_a": 1, "load_b": 2, "total": 3, "report": "report"}
    assert set(first.explain().values()) == {"ran: no earlier result"}
    assert second.explain() == dict.fromkeys(first.results(), f"cached (from run {first.id})")
    snapshot = second.snapshot()
    assert snapshot.cached == 4 and "4 completed (4 cached)" in snapshot.summary()
    first_ids = {job.name: job.id for job in first.snapshot().jobs}
    for job in snapshot.jobs:
        status = queue.get_status(job.id)
        assert status["cached_from"] == first_ids[job.name]
        assert status["result"] == first.results()[job.name]
        assert [e["result"] for e in status["executions"]] == [status["result"]]
    assert all(queue.get_status(i)["cached_from"] is None for i in first_ids.values())


def test_cache_off_by_default_neither_reads_nor_writes(queue, tmp_path):
    log = tmp_path / "calls.log"
    run(queue, pipeline(log), cache=False)
    again = run(queue, pipeline(log), cache=False)

    assert lines(log) == ["report", "report"]
    assert queue.cache_entries() == []
    assert set(again.explain().values()) == {"ran: cache off"}
    assert again.snapshot().cached == 0
    assert all(queue.get_status(job.id)["result_digest"] is None
               for job in again.snapshot().jobs)  # GigQ's rows: results inline


def test_recompute_runs_every_step_and_refreshes_the_entries(queue, tmp_path):
    log = tmp_path / "calls.log"
    run(queue, pipeline(log))
    fresh = run(queue, pipeline(log), cache="recompute")
    reused = run(queue, pipeline(log))

    assert lines(log) == ["report", "report"]
    assert set(fresh.explain().values()) == {"ran: recompute"}
    assert set(reused.explain().values()) == {f"cached (from run {fresh.id})"}
    assert {entry["workflow_id"] for entry in queue.cache_entries()} == {fresh.id}


def test_changed_params_run_the_step_and_an_equal_result_spares_its_children(queue, tmp_path):
    log = tmp_path / "calls.log"
    run(queue, pipeline(log, a=1))
    same_sum = run(queue, pipeline(log, a=1, b=2))
    assert lines(log) == ["report"] and same_sum.snapshot().cached == 4

    # load_a(a=1) -> 1 becomes add(a=3, b=-2)... a different call that returns the same 1:
    wf = pipeline(log)
    wf.jobs[0].params = {"a": 3, "b": -2}
    changed = run(queue, wf)
    reasons = changed.explain()
    assert reasons["load_a"] == "ran: params changed"
    assert reasons["total"].startswith("cached") and reasons["report"].startswith("cached")

    different = run(queue, pipeline(log, a=10))
    reasons = different.explain()
    assert reasons["load_a"] == "ran: params changed"
    assert reasons["load_b"].startswith("cached")
    assert reasons["total"] == "ran: parents changed"
    assert reasons["report"] == "ran: parents changed" and different.results()["total"] == 12
    assert lines(log) == ["report", "report"]  # report's only parent, total, changed


def test_a_step_with_cache_off_always_runs_and_its_children_are_still_reused(queue, tmp_path):
    log = tmp_path / "calls.log"

    def build() -> Workflow:
        wf = Workflow("side-effects")
        effect = recorded(wf, log, "effect", cache=False)
        child = wf.add_task(jobs.identity, params={"value": 7}, depends_on=[effect],
                            name="child")
        assert child.cache
        return wf

    first = run(queue, build())
    again = run(queue, build())

    assert lines(log) == ["effect", "effect"]
    assert again.explain() == {"effect": "ran: cache off",
                               "child": f"cached (from run {first.id})"}


def test_task_options_opt_out_and_cache_version_invalidates(queue, tmp_path):
    log = tmp_path / "calls.log"
    never = task(jobs.record_call, cache=False)
    assert never.options["cache"] is False

    def build(version: str | None) -> Workflow:
        wf = Workflow("versions")
        wf.add_task(jobs.add, params={"a": 1, "b": 1}, name="step", cache_version=version)
        wf.add_task(never, params={"log_path": str(log), "label": "never"})
        return wf

    run(queue, build("1"))
    assert run(queue, build("1")).explain()["step"].startswith("cached")
    assert run(queue, build("2")).explain() == {
        "step": "ran: cache_version or serializer changed", "record_call": "ran: cache off"}
    assert lines(log) == ["never"] * 3


def test_rerun_after_a_failure_reuses_what_completed_and_runs_the_rest(queue, tmp_path):
    log, flags = tmp_path / "calls.log", tmp_path / "flags"
    flags.mkdir()
    (flags / "middle").touch()
    wf = Workflow("resume")
    first = recorded(wf, log, "first")
    middle = wf.add_task(jobs.fail_if_flag, params={"label": "middle", "flag_dir": str(flags)},
                         depends_on=[first], name="middle")
    recorded(wf, log, "last", depends_on=[middle])
    failed = run(queue, wf)
    assert failed.status()["tasks"] == {"first": "completed", "middle": "failed",
                                        "last": "upstream_failed"}
    assert failed.explain() == {"first": "ran: no earlier result", "middle": "ran: failed",
                                "last": "not run: upstream_failed"}

    (flags / "middle").unlink()
    resumed = finish(queue, failed.rerun())
    assert resumed.id != failed.id and resumed.name == "resume"
    assert resumed.results() == {"first": "first", "middle": "middle", "last": "last"}
    assert resumed.explain() == {"first": f"cached (from run {failed.id})",
                                 "middle": "ran: no earlier result",
                                 "last": "ran: no earlier result"}
    assert lines(log) == ["first", "last"]
    own = {job.id for job in resumed.snapshot().jobs}
    assert len(resumed.snapshot().edges) == 2
    assert all(set(edge) <= own for edge in resumed.snapshot().edges)


def test_rerun_keeps_steps_that_opted_out_and_takes_a_cache_mode(queue, tmp_path):
    log = tmp_path / "calls.log"
    wf = Workflow("opt-out")
    recorded(wf, log, "always", cache=False)
    recorded(wf, log, "once")
    original = run(queue, wf, cache=False)

    assert finish(queue, original.rerun()).explain() == {
        "always": "ran: cache off", "once": "ran: no earlier result"}
    assert finish(queue, original.rerun()).explain()["once"].startswith("cached")
    assert finish(queue, original.rerun(cache=False)).explain()["once"] == "ran: cache off"
    with pytest.raises(ConfigurationError, match="cache must be False, True or 'recompute'"):
        original.rerun(cache="yes")
    assert sorted(lines(log)) == ["always"] * 4 + ["once"] * 3


def test_results_are_stored_once_and_a_reuse_copies_nothing(queue):
    big = list(range(5000))

    def build() -> Workflow:
        wf = Workflow("blobs")  # two different calls with one result
        wf.add_task(jobs.add, params={"a": big, "b": []}, name="one")
        wf.add_task(jobs.add, params={"a": [], "b": big}, name="two")
        return wf

    first = run(queue, build())
    assert first.results() == {"one": big, "two": big}
    assert queue.store.count_rows()["result_blobs"] == 1
    assert len(queue.cache_entries()) == 2
    second = run(queue, build())
    assert second.snapshot().cached == 2 and second.results() == first.results()
    assert queue.store.count_rows()["result_blobs"] == 1


def test_clearing_keeps_every_result_that_is_referenced(queue, tmp_path):
    log = tmp_path / "calls.log"
    first = run(queue, pipeline(log))
    expected = first.results()
    assert queue.clear_completed() == 4  # the jobs go; the entries keep their results
    reused = run(queue, pipeline(log))
    assert reused.results() == expected and lines(log) == ["report"]

    assert queue.clear_cache(older_than=3600) == 0
    assert queue.clear_cache() == 4 and queue.cache_entries() == []
    assert reused.results() == expected  # the jobs still hold theirs
    assert queue.clear_completed() == 4
    assert queue.store.count_rows()["result_blobs"] == 0

    after = run(queue, pipeline(log))
    assert set(after.explain().values()) == {"ran: no earlier result"}


def test_two_workers_on_one_key_both_run_and_one_entry_is_kept(queue, tmp_path):
    wf = Workflow("twins")  # one step twice: same function, name and inputs, one key
    for _ in range(2):  # both must run at once: the barrier needs two parties
        wf.add_task(jobs.meet_at_barrier, params={"key": f"twins-{tmp_path.name}"}, name="twin")
    twins = finish(queue, wf.submit(queue, cache=True), concurrency=2)

    assert twins.status()["counts"]["completed"] == 2
    assert twins.explain() == {"twin": ["ran: no earlier result"] * 2}
    entries = [e for e in queue.cache_entries() if e["step"].endswith("meet_at_barrier")]
    assert len(entries) == 1


def test_a_child_of_a_reused_parent_receives_its_result(queue):
    def build(version: str | None = None) -> Workflow:
        wf = Workflow("parents")
        parent = wf.add_task(jobs.identity, params={"value": {"rows": [1, 2]}}, name="parent")
        wf.add_task(jobs.describe_parents, depends_on=[parent], name="child",
                    cache_version=version)
        return wf

    run(queue, build())
    again = run(queue, build(version="2"))  # the child runs again, its parent is reused
    assert again.explain()["parent"].startswith("cached")
    assert again.explain()["child"] == "ran: cache_version or serializer changed"
    assert again.results()["child"] == {"parent": {"rows": [1, 2]}}


def test_a_step_whose_code_cannot_be_read_says_so_in_every_reason(queue):
    def build() -> Workflow:
        wf = Workflow("builtin")
        wf.add_task(math.isclose, params={"a": 1.0, "b": 1.0 + 1e-12})  # C code: no bytecode
        return wf

    first = run(queue, build())
    again = run(queue, build())
    caveat = "; code of math.isclose unreadable, keyed on name and version"
    assert first.explain() == {"isclose": "ran: no earlier result" + caveat}
    assert again.explain() == {"isclose": f"cached (from run {first.id})" + caveat}
    assert again.results() == {"isclose": True}
