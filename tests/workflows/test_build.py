"""Building and checking workflows: GigQ's API, the networkx graph, every
validation error and its message, and atomic submission (nothing half-written)."""

from __future__ import annotations

import uuid

import networkx as nx
import pytest
from support import jobs
from support.helpers import drain
from support.workflows import finish, queue_footprint

from gigq_flow import (
    CycleError,
    GigqFlowError,
    Job,
    JobStatus,
    UnknownDependencyError,
    Workflow,
    WorkflowError,
)
from gigq_flow.errors import DuplicateJobError, SelfDependencyError

pytestmark = pytest.mark.contract

# -- GigQ's API ----------------------------------------------------------------------------


def test_gigq_api_attributes_and_submit_all_returns_ids_in_order_added(queue):
    wf = Workflow("etl")
    assert (wf.name, wf.jobs, wf.job_map) == ("etl", [], {})
    load = wf.add_job(Job(name="load", function=jobs.identity, params={"value": 1}))
    clean = wf.add_task(jobs.double, params={"x": 5}, depends_on=[load])
    report = wf.add_task(jobs.add, params={"a": 1, "b": 2}, depends_on=[clean, load])

    assert wf.jobs == [load, clean, report]
    assert wf.job_map == {load.id: load, clean.id: clean, report.id: report}
    assert clean.dependencies == [load.id]
    assert report.dependencies == [clean.id, load.id]

    ids = wf.submit_all(queue)
    assert ids == [load.id, clean.id, report.id]
    for job, name in zip(wf.jobs, ["load", "double", "add"], strict=True):
        stored = queue.get_status(job.id)
        assert stored["name"] == name and stored["status"] == "pending"
    assert queue.get_status(report.id)["dependencies"] == [clean.id, load.id]


def test_gigq_style_jobs_with_dependencies_attribute_run_in_order(queue, make_worker):
    """Code written for GigQ: Jobs built with dependencies=, add_job without depends_on,
    a synchronous worker loop."""
    wf = Workflow("gigq-style")
    first = Job(name="first", function=jobs.identity, params={"value": 10})
    second = Job(name="second", function=jobs.gigq_style, params={"x": 1},
                 dependencies=[first.id])
    wf.add_job(first)
    wf.add_job(second)
    ids = wf.submit_all(queue)
    worker = make_worker(queue.db_path)
    assert drain(worker) == 2
    assert [queue.get_status(i)["status"] for i in ids] == ["completed", "completed"]
    assert queue.get_result(second.id) == 11


def test_add_task_takes_plain_function_and_task_with_overrides(queue):
    wf = Workflow("tasks")
    plain = wf.add_task(jobs.add, {"a": 2, "b": 3})
    decorated = wf.add_task(jobs.double, {"x": 4})
    renamed = wf.add_task(jobs.double, {"x": 1}, name="double-again", priority=7)
    assert (plain.name, plain.function_module, plain.function_name) == (
        "add", "support.jobs", "add")
    assert (decorated.name, decorated.max_attempts) == ("double", 1)  # the @task's options
    assert (renamed.name, renamed.priority, renamed.max_attempts) == ("double-again", 7, 1)
    run = finish(queue, wf.submit(queue))
    assert run.results() == {"add": 5, "double": 8, "double-again": 2}


def test_depends_on_accepts_ids_of_jobs_already_in_the_queue(queue):
    first = Workflow("first")
    load = first.add_task(jobs.identity, {"value": 21}, name="load")
    first.submit_all(queue)

    second = Workflow("second")
    use = second.add_task(jobs.takes_parent_results, depends_on=[load.id], name="use")
    doubled = second.add_task(jobs.double, {"x": 21}, name="doubled")
    both = second.add_task(jobs.sum_by_name, {"names": ["load", "doubled"]},
                           depends_on=[load.id, doubled])
    assert use.dependencies == [load.id]
    graph = second.graph
    assert load.id not in graph  # outside jobs are dependencies, not nodes
    run = finish(queue, second.submit(queue))
    assert run.result(use) == {"ids": [load.id], "values": [21], "by_name": {"load": 21}}
    assert run.result(both) == 63
    assert queue.get_status(load.id)["status"] == "completed"


