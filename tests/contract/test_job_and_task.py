"""Job attributes and defaults, JobStatus, and the @task decorator."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime

import pytest
from support import jobs
from support.helpers import drain

from gigq_flow import Job, JobQueue, JobStatus, Workflow, task

pytestmark = pytest.mark.contract


# -- Job -----------------------------------------------------------------------------------
def test_job_defaults():
    before = datetime.now()
    job = Job("adder", jobs.add)
    after = datetime.now()

    assert uuid.UUID(job.id).version == 7  # time-ordered (GigQ makes version 4 UUIDs)
    assert str(uuid.UUID(job.id)) == job.id
    assert before <= datetime.fromisoformat(job.created_at) <= after
    assert job.name == "adder"
    assert job.function is jobs.add
    assert job.params == {}
    assert job.priority == 0
    assert job.dependencies == []
    assert job.max_attempts == 3
    assert job.timeout == 300
    assert job.description == ""
    assert job.pass_parent_results is None
    assert job.retry_delay == 0


def test_job_keeps_every_argument():
    job = Job(
        "adder", jobs.add, params={"a": 1, "b": 2}, priority=7, dependencies=["x", "y"],
        max_attempts=5, timeout=12, description="adds", pass_parent_results=False, retry_delay=3,
    )
    assert (job.params, job.priority, job.dependencies) == ({"a": 1, "b": 2}, 7, ["x", "y"])
    assert (job.max_attempts, job.timeout, job.description) == (5, 12, "adds")
    assert (job.pass_parent_results, job.retry_delay) == (False, 3)


def test_job_accepts_gigq_positional_arguments():
    # GigQ's order: name, function, params, priority, dependencies, max_attempts,
    # timeout, description, pass_parent_results, retry_delay
    job = Job("p", jobs.add, {"a": 1, "b": 1}, 2, [], 4, 60, "d", True, 1)
    assert (job.priority, job.max_attempts, job.timeout) == (2, 4, 60)
    assert (job.description, job.pass_parent_results, job.retry_delay) == ("d", True, 1)


def test_job_ids_are_unique():
    ids = {Job("n", jobs.noop).id for _ in range(500)}
    assert len(ids) == 500


def test_job_status_values():
    assert {s.name: s.value for s in JobStatus if s.name != "UPSTREAM_FAILED"} == {
        "PENDING": "pending",
        "RUNNING": "running",
        "COMPLETED": "completed",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
        "TIMEOUT": "timeout",
    }
    assert JobStatus("upstream_failed") is JobStatus.UPSTREAM_FAILED
    assert JobStatus("pending") is JobStatus.PENDING
    assert JobStatus.COMPLETED.value == "completed"


def test_jobs_of_lambdas_closures_and_nested_functions_are_submitted_and_run(queue, db_path,
                                                                             make_worker):
    offset = 10

    def nested(x):
        return x + 1

    def closure(x):
        return x + offset

    submitted = {name: queue.submit(Job(name, function, params=params)) for name, function,
                 params in (("lambda", lambda x: x * 3, {"x": 2}), ("nested", nested, {"x": 1}),
                            ("closure", closure, {"x": 5}))}
    assert drain(make_worker(db_path)) == 3  # a worker of this process: it shipped them
    assert {name: queue.get_result(job_id) for name, job_id in submitted.items()} == {
        "lambda": 6, "nested": 2, "closure": 15}
    assert queue.get_status(submitted["closure"])["function_name"] == (
        "test_jobs_of_lambdas_closures_and_nested_functions_are_submitted_and_run."
        "<locals>.closure")


class CallableObject:
    def __call__(self):
        return 1


@pytest.mark.parametrize("function, says", [
    (jobs.Holder().method, "is a method"),
    (jobs.Holder.method, "is a method"),
    (functools.partial(jobs.add, a=1), "has no __module__/__name__"),
    (CallableObject(), "has no __module__/__name__"),
], ids=["bound-method", "unbound-method", "partial", "callable-object"])
def test_job_refuses_methods_and_nameless_callables(function, says):
    with pytest.raises(TypeError, match=says) as info:
        Job("refused", function)
    assert "module-level function" in str(info.value)


# -- @task ---------------------------------------------------------------------------------
# Decorated at module level so that workers can import them by module and name.
def _double(x):
    return 2 * x


double = task(_double)  # the plain form, applied as a call
configured = task(
    name="configured-double", priority=9, max_attempts=5, timeout=42,
    description="doubles", retry_delay=2,
)(jobs.identity)


def test_task_stays_callable():
    assert double(21) == 42
    assert configured(value="x") == "x"


def test_task_to_job_plain():
    job = double.to_job(x=4)
    assert isinstance(job, Job)
    assert job.name == "_double"
    assert job.params == {"x": 4}
    assert (job.function_module, job.function_name) == (__name__, "_double")
    assert (job.priority, job.max_attempts, job.timeout, job.retry_delay) == (0, 3, 300, 0)
    assert job.id != double.to_job(x=4).id  # a new job each time


def test_task_to_job_with_options():
    job = configured.to_job(value=1)
    assert job.name == "configured-double"
    assert (job.priority, job.max_attempts, job.timeout) == (9, 5, 42)
    assert (job.description, job.retry_delay) == ("doubles", 2)
    assert (job.function_module, job.function_name) == ("support.jobs", "identity")


def test_task_submit_runs_on_a_worker(db_path, make_worker):
    decorated = task(jobs.add)
    queue = JobQueue(db_path)
    job_id = decorated.submit(queue, a=2, b=3)
    status = queue.get_status(job_id)
    assert (status["status"], status["name"], status["params"]) == (
        "pending", "add", {"a": 2, "b": 3})
    assert (status["function_module"], status["function_name"]) == ("support.jobs", "add")

    assert drain(make_worker(db_path)) == 1
    assert queue.get_result(job_id) == 5


def test_job_names_its_function_by_dotted_path(db_path, make_worker):
    queue = JobQueue(db_path)
    job = Job("report", "support.jobs.add", params={"a": 4, "b": 5})
    assert (job.function_module, job.function_name) == ("support.jobs", "add")
    missing = Job("missing", "support.jobs.no_such_function")
    queue.submit(job)
    queue.submit(missing)
    assert drain(make_worker(db_path)) == 2
    assert queue.get_result(job.id) == 9
    failed = queue.get_status(missing.id)
    assert failed["status"] == "failed" and failed["attempts"] == 1  # no retry can help
    assert "'support.jobs' has no function 'no_such_function'" in failed["error"]


@pytest.mark.parametrize("path", ["generate_report", "tasks.", ".tasks.f", "tasks.1f", ""])
def test_job_refuses_a_string_that_is_no_dotted_path(db_path, path):
    queue = JobQueue(db_path)
    with pytest.raises(ValueError, match="dotted import path") as info:
        queue.submit(Job("report", path))
    assert repr(path) in str(info.value)
    assert queue.stats()["total"] == 0


def test_task_keeps_gigqs_options_mapping_and_repr():
    assert configured._options["priority"] == 9 and configured._options is configured.options
    assert task(jobs.add)._options == {"name": "add", "priority": 0, "max_attempts": 3,
                                       "timeout": 300, "description": "", "retry_delay": 0,
                                       "serializer": "json"}
    shown = repr(configured)
    assert shown.startswith("<TaskWrapper 'configured-double' ") and "priority=9" in shown
    with pytest.raises(TypeError, match="unexpected option"):
        task(jobs.add, priorty=1)
    with pytest.raises(TypeError, match="expected a callable"):
        task("support.jobs.add")


def test_task_options_reach_the_database(db_path):
    queue = JobQueue(db_path)
    status = queue.get_status(configured.submit(queue, value=1))
    assert (status["name"], status["priority"], status["max_attempts"]) == (
        "configured-double", 9, 5)
    assert (status["timeout"], status["description"], status["retry_delay"]) == (42, "doubles", 2)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"priorty": 1}, "priorty"),
        ({"retries": 3}, "retries"),
    ],
)
def test_task_refuses_unknown_options(options, match):
    with pytest.raises(TypeError, match=match):
        task(**options)(jobs.add)
    with pytest.raises(TypeError, match=match):
        task(jobs.add, **options)


def test_task_accepts_lambdas_and_closures_and_runs_them(queue):
    factor = 4

    def scale(x):
        return x * factor

    tripled, scaled = task(lambda x: x * 3), task(priority=2)(scale)
    assert (tripled(2), scaled(2)) == (6, 8)  # still plain callables
    wf = Workflow("decorated")
    wf.add_task(tripled, params={"x": 5}, name="tripled")
    wf.add_task(scaled, params={"x": 5}, name="scaled")
    run = wf.run(queue, workers=2, progress=False, timeout=30)  # threads of this process
    assert run.results() == {"tripled": 15, "scaled": 20}


def test_task_refuses_methods():
    with pytest.raises(TypeError, match="method"):
        task(jobs.Holder.method)
    with pytest.raises(TypeError, match="method"):
        task(jobs.Holder().method)
    with pytest.raises(TypeError, match="method"):
        task(jobs.Holder.static_method)


def test_task_refuses_async_functions():
    with pytest.raises(TypeError, match="async"):
        task(jobs.async_function)


def test_task_refuses_generator_functions():
    with pytest.raises(TypeError, match="generator"):
        task(jobs.generator_function)


def test_task_refuses_being_applied_twice():
    once = task(jobs.noop)
    with pytest.raises(TypeError, match="twice"):
        task(once)
    with pytest.raises(TypeError, match="twice"):
        task(priority=3)(once)


def test_task_refuses_invalid_option_values_at_decoration():
    with pytest.raises(ValueError, match="timeout"):
        task(timeout=0)(jobs.noop)
    with pytest.raises(ValueError, match="max_attempts"):
        task(max_attempts=0)(jobs.noop)
