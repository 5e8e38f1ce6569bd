"""run.timeline(): one bar per attempt, placed by time, with worker and status."""

from __future__ import annotations

import pytest
from support import jobs
from support.viz import shape_of, svg_nodes, texts_of, tooltip_of

from gigq_flow import Worker, Workflow
from gigq_flow.errors import ConfigurationError
from gigq_flow.viz import get_styles

pytestmark = pytest.mark.contract


def bars(svg: str) -> dict:
    return {key: group for key, group in svg_nodes(svg).items() if key.startswith("attempt-")}


def row_labels(svg: str) -> list[str]:
    return [texts_of(g)[0] for key, g in svg_nodes(svg).items() if key.startswith("row-")]


def test_timeline_of_a_running_run_has_a_bar_per_attempt(every_status):
    picture = every_status.run.timeline()
    svg = picture.svg()
    found = bars(svg)
    executions = every_status.queue.store.workflow_executions(every_status.run.id)
    assert len(found) == len(executions) == 6  # retry ran twice; skipped and after never
    by_status: dict[str, list] = {}
    for execution in executions:
        by_status.setdefault(execution["status"], []).append(execution)
        group = found[f"attempt-{execution['id']}"]
        assert execution["status"] in group.get("class")
        assert execution["worker_id"] in tooltip_of(group)
    styles = get_styles()
    assert sorted(by_status) == ["completed", "failed", "running", "timeout"]
    retry = [e for e in executions if e["name"] == "retry"]
    assert [e["status"] for e in retry] == ["failed", "completed"]
    assert "attempt 2" in tooltip_of(found[f"attempt-{retry[1]['id']}"])
    slow = found[f"attempt-{by_status['timeout'][0]['id']}"]
    assert shape_of(slow).get("fill") == styles["timeout"].fill
    assert "timed out" in tooltip_of(slow)
    # row labels: the jobs that ran, in submission order
    assert row_labels(svg) == ["extract", "transform", "retry", "slow", "hold"]


def test_bars_are_placed_by_time(queue, tmp_path):
    wf = Workflow("timed")
    a = wf.add_task(jobs.identity, name="first")
    wf.add_task(jobs.identity, name="second", depends_on=[a])
    run = wf.submit(queue)
    with Worker(queue.db_path, worker_id="solo", polling_interval=0.05):
        assert run.wait(timeout=20)
    picture = run.timeline(width=400)
    found = bars(picture.svg())
    executions = queue.store.workflow_executions(run.id)
    xs = []
    for execution in executions:
        points = shape_of(found[f"attempt-{execution['id']}"]).get("points").split()
        xs.append(min(float(p.split(",")[0]) for p in points))
    assert xs[0] < xs[1]  # second started after first
    by_worker = run.timeline(by="worker").svg()
    assert row_labels(by_worker) == ["solo"]
    assert picture.save(str(tmp_path / "timeline.png")).endswith(".png")


def test_timeline_before_any_attempt_and_bad_options(queue):
    wf = Workflow("idle")
    wf.add_task(jobs.identity, name="a")
    run = wf.submit(queue)
    assert "no attempt has started yet" in run.timeline().svg()
    with pytest.raises(ConfigurationError, match="by must be"):
        run.timeline(by="host")
    with pytest.raises(ConfigurationError, match="width"):
        run.timeline(width=10)