def test_graph_is_a_digraph_with_node_attributes_and_parent_to_child_edges():
    wf = Workflow("g")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    b = wf.add_task(jobs.double, {"x": 2}, depends_on=[a])
    c = wf.add_task(jobs.add, {"a": 1, "b": 2}, depends_on=[a, b], name="c")
    graph = wf.graph
    assert isinstance(graph, nx.DiGraph)
    assert list(graph.nodes) == [a.id, b.id, c.id]
    assert set(graph.edges) == {(a.id, b.id), (a.id, c.id), (b.id, c.id)}
    node = graph.nodes[b.id]
    assert node["name"] == "double"
    assert node["function"] == "support.jobs.double"
    assert node["params"] == {"x": 2}
    assert node["job"] is b
    assert graph.nodes[a.id]["params"] == {"value": 1}
    assert list(nx.topological_sort(graph)) == [a.id, b.id, c.id]


# -- validation ----------------------------------------------------------------------------


def _assert_workflow_error(exc: BaseException) -> None:
    assert isinstance(exc, WorkflowError)
    assert isinstance(exc, ValueError)
    assert isinstance(exc, GigqFlowError)


def _cycle_workflow(names):
    """Jobs named ``names`` where each depends on the previous, and the first on the last."""
    wf = Workflow("cyclic")
    cycle = [Job(name=name, function=jobs.identity, params={"value": name}) for name in names]
    for i, job in enumerate(cycle):
        wf.add_job(job, depends_on=[cycle[i - 1]])
    return wf


def _rotations(names):
    return [names[i:] + names[:i] for i in range(len(names))]


def test_cycle_error_names_the_cycle_by_task_name(queue):
    wf = _cycle_workflow(["a", "b", "c"])
    before = queue_footprint(queue)
    with pytest.raises(CycleError) as info:
        wf.validate()
    _assert_workflow_error(info.value)
    assert info.value.cycle in _rotations(["a", "b", "c"])
    cycle = info.value.cycle
    assert " -> ".join([*cycle, cycle[0]]) in str(info.value)
    for submit in (wf.submit_all, wf.submit):
        with pytest.raises(CycleError):
            submit(queue)
    assert queue_footprint(queue) == before == (0, 0)


def test_cycle_error_shows_only_the_cycle_when_other_jobs_lead_into_it():
    wf = Workflow("tail")
    start = wf.add_task(jobs.identity, {"value": 0}, name="start")
    x = Job(name="x", function=jobs.identity, params={"value": 1})
    y = Job(name="y", function=jobs.identity, params={"value": 2})
    wf.add_job(x, depends_on=[start, y])
    wf.add_job(y, depends_on=[x])
    wf.add_task(jobs.identity, {"value": 3}, depends_on=[y], name="after")
    with pytest.raises(CycleError) as info:
        wf.validate()
    assert info.value.cycle in _rotations(["x", "y"])
    assert "start" not in str(info.value) and "after" not in str(info.value)


def test_unknown_dependency_error_names_the_job_and_the_missing_id(queue):
    done = Workflow("earlier")
    known = done.add_task(jobs.identity, {"value": 1})
    done.submit_all(queue)
    missing = str(uuid.uuid4())
    wf = Workflow("orphans")
    wf.add_task(jobs.identity, {"value": 2}, depends_on=[known.id], name="fine")
    wf.add_task(jobs.identity, {"value": 3}, depends_on=[missing], name="needs-ghost")
    wf.validate()  # without a queue only the graph is checked
    before = queue_footprint(queue)
    with pytest.raises(UnknownDependencyError) as info:
        wf.validate(queue)
    _assert_workflow_error(info.value)
    assert missing in str(info.value) and "needs-ghost" in str(info.value)
    for submit in (wf.submit_all, wf.submit):
        with pytest.raises(UnknownDependencyError):
            submit(queue)
    assert queue_footprint(queue) == before == (1, 1)


def test_a_job_of_another_workflow_not_yet_submitted_is_an_unknown_dependency(queue):
    other = Workflow("other")
    parent = other.add_task(jobs.identity, {"value": 1})
    wf = Workflow("this")
    wf.add_task(jobs.identity, {"value": 2}, depends_on=[parent])
    with pytest.raises(UnknownDependencyError, match=parent.id):
        wf.submit(queue)
    assert queue_footprint(queue) == (0, 0)


