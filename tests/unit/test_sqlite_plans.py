"""The SQLite worker path's query plans: what keeps a claim's cost flat.

The claim reads the head of the index of ready jobs without a limit, and the head of a
gate (jobs held by limits) in the index of gated jobs; claims and childless completions
find the row by its rowid, and none of them makes SQLite build a temporary b-tree
(``OpenEphemeral``) or sort; a completing parent finds its children through indexes.
Checked with ``EXPLAIN`` on a real queue file holding waiting jobs (some of them gated)
and a workflow's edge.
"""

from __future__ import annotations

import sqlite3

import pytest
from support import jobs

from gigq_flow import Job, JobQueue, Workflow
from gigq_flow.store.sql_limits import GATED_HEAD
from gigq_flow.store.sqlite import CLAIM_HEAD, CLAIM_ROW, COMPLETE_CHILDLESS
from gigq_flow.store.statements import RELEASE_CHILDREN

HOT_PATH = {
    "claim head": (CLAIM_HEAD, ("2026-01-01T00:00:00.000000",)),
    "gated head": (GATED_HEAD.format(key="rowid"), ("gpu", "2026-01-01T00:00:00.000000")),
    "claim row": (CLAIM_ROW, ("w", "now", "now", "x-1", 1)),
    "childless completion": (COMPLETE_CHILDLESS, (None, "now", "now", 1, "x-1", "id")),
}


@pytest.fixture
def conn(tmp_path):
    path = tmp_path / "q.db"
    queue = JobQueue(path)
    queue.set_limit("gpu", 2)
    for i in range(50):
        queue.submit(Job(f"job {i}", jobs.noop, priority=i % 3))
        queue.submit(Job(f"gated {i}", jobs.noop, priority=i % 3, tags=["gpu"]))
    wf = Workflow("edges")
    parent = wf.add_task(jobs.noop, name="parent")
    wf.add_task(jobs.noop, depends_on=[parent], name="child")
    wf.submit(queue)
    queue.close()
    connection = sqlite3.connect(path)
    yield connection
    connection.close()


def plan(conn, sql, args) -> str:
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))


@pytest.mark.parametrize("name", list(HOT_PATH))
def test_no_hot_statement_builds_a_temporary_btree_or_sorts(conn, name):
    sql, args = HOT_PATH[name]
    opcodes = {row[1] for row in conn.execute(f"EXPLAIN {sql}", args)}
    assert not opcodes & {"OpenEphemeral", "SorterOpen", "OpenAutoindex"}, name


def test_the_claim_reads_the_head_of_the_free_ready_index(conn):
    sql, args = HOT_PATH["claim head"]
    # LIMIT 1: its head; whether it has children is one probe of the edges' index
    assert plan(conn, sql, args) == (
        "SCAN jobs USING INDEX idx_jobs_ready_free | CORRELATED SCALAR SUBQUERY 1 | "
        "SEARCH job_dependencies USING COVERING INDEX idx_job_dependencies_parent (depends_on=?)")


def test_the_head_of_a_gate_is_read_from_the_gated_ready_index(conn):
    sql, args = HOT_PATH["gated head"]
    assert plan(conn, sql, args) == "SEARCH jobs USING INDEX idx_jobs_ready_gated (gate=?)"


@pytest.mark.parametrize("name", ["claim row", "childless completion"])
def test_claims_and_completions_find_the_row_by_rowid(conn, name):
    sql, args = HOT_PATH[name]
    steps = plan(conn, sql, args)
    assert "SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)" in steps
    assert "SCAN" not in steps.replace("SCAN jobs USING INDEX", "")


def test_a_parent_finds_its_children_through_indexes(conn):
    steps = plan(conn, RELEASE_CHILDREN, ("id",))
    assert "SEARCH job_dependencies USING COVERING INDEX idx_job_dependencies_parent" in steps
    assert "SEARCH jobs USING INDEX sqlite_autoindex_jobs_1 (id=?)" in steps
    assert "SCAN" not in steps
