"""Maps in pictures and the live panel: one node (and one table row) with the progress of
its items, the items drawn or listed only when asked for."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from support import jobs
from support.helpers import wait_until
from support.viz import (
    panel_svg_nodes,
    shape_of,
    svg_nodes,
    table_rows,
    texts_of,
    tooltip_of,
)

from gigq_flow import Worker, Workflow
from gigq_flow.job_status import JobStatus
from gigq_flow.viz import get_styles
from gigq_flow.viz.jobtable import MAP_ROWS_SHOWN

pytestmark = pytest.mark.contract

ITEMS = 30
FAILING = [i for i in range(ITEMS) if i % 7 == 0]  # 0, 7, 14, 21, 28
DONE_LABEL = ["square ×30", f"{ITEMS - len(FAILING)} done, {len(FAILING)} failed"]


def squares(n: int = ITEMS, gate: str | None = None) -> tuple[Workflow, dict]:
    """discover (a list of n) -> square (a map; items divisible by 7 fail) -> total."""
    wf = Workflow("squares")
    discover = wf.add_task(jobs.numbers, {"n": n}, name="discover")
    square = wf.map(jobs.square_unless, over=discover,
                    params={"fail_every": 7, **({"gate": gate} if gate else {})},
                    name="square", max_attempts=1)
    total = wf.add_task(jobs.sum_parents, name="total", depends_on=[square])
    return wf, {"discover": discover, "square": square, "total": total}


@pytest.fixture
def finished(queue):
    """The run of :func:`squares`, finished: 25 items completed, 5 failed."""
    wf, made = squares()
    run = wf.submit(queue)
    with Worker(queue.db_path, concurrency=4, polling_interval=0.02):
        assert run.wait(timeout=60)
    return wf, run, made


def node_labels(dot: str) -> dict[str, str]:
    """DOT node key -> its label."""
    return {key: label.strip('"') for key, label in
            re.findall(r"^\s*([jg]\d+) \[label=(\"[^\"]*\"|\S+)", dot, re.MULTILINE)}


def test_before_submission_a_map_is_one_node_over_its_parent():
    wf, _ = squares()
    dot = wf.visualize().source
    assert node_labels(dot) == {"j0": "discover", "j1": "square ×?\\nmap over discover",
                                "j2": "total"}
    assert "j0 -> j1" in dot and "j1 -> j2" in dot


def test_a_finished_map_is_one_node_with_its_items_progress(finished):
    wf, run, made = finished
    snapshot = run.snapshot()
    items = snapshot.items_of[made["square"].id]
    assert [item.map_index for item in items] == list(range(ITEMS))
    assert {item.name for item in items if item.status is JobStatus.FAILED} == {
        f"square[{i}]" for i in FAILING}
    square = next(job for job in snapshot.jobs if job.id == made["square"].id)
    assert square.is_map and square.map_size == ITEMS and square.map_of is None
    for picture in (run.visualize(), wf.visualize()):  # after submission both draw the run
        dot = picture.source
        labels = node_labels(dot)
        assert labels["j0"].startswith("discover") and labels["j2"] == "total"
        assert labels["j1"] == "\\n".join(DONE_LABEL)  # no item drawn
        assert len(labels) == 3 and "j0 -> j1" in dot and "j1 -> j2" in dot
        assert dot.count("->") == 2
        nodes = svg_nodes(picture.svg())
        node = nodes[f"job-{made['square'].id}"]
        assert texts_of(node) == DONE_LABEL
        # its items failed, so the map did not run: it is drawn upstream_failed
        assert shape_of(node).get("fill") == get_styles()["upstream_failed"].fill
        tooltip = tooltip_of(node)
        assert tooltip.startswith("square: a map of 30 items — 25 completed · 5 failed")
        assert "first error: square[0]: ValueError: item 0 is divisible by 7" in tooltip
        assert len(nodes) == 3


def test_expand_maps_draws_the_items_between_the_parent_and_the_map(finished):
    _, run, made = finished
    picture = run.visualize(expand_maps=True)
    labels = node_labels(picture.source)
    assert len(labels) == 3 + ITEMS
    assert sorted(label.split("\\n")[0] for label in labels.values()
                  if label.startswith("square[")) == sorted(f"square[{i}]" for i in range(ITEMS))
    nodes = svg_nodes(picture.svg())
    failed = [g for g in nodes.values() if texts_of(g)[0] in {f"square[{i}]" for i in FAILING}]
    assert len(failed) == len(FAILING)
    assert all("ValueError" in tooltip_of(g) for g in failed)
    keys = {label.split("\\n")[0]: key for key, label in labels.items()}
    edges = set(re.findall(r"(\w+) -> (\w+)", picture.source))
    assert (keys["discover"], keys["square ×30"]) not in edges  # it goes through the items
    for i in range(ITEMS):
        assert (keys["discover"], keys[f"square[{i}]"]) in edges
        assert (keys[f"square[{i}]"], keys["square ×30"]) in edges
    assert (keys["square ×30"], keys["total"]) in edges
    # past the group threshold the items are one group node, striped by status
    grouped = run.visualize(expand_maps=True, group_threshold=10).source
    labels = node_labels(grouped)
    assert sorted(labels.values())[-1] == "total" and len(labels) == 4
    assert "square[i] ×30\\n25 completed · 5 failed" in labels.values()
    assert grouped.count("->") == 3  # discover -> items -> square -> total


@pytest.fixture
def gate():
    name = f"map-{uuid.uuid4().hex[:8]}"
    yield name
    jobs.event(f"{name}:release").set()


def test_panel_map_node_and_row_follow_the_items(queue, gate):
    pytest.importorskip("ipywidgets")
    wf, made = squares(gate=gate)
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    map_id = made["square"].id
    try:
        node = panel_svg_nodes(panel)[f"job-{map_id}"]
        assert texts_of(node) == ["square ×?", "waiting for discover"]
        with Worker(queue.db_path, concurrency=2, polling_interval=0.02):
            assert jobs.event(f"{gate}:started").wait(30)

            def items_run() -> bool:
                panel.refresh()
                return "running" in panel_svg_nodes(panel)[f"job-{map_id}"].get("class", "")
            wait_until(items_run, what="the map's node running while its items run")
            node = panel_svg_nodes(panel)[f"job-{map_id}"]
            assert texts_of(node)[0] == "square ×30"
            # a thread's batch may hold items claimed behind the one that runs
            assert re.fullmatch(r"\d+ done(, \d+ failed)?, \d+ running", texts_of(node)[1])
            rows = table_rows(panel)
            assert [row["name"].split(" ×")[0] for row in rows] == [
                "discover", "▸ square", "total"]
            assert rows[1]["status"].endswith("running")
            jobs.event(f"{gate}:release").set()
            assert run.wait(timeout=60)
        panel.refresh()
        node = panel_svg_nodes(panel)[f"job-{map_id}"]
        assert texts_of(node) == DONE_LABEL
        assert "upstream_failed" in node.get("class")
        assert node.get("data-job") == map_id  # a click on it selects the map
        rows = table_rows(panel)
        assert [row["name"] for row in rows] == [
            "discover", "▸ square ×30 · 25 done, 5 failed", "total"]
        assert rows[1]["error"] == "square[0]: ValueError: item 0 is divisible by 7"
        assert rows[1]["status"].endswith("upstream_failed")

        panel.select("square")  # its items listed under it, the failed ones first
        rows = table_rows(panel)
        assert len(rows) == 3 + ITEMS and rows[1]["name"].startswith("▾ square ×30")
        assert [row["name"] for row in rows[2:2 + len(FAILING)]] == [
            f"square[{i}]" for i in FAILING]
        assert rows[-1]["name"] == "total"
        text = html.unescape(re.sub(r"<[^>]+>", "", panel.output.value))
        assert "a map over the list of discover: 30 items" in text
        assert "25 completed · 5 failed" in text
        assert "failed items (5; select one to see its output):" in text
        assert "square[14]: ValueError: item 14 is divisible by 7" in text

        panel.select("square[7]")  # an item: its output, its map still listed
        assert "ValueError: item 7 is divisible by 7" in panel.output_text
        assert len(table_rows(panel)) == 3 + ITEMS
        assert f'data-job="{panel.selected}" data-status="failed" aria-selected' in \
            panel.table.value
        panel.select(None)
        assert len(table_rows(panel)) == 3
    finally:
        panel.close()


def test_a_large_map_costs_the_panel_one_node_and_one_row(queue, monkeypatch):
    pytest.importorskip("ipywidgets")
    n = 1000
    wf, made = squares(n)
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    attempts_read: list[int] = []
    real = run.attempts
    monkeypatch.setattr(run, "attempts", lambda *a: attempts_read.append(1) or real(*a))
    try:
        with Worker(queue.db_path, concurrency=4, polling_interval=0.02):
            wait_until(lambda: panel.refresh() or run.done, timeout=120, interval=0.2,
                       what=f"the map of {n} items to finish")
        panel.refresh()
        failing = len(range(0, n, 7))
        assert panel.progress.max == n + 3 and panel.done
        assert len(panel_svg_nodes(panel)) == 3
        node = panel_svg_nodes(panel)[f"job-{made['square'].id}"]
        assert texts_of(node) == [f"square ×{n}", f"{n - failing} done, {failing} failed"]
        assert len(table_rows(panel)) == 3
        # items' workers are never looked up while they are not listed
        assert len(attempts_read) <= 3
        assert len(panel.table.value) < 10_000
        panel.select("square")
        rows = table_rows(panel)
        assert len(rows) == 3 + MAP_ROWS_SHOWN + 1
        assert rows[2]["name"] == "square[0]" and rows[2]["status"].endswith("failed")
        assert rows[2 + MAP_ROWS_SHOWN]["name"].startswith(
            f"… {n - MAP_ROWS_SHOWN} more items of square")
    finally:
        panel.close()