def test_self_dependency_is_refused(queue):
    wf = Workflow("selfish")
    wf.add_task(jobs.identity, {"value": 1}, name="ok")
    job = Job(name="loner", function=jobs.identity, params={"value": 1})
    wf.add_job(job, depends_on=[job])
    with pytest.raises(SelfDependencyError) as info:
        wf.validate()
    _assert_workflow_error(info.value)
    assert "loner" in str(info.value) and "itself" in str(info.value)
    with pytest.raises(SelfDependencyError):
        wf.submit_all(queue)
    assert queue_footprint(queue) == (0, 0)


def test_same_job_added_twice_is_refused(queue):
    wf = Workflow("twice")
    job = wf.add_job(Job(name="once", function=jobs.identity, params={"value": 1}))
    with pytest.raises(DuplicateJobError) as info:
        wf.add_job(job)
    _assert_workflow_error(info.value)
    assert "once" in str(info.value) and job.id in str(info.value)
    assert wf.jobs == [job]
    # Appended behind add_job's back, validate() still catches it before any write.
    wf.jobs.append(job)
    with pytest.raises(DuplicateJobError):
        wf.validate()
    with pytest.raises(DuplicateJobError):
        wf.submit(queue)
    assert queue_footprint(queue) == (0, 0)


def test_workflow_errors_are_exported_and_share_the_hierarchy():
    for cls in (CycleError, UnknownDependencyError, SelfDependencyError, DuplicateJobError):
        assert issubclass(cls, WorkflowError)
        assert issubclass(cls, ValueError)
        assert issubclass(cls, GigqFlowError)


def test_json_default_rejects_a_set_param_naming_it_and_writes_nothing(queue):
    wf = Workflow("sets")
    wf.add_task(jobs.identity, {"value": 1}, name="fine")
    wf.add_task(jobs.echo_params, {"n": 1, "tags": {"a", "b"}}, name="tagged")
    with pytest.raises(TypeError) as info:
        wf.submit(queue)
    assert isinstance(info.value, GigqFlowError)
    message = str(info.value)
    assert "'tags'" in message and "tagged" in message and "pickle" in message
    assert queue_footprint(queue) == (0, 0)


# -- atomic submit -----------------------------------------------------------------------


def test_submit_is_atomic_when_the_last_job_id_already_exists(queue):
    existing = Job(name="existing", function=jobs.identity, params={"value": 0})
    queue.submit(existing)
    before = queue_footprint(queue)
    wf = Workflow("clash")
    first = wf.add_task(jobs.identity, {"value": 1}, name="first")
    wf.add_task(jobs.identity, {"value": 2}, depends_on=[first], name="second")
    wf.add_job(existing)  # placed last: its id is already in the queue
    with pytest.raises(WorkflowError) as info:
        wf.submit(queue)
    assert existing.id in str(info.value)
    assert queue_footprint(queue) == before == (1, 0)
    assert not queue.get_status(first.id)["exists"]
    assert queue.get_status(existing.id)["workflow_id"] is None


def test_submit_is_atomic_when_an_insert_fails_midway(queue):
    """The last row violates a constraint inside the transaction (name NOT NULL): the
    workflow record and the rows inserted before it must be rolled back."""
    wf = Workflow("midway")
    steps = [wf.add_task(jobs.identity, {"value": i}, name=f"j{i}") for i in range(5)]
    steps[-1].name = None  # bypasses the constructor's check on purpose
    with pytest.raises(GigqFlowError):
        wf.submit(queue)
    assert queue_footprint(queue) == (0, 0)
    for job in steps:
        assert not queue.get_status(job.id)["exists"]
    # The queue is still usable and the same jobs can be submitted once fixed.
    steps[-1].name = "j4"
    run = finish(queue, wf.submit(queue))
    assert run.results() == {f"j{i}": i for i in range(5)}


def test_a_workflow_is_one_record_with_its_jobs(queue):
    wf = Workflow("recorded")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    wf.add_task(jobs.identity, {"value": 2}, depends_on=[a], name="b")
    run = wf.submit(queue)
    [listed] = queue.list_workflows()
    assert (listed["id"], listed["name"], listed["total"]) == (run.id, "recorded", 2)
    assert listed["counts"][JobStatus.PENDING.value] == 2
    for job in wf.jobs:
        assert queue.get_status(job.id)["workflow_id"] == run.id
