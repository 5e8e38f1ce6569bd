"""Params and results are JSON: what cannot be encoded is refused early and clearly."""

from __future__ import annotations

import pytest
from support import jobs
from support.db import sql
from support.helpers import drain

from gigq_flow import GigqFlowError, Job

pytestmark = pytest.mark.contract


@pytest.mark.parametrize(
    "params, bad",
    [
        ({"ok": 1, "items": {1, 2}}, "items"),
        ({"when": object()}, "when"),
        ({"fine": [1, 2], "nested": {"deep": [b"bytes"]}}, "nested"),
    ],
)
def test_unencodable_param_is_type_error_naming_it_and_nothing_is_written(queue, db_path, params,
                                                                          bad):
    queue.submit(Job("before", jobs.noop))
    job = Job("encode-me", jobs.takes_kwargs, params=params)
    with pytest.raises(TypeError, match=repr(bad)) as info:
        queue.submit(job)
    assert isinstance(info.value, GigqFlowError)
    assert "encode-me" in str(info.value)
    assert queue.stats()["total"] == 1
    assert queue.get_status(job.id) == {"exists": False}
    assert sql(db_path, "SELECT COUNT(*) FROM jobs") == [(1,)]


def test_unencodable_result_fails_the_job_without_retry(queue, db_path, make_worker):
    job_id = queue.submit(Job("set", jobs.make_set, params={"items": [1, 2, 3]}, max_attempts=3))
    worker = make_worker(db_path)
    assert worker.process_one() is True
    assert worker.process_one() is False  # no retry of a deterministic error

    status = queue.get_status(job_id)
    assert status["status"] == "failed"
    assert status["attempts"] == 1
    assert "JSON" in status["error"] and "set" in status["error"]
    assert "result" in status["error"]
    assert [e["status"] for e in status["executions"]] == ["failed"]
    assert queue.get_result(job_id) is None


def test_json_round_trip_of_params_and_results(queue, db_path, make_worker):
    value = {"text": "héllo ✓", "int": 2**53, "float": 0.1, "list": [None, True, False],
             "nested": {"a": [{"b": []}]}}
    job_id = queue.submit(Job("rt", jobs.identity, params={"value": value}))
    assert queue.get_status(job_id)["params"] == {"value": value}
    drain(make_worker(db_path))
    assert queue.get_result(job_id) == value


def test_falsy_results_are_kept(queue, db_path, make_worker):
    values = [0, "", False, [], {}, 0.0]
    ids = [queue.submit(Job("f", jobs.identity, params={"value": v})) for v in values]
    drain(make_worker(db_path))
    for job_id, value in zip(ids, values, strict=True):
        result = queue.get_result(job_id)
        assert result == value and type(result) is type(value)
        assert queue.get_status(job_id)["result"] == value


def test_missing_function_fails_without_retry(queue, db_path, make_worker):
    """A job whose function cannot be imported fails at once, saying why."""
    job_id = queue.submit(Job("j", jobs.noop, max_attempts=3))
    sql(db_path, "UPDATE jobs SET function_name = 'no_such_function' WHERE id = ?", (job_id,))
    worker = make_worker(db_path)
    assert worker.process_one() is True
    assert worker.process_one() is False
    status = queue.get_status(job_id)
    assert (status["status"], status["attempts"]) == ("failed", 1)
    assert "no_such_function" in status["error"]
