"""Large runs: the grouping rule bounds a picture; the live panel reads what changed."""

from __future__ import annotations

import string

import pytest
from support import jobs
from support.viz import count_in, node_count, table_rows

from gigq_flow import Job, Workflow
from gigq_flow.viz.draw import visualize
from gigq_flow.viz.grouping import GROUP_MAX_NODES, group_labels
from gigq_flow.viz.jobtable import MAX_ROWS

pytestmark = pytest.mark.contract


def letters(i: int) -> str:
    """A name without digits, unique for each i: 0 -> a, 26 -> ba."""
    text = ""
    while True:
        i, rest = divmod(i, 26)
        text = string.ascii_lowercase[rest] + text
        if not i:
            return text


def layered(n: int, name, function=lambda i: jobs.identity) -> Workflow:
    """n steps in layers of 10, each after two steps of the layer above."""
    wf = Workflow("large")
    made: list = []
    for i in range(n):
        above = made[i - 10 - i % 10: i - i % 10] if i >= 10 else []
        parents = [above[i % 10], above[(i + 1) % 10]] if above else None
        made.append(wf.add_task(function(i), name=name(i), depends_on=parents))
    return wf


def test_the_rule_groups_names_then_numbered_runs_then_functions():
    names = ["a", "b", "b", "b"]
    assert group_labels(names, ["f"] * 4, max_nodes=10) == [None, "b", "b", "b"]
    numbered = [f"step-{i}" for i in range(100)]
    labels = group_labels(numbered, ["f"] * 100, max_nodes=10)
    assert len(set(labels)) == 10 and labels[0] == "step-[0-9]" and labels[-1] == "step-[90-99]"
    assert group_labels(numbered, ["f"] * 100, max_nodes=50)[:3] == ["step-[0-1]"] * 2 + [
        "step-[2-3]"]
    plain = [letters(i) for i in range(100)]
    assert set(group_labels(plain, ["m.f"] * 50 + ["m.g"] * 50, max_nodes=10)) == {"f()", "g()"}
    assert group_labels(plain[:5], ["m.f"] * 5, max_nodes=10) == [None] * 5


def test_three_thousand_uniquely_named_steps_draw_a_bounded_picture(queue):
    wf = layered(3000, lambda i: f"step-{letters(i)}",
                 lambda i: jobs.fail if i % 2 else jobs.identity)
    assert node_count(wf.visualize().source) == 2  # one node per function
    run = wf.submit(queue)
    dot = run.visualize().source
    assert "identity() ×1500\\n1500 pending" in dot and "fail() ×1500" in dot
    assert node_count(dot) == 2


def test_numbered_steps_group_into_runs_of_numbers_and_match_the_snapshots_picture(queue):
    wf = layered(3000, lambda i: f"layer-{i // 10}")  # 300 names of 10 steps: one node each
    run = wf.submit(queue)
    assert node_count(run.visualize().source) == 300 == GROUP_MAX_NODES
    wf = layered(3010, lambda i: f"layer-{i // 10}")  # 301 names: runs of two layers
    run = wf.submit(queue)
    first = run.snapshot().jobs[0]
    queue.cancel(first.id)  # its descendants: upstream_failed, with an error
    dot = run.visualize().source
    assert node_count(dot) == 151
    assert "layer-[0-1] ×20\\n17 pending · 1 cancelled · 2 upstream_failed" in dot
    assert "first error: upstream job" in dot
    assert dot.count("->") == 150  # a chain of runs
    # the outline draws what the snapshot draws
    assert dot == visualize(None, run.snapshot()).source
    assert run.visualize(max_nodes=1000).source.count("×10") == 301


def test_the_submitting_process_draws_the_run_as_a_process_that_reads_it_back(queue):
    made_first = Job("made-first", jobs.identity)  # the queue lists it first: made first
    wf = layered(300, lambda i: f"layer-{i // 10}")
    wf.add_job(made_first, depends_on=[wf.jobs[-1]])
    run = wf.submit(queue)
    queue.cancel(wf.jobs[5].id)
    loaded = queue.get_workflow(run.id)
    mine, theirs = run.outline(), loaded.outline()
    assert mine.ids[0] == made_first.id and mine.functions[0] == "support.jobs.identity"
    for column in ("ids", "names", "functions", "statuses", "erred", "edges"):
        assert getattr(mine, column) == getattr(theirs, column), column
    assert run.visualize().source == loaded.visualize().source
    # a job cleared from the queue since: the run's picture reads the run back whole
    queue.store.db.run(lambda tx: tx.execute("DELETE FROM jobs WHERE id = ?",
                                             (wf.jobs[-2].id,)))
    assert run.outline().ids == queue.get_workflow(run.id).outline().ids
    assert len(run.outline().ids) == 300


def test_a_refresh_reads_what_changed_and_the_table_lists_a_bounded_page(queue):
    wf = Workflow("page")
    made = [wf.add_task(jobs.identity, name=f"s{i}") for i in range(MAX_ROWS + 50)]
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    try:
        rows = table_rows(panel)
        assert len(rows) == MAX_ROWS + 1 and rows[-1]["name"].startswith("… 50 more jobs")
        queue.cancel(made[3].id)
        panel.refresh()
        assert [job.id for job in panel.snapshot.changes] == [made[3].id]
        assert count_in(panel, "cancelled") == 1 and count_in(panel, "pending") == MAX_ROWS + 49
        assert table_rows(panel)[3]["status"].endswith("cancelled")
        panel.refresh()  # nothing changed: nothing read again
        assert panel.snapshot.changes == ()
        # a write stamped before the last read (a writer whose clock is behind the
        # reader's) is caught by the counts per status, which then differ
        queue.store.db.run(lambda tx: tx.execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = ? WHERE id = ?",
            ("2000-01-01T00:00:00.000000", made[-1].id)))
        panel.refresh()
        assert panel.snapshot.changes is None and count_in(panel, "cancelled") == 2
        panel.select(made[-1].id)  # the selected row is listed, past the page
        assert table_rows(panel)[-2]["name"] == f"s{MAX_ROWS + 49}"
    finally:
        panel.close()
