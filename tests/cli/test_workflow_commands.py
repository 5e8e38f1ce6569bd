"""``gigq-flow workflows``, ``workflow status [--wait]``, ``workflow graph`` and ``demo``,
run against real files (in this process, the demo's and a failed wait's tests as
subprocesses: see support.cli)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from support import jobs
from support.cli import (
    assert_one_error_line,
    cli,
    drain_by_command,
    ok,
    ok_json,
    run_cli,
    start_cli,
    stop,
)
from support.viz import node_count

import gigq_flow
from gigq_flow import demo


def submit_diamond(db: Path, *, fail_middle: bool = False) -> tuple[str, dict[str, str]]:
    """start -> (left, right) -> join; ``fail_middle`` makes ``right`` fail for good."""
    workflow = gigq_flow.Workflow("diamond")
    start = workflow.add_task(jobs.add, params={"a": 1, "b": 1}, name="start")
    left = workflow.add_task(jobs.add, params={"a": 10, "b": 0}, depends_on=[start],
                             name="left")
    if fail_middle:
        right = workflow.add_task(jobs.fail, depends_on=[start], name="right",
                                  max_attempts=1)
    else:
        right = workflow.add_task(jobs.add, params={"a": 20, "b": 0}, depends_on=[start],
                                  name="right")
    join = workflow.add_task(jobs.sum_parents, depends_on=[left, right], name="join")
    queue = gigq_flow.JobQueue(db)
    try:
        run = workflow.submit(queue)
    finally:
        queue.close()
    return run.id, {job.name: job.id for job in (start, left, right, join)}


def parse_json(result) -> dict:
    """The JSON output of a command that may exit 1."""
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


# -- workflows ------------------------------------------------------------------------------
def test_workflows_lists_each_with_its_progress(db):
    first, _ = submit_diamond(db)
    second, _ = submit_diamond(db, fail_middle=True)
    listed = ok_json(cli(db, "workflows", "--json"))
    assert [w["id"] for w in listed] == [second, first]  # newest first
    assert listed[0]["counts"]["pending"] == 4 and listed[0]["total"] == 4
    assert (listed[0]["finished"], listed[0]["done"], listed[0]["state"]) == (0, False, "pending")

    drain_by_command(db)
    by_id = {w["id"]: w for w in ok_json(cli(db, "workflows", "--json"))}
    assert by_id[first]["counts"]["completed"] == 4 and by_id[first]["state"] == "succeeded"
    assert (by_id[second]["counts"]["completed"], by_id[second]["counts"]["failed"],
            by_id[second]["counts"]["upstream_failed"]) == (2, 1, 1)
    assert (by_id[second]["finished"], by_id[second]["done"], by_id[second]["state"]) == \
        (4, True, "failed")

    table = ok(cli(db, "workflows"))
    assert first in table and second in table and "diamond" in table
    assert "4/4" in table and "2 completed, 1 failed, 1 upstream_failed" in table


def test_workflows_on_a_queue_without_any(db):
    gigq_flow.JobQueue(db).close()
    assert ok(cli(db, "workflows")).strip() == "No workflows."
    assert ok_json(cli(db, "workflows", "--json")) == []


# -- workflow status ------------------------------------------------------------------------
def test_status_without_wait_shows_every_job(db):
    run_id, ids = submit_diamond(db)
    result = cli(db, "workflow", "status", run_id)
    table = ok(result)
    for name, job_id in ids.items():
        assert name in table and job_id in table
    assert "0/4 finished" in table

    status = ok_json(cli(db, "workflow", "status", run_id, "--json"))
    assert (status["id"], status["name"], status["total"], status["done"]) == \
        (run_id, "diamond", 4, False)
    assert [job["name"] for job in status["jobs"]] == ["start", "left", "right", "join"]
    assert {tuple(edge) for edge in status["edges"]} == {
        (ids["start"], ids["left"]), (ids["start"], ids["right"]),
        (ids["left"], ids["join"]), (ids["right"], ids["join"])}


def test_wait_follows_a_live_worker_to_the_end_and_exits_0(db):
    run_id, ids = submit_diamond(db)
    worker = start_cli("--db", db, "worker", "--concurrency", "2", cwd=db.parent)
    try:
        result = cli(db, "workflow", "status", run_id, "--wait")
    finally:
        code, _, err = stop(worker)
    assert code == 0, err
    table = ok(result)
    assert "4/4 finished" in table and "4 completed" in table
    assert "4/4" in result.stderr  # the tqdm bar, on stderr
    status = ok_json(cli(db, "workflow", "status", run_id, "--wait", "--json"))
    assert status["succeeded"] and status["done"]
    assert status["results"] == {"start": 2, "left": 10, "right": 20, "join": 30}


@pytest.mark.usefixtures("cli_subprocesses")
def test_wait_exits_1_when_a_job_failed(db):
    run_id, ids = submit_diamond(db, fail_middle=True)
    drain_by_command(db)
    result = cli(db, "workflow", "status", run_id, "--wait")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "RuntimeError: planned failure" in result.stdout
    status_json = cli(db, "workflow", "status", run_id, "--wait", "--json")
    assert status_json.returncode == 1
    status = parse_json(status_json)
    assert status["counts"]["failed"] == 1 and status["counts"]["upstream_failed"] == 1
    assert status["succeeded"] is False and status["state"] == "failed"
    # without --wait it is a display: exit 0 whatever the jobs did
    assert cli(db, "workflow", "status", run_id).returncode == 0


def test_wait_exits_1_when_a_job_was_cancelled(db):
    run_id, ids = submit_diamond(db)
    ok(cli(db, "cancel", ids["start"]))
    result = cli(db, "workflow", "status", run_id, "--wait", "--json")
    assert result.returncode == 1
    status = parse_json(result)
    assert status["counts"]["cancelled"] == 1 and status["counts"]["upstream_failed"] == 3


def test_wait_exits_1_when_a_job_timed_out(db):
    workflow = gigq_flow.Workflow("slow")
    workflow.add_task(jobs.sleep_for, params={"seconds": 4}, timeout=1, max_attempts=1,
                      name="too_slow")
    queue = gigq_flow.JobQueue(db)
    run_id = workflow.submit(queue).id
    queue.close()
    worker = start_cli("--db", db, "worker", "--concurrency", "2", "--polling-interval", "0.2",
                       cwd=db.parent)
    try:
        result = cli(db, "workflow", "status", run_id, "--wait", "--json")
    finally:
        stop(worker)
    assert result.returncode == 1, result.stderr
    assert parse_json(result)["counts"]["timeout"] == 1


def test_wait_on_a_finished_workflow_returns_at_once(db):
    run_id, _ = submit_diamond(db)
    drain_by_command(db)
    started = time.monotonic()
    ok(cli(db, "workflow", "status", run_id, "--wait"))
    assert time.monotonic() - started < 10


def test_wait_timeout_returns_the_unfinished_workflow_and_exits_1(db):
    run_id, _ = submit_diamond(db)  # no worker runs it
    started = time.monotonic()
    result = cli(db, "workflow", "status", run_id, "--wait", "--timeout", "0.5", "--json")
    assert result.returncode == 1
    assert time.monotonic() - started < 10
    status = parse_json(result)
    assert (status["done"], status["counts"]["pending"]) == (False, 4)
    assert f"workflow {run_id} not finished within 0.5 s" in result.stderr


def test_timeout_without_wait_is_bad_input(db):
    run_id, _ = submit_diamond(db)
    result = cli(db, "workflow", "status", run_id, "--timeout", "5")
    assert result.returncode == 2
    assert_one_error_line(result, "--timeout applies to --wait")


# -- workflow graph -------------------------------------------------------------------------
@pytest.mark.parametrize("name, magic", [
    ("picture.svg", b"<svg"), ("picture.png", b"\x89PNG"), ("picture.pdf", b"%PDF"),
])
def test_graph_writes_the_picture_in_the_format_of_the_extension(db, name, magic):
    run_id, _ = submit_diamond(db, fail_middle=True)
    drain_by_command(db)
    target = db.parent / name
    out = ok(cli(db, "workflow", "graph", run_id, "-o", target))
    assert str(target) in out
    data = target.read_bytes()
    assert magic in data[:4096]
    if name.endswith(".svg"):
        text = data.decode()
        for job_name in ("start", "left", "right", "join"):
            assert job_name in text


def test_graph_draws_a_large_run_in_at_most_max_nodes_nodes(db):
    workflow = gigq_flow.Workflow("numbered")
    for i in range(150):
        workflow.add_task(jobs.noop, name=f"step-{i}")
    queue = gigq_flow.JobQueue(db)
    try:
        run_id = workflow.submit(queue).id
    finally:
        queue.close()
    drawn = {}
    for max_nodes in (None, 20):
        target = db.parent / f"picture-{max_nodes}.dot"
        extra = [] if max_nodes is None else ["--max-nodes", str(max_nodes)]
        ok(cli(db, "workflow", "graph", run_id, "-o", target, *extra))
        drawn[max_nodes] = node_count(target.read_text())
    assert drawn == {None: 150, 20: 15}  # the default bound (300) draws every job
    assert_one_error_line(cli(db, "workflow", "graph", run_id, "-o", db.parent / "x.dot",
                              "--max-nodes", "0"), "--max-nodes")


@pytest.mark.parametrize("name, start", [
    ("picture.dot", "digraph"), ("picture.mmd", "flowchart LR"),
])
def test_graph_writes_dot_and_mermaid_source(db, name, start):
    run_id, _ = submit_diamond(db)
    target = db.parent / name
    ok(cli(db, "workflow", "graph", run_id, "-o", target, "--rankdir", "LR", "--legend"))
    text = target.read_text()
    assert start in text, text[:200]
    assert "LR" in text and "right" in text


def test_graph_refuses_an_unknown_extension(db):
    run_id, _ = submit_diamond(db)
    result = cli(db, "workflow", "graph", run_id, "-o", db.parent / "picture.gif")
    assert result.returncode == 2
    assert_one_error_line(result, ".svg")
    assert not (db.parent / "picture.gif").exists()


# -- demo -----------------------------------------------------------------------------------
@pytest.mark.usefixtures("cli_subprocesses")
def test_demo_runs_the_sample_pipeline_and_draws_it(tmp_path):
    started = time.monotonic()
    result = run_cli("demo", cwd=tmp_path)
    elapsed = time.monotonic() - started
    out = ok(result)
    assert elapsed < 20, elapsed
    db = tmp_path / "gigq_flow.db"
    picture = tmp_path / "gigq_flow_demo.svg"
    assert db.exists() and picture.exists()
    assert str(picture) in out
    assert "<svg" in picture.read_text()
    assert "Top words of 8 documents" in out
    assert "fetch_stopwords failed once and succeeded" in out
    assert "job" in result.stderr  # the progress bar

    (workflow,) = ok_json(run_cli("workflows", "--json", cwd=tmp_path))
    assert workflow["state"] == "succeeded" and workflow["total"] == 8
    status = ok_json(run_cli("workflow", "status", workflow["id"], "--json", cwd=tmp_path))
    attempts = {job["name"]: job["attempts"] for job in status["jobs"]}
    assert attempts["fetch_stopwords"] == 2
    assert all(n == 1 for name, n in attempts.items() if name != "fetch_stopwords")
    top = status["results"]["report"]["top_words"]
    words = {word for text in demo.DOCUMENTS for word in re.findall(r"[a-z]+", text.lower())}
    assert len(top) == demo.TOP_WORDS and set(top) <= words - set(demo.STOPWORDS)
    assert top["queue"] == 5
    assert workflow["id"] in out


def test_demo_runs_again_on_the_same_file_with_its_own_db_and_picture(tmp_path):
    db = tmp_path / "demo.db"
    picture = tmp_path / "out" / "pipeline.png"
    picture.parent.mkdir()
    for _ in range(2):
        out = ok(run_cli("--db", db, "demo", "-o", picture, cwd=tmp_path))
        assert "fetch_stopwords failed once and succeeded" in out
    assert picture.read_bytes()[:4] == b"\x89PNG"
    listed = ok_json(run_cli("--db", db, "workflows", "--json", cwd=tmp_path))
    assert [w["state"] for w in listed] == ["succeeded", "succeeded"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".flaky")]
    assert leftovers == []
    assert not (tmp_path / "gigq_flow.db").exists()


def test_demo_refuses_a_picture_it_cannot_write(tmp_path):
    result = run_cli("demo", "-o", tmp_path / "demo.gif", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_error_line(result, ".svg")
    assert not (tmp_path / "gigq_flow.db").exists()


# -- the same commands on the PostgreSQL backend -------------------------------------------
def test_the_commands_work_on_a_postgres_queue(postgres_url, tmp_path):
    def pg(*args):
        return run_cli("--db", postgres_url, *args, cwd=tmp_path)

    job_id = ok(pg("submit", "support.jobs.add", "-p", "a=20", "-p", "b=22")).split()[-1]
    assert ok(pg("worker", "--once")).strip() == "Processed one job."
    assert ok_json(pg("status", job_id, "--json"))["result"] == 42
    out = ok(pg("demo", "-o", tmp_path / "demo.svg"))
    assert "fetch_stopwords failed once and succeeded" in out
    assert "<svg" in (tmp_path / "demo.svg").read_text()
    (workflow,) = ok_json(pg("workflows", "--json"))
    assert workflow["state"] == "succeeded"
    ok(pg("workflow", "status", workflow["id"], "--wait"))
    assert ok_json(pg("stats", "--json"))["completed"] == 9
    assert not (tmp_path / "gigq_flow.db").exists()
    assert [p for p in tmp_path.iterdir() if p.name.endswith(".flaky")] == []
