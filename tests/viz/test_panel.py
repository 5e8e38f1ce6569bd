"""The live panel, driven by real workers: counts, progress, table, graph, thread life."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import uuid

import pytest
from support import jobs
from support.helpers import subprocess_env, wait_until
from support.viz import EXPECTED, count_in, panel_svg_nodes, table_rows

from gigq_flow import JobQueue, Worker, Workflow
from gigq_flow.errors import ConfigurationError
from gigq_flow.viz import get_styles

pytestmark = pytest.mark.contract

ipywidgets = pytest.importorskip("ipywidgets")

FAST = 0.02


def gated_chain(queue, n: int, key: str):
    """n jobs in a chain, each blocked until released: job i is ``<key>-i``."""
    wf = Workflow("gated")
    previous = None
    for i in range(n):
        previous = wf.add_task(jobs.block_until_released, {"key": f"{key}-{i}"}, name=f"step{i}",
                               depends_on=[previous] if previous else None)
    return wf, wf.submit(queue)


@pytest.fixture
def key():
    name = f"panel-{uuid.uuid4().hex[:8]}"
    yield name
    for i in range(10):
        jobs.event(f"{name}-{i}:release").set()


def test_panel_of_a_run_in_every_status(every_status):
    panel = every_status.run.widget(interval=FAST)
    try:
        assert isinstance(panel, ipywidgets.VBox)
        assert (panel.progress.value, panel.progress.max) == (6, 8)
        assert panel.progress.bar_style == "danger"
        assert panel.progress_text.value == "6 / 8 finished"
        for status in EXPECTED.values():
            assert count_in(panel, status) == list(EXPECTED.values()).count(status)
            assert get_styles()[status].fill in panel.count_labels[status].value
        rows = {row["name"]: row for row in table_rows(panel)}
        assert {name: row["status"].split(" ", 1)[1] for name, row in rows.items()} == EXPECTED
        assert rows["retry"]["attempts"] == "2/2"
        assert rows["transform"]["error"] == "RuntimeError: boom: bad row"
        assert rows["hold"]["worker"].startswith("vizw-")
        assert rows["extract"]["worker"].startswith("vizw-")  # learnt from its execution
        assert rows["skipped"]["worker"] == "" and rows["after"]["started"] == ""
        assert rows["hold"]["duration"].endswith("s")
        # the graph: one node per job in its status's colour, the failed one as an octagon
        nodes = panel_svg_nodes(panel)
        for name, status in EXPECTED.items():
            group = nodes[f"job-{every_status.jobs[name].id}"]
            assert status in group.get("class")
            shape = next(el for el in group if el.get("fill") not in (None, "none"))
            assert shape.get("fill") == get_styles()[status].fill
        failed = nodes[f"job-{every_status.jobs['transform'].id}"]
        assert len(next(el for el in failed if el.get("points")).get("points").split()) == 8
        assert panel.running
    finally:
        panel.close()
    assert not panel.running


def test_panel_follows_jobs_while_another_thread_blocks_in_wait(queue, key):
    n = 4
    _, run = gated_chain(queue, n, key)
    panel = run.widget(interval=FAST)
    seen: list[tuple[int, int, str]] = []
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            for i in range(n):
                assert jobs.event(f"{key}-{i}:started").wait(20)
                wait_until(lambda i=i: count_in(panel, "running") == 1
                         and table_rows(panel)[i]["status"].endswith("running"),
                         what=f"step{i} running in the panel")
                seen.append((panel.progress.value, count_in(panel, "pending"),
                             table_rows(panel)[i]["status"]))
                jobs.event(f"{key}-{i}:release").set()
                wait_until(lambda i=i: panel.progress.value == i + 1,
                         what=f"progress {i + 1} in the panel")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            for j in range(n):
                jobs.event(f"{key}-{j}:release").set()

    with Worker(queue.db_path, worker_id="pw", polling_interval=0.05):
        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        assert run.wait(timeout=60)  # this thread blocks; the panel keeps moving
        driver.join(20)
    assert not failures, failures[0]
    running = f"{get_styles()['running'].symbol} running"
    assert seen == [(i, n - 1 - i, running) for i in range(n)]
    wait_until(lambda: not panel.running, what="the refresh thread to stop")
    assert panel.done and panel.progress.value == n and panel.progress.bar_style == "success"
    assert count_in(panel, "completed") == n
    assert [row["status"] for row in table_rows(panel)] == [
        f"{get_styles()['completed'].symbol} completed"] * n
    assert "finished" in panel.status_line.value


def test_panel_stops_refreshing_when_every_job_is_terminal(queue, key):
    _, run = gated_chain(queue, 1, key)
    panel = run.widget(interval=FAST)
    with Worker(queue.db_path, polling_interval=0.05):
        assert jobs.event(f"{key}-0:started").wait(20)
        wait_until(lambda: panel.refreshes >= 3, what="refreshes while running")
        jobs.event(f"{key}-0:release").set()
        assert run.wait(timeout=20)
        thread = panel._thread
        thread.join(10)
    assert not thread.is_alive()
    final = panel.refreshes
    assert panel.counts["completed"] == 1 and panel.done
    # a stopped panel still refreshes by hand, and can be restarted
    assert panel.refresh() is True
    assert panel.refreshes == final + 1


def test_panel_on_a_finished_run_from_another_handle_starts_no_thread(queue):
    wf = Workflow("old")
    wf.add_task(jobs.identity, name="only")
    run = wf.submit(queue)
    with Worker(queue.db_path, polling_interval=0.05):
        assert run.wait(timeout=20)
    reopened = JobQueue(queue.db_path).get_workflow(run.id)
    panel = reopened.widget()
    assert not panel.running and panel.done and panel.refreshes == 1
    assert panel.progress.value == 1 and count_in(panel, "completed") == 1


def test_workflow_widget_needs_a_submission(queue, key):
    wf = Workflow("w")
    wf.add_task(jobs.identity, name="a")
    with pytest.raises(ConfigurationError, match="submit"):
        wf.widget()
    run = wf.submit(queue)
    panel = wf.widget(interval=FAST, autostart=False)
    assert panel.run.id == run.id and not panel.running
    assert count_in(panel, "pending") == 1
    with pytest.raises(ConfigurationError, match="interval"):
        run.widget(interval=0)


def test_errors_in_the_refresh_thread_show_in_the_panel_and_it_recovers(queue, key, monkeypatch):
    _, run = gated_chain(queue, 1, key)
    panel = run.widget(interval=FAST)
    broken = threading.Event()
    real = run.snapshot

    def flaky_snapshot(**options):
        if broken.is_set():
            raise OSError("queue file unreachable")
        return real(**options)

    monkeypatch.setattr(run, "snapshot", flaky_snapshot)
    broken.set()
    wait_until(lambda: "queue file unreachable" in panel.error_box.value, what="error shown")
    assert panel.error_box.layout.display == "" and panel.running
    assert "OSError" in panel.last_error
    broken.clear()
    with Worker(queue.db_path, polling_interval=0.05):
        jobs.event(f"{key}-0:release").set()
        assert run.wait(timeout=20)
        wait_until(lambda: not panel.running, what="the thread to stop")
    assert panel.error_box.value == "" and panel.error_box.layout.display == "none"
    assert panel.last_error is None and panel.done


def test_refresh_by_hand_reports_and_raises(queue, monkeypatch):
    wf = Workflow("by-hand")
    wf.add_task(jobs.identity, name="a")
    run = wf.submit(queue)
    panel = run.widget(autostart=False)

    def fails(**options):
        raise RuntimeError("nope")

    monkeypatch.setattr(run, "snapshot", fails)
    with pytest.raises(RuntimeError):
        panel.refresh()
    assert "nope" in panel.error_box.value


def test_panel_without_a_renderer_still_shows_counts_and_table(queue, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pygraphviz", None)
    wf = Workflow("no-renderer")
    wf.add_task(jobs.identity, name="a")
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    assert "pip install" in panel.graph_view.value
    assert count_in(panel, "pending") == 1 and len(table_rows(panel)) == 1


def test_group_nodes_in_the_panel_show_stripes_per_status(queue):
    wf = Workflow("grouped")
    start = wf.add_task(jobs.identity, name="start")
    for i in range(12):
        wf.add_task(jobs.fail if i < 3 else jobs.identity, name="fetch", depends_on=[start],
                    max_attempts=1)
    run = wf.submit(queue)
    panel = run.widget(interval=FAST, group_threshold=5)
    with Worker(queue.db_path, concurrency=2, polling_interval=0.05):
        assert run.wait(timeout=30)
        wait_until(lambda: not panel.running, what="the thread to stop")
    svg = panel.graph_view.value
    group = re.search(r'<g id="group-g1" class="node (\w+)">(.*?)</g>', svg, re.DOTALL)
    assert group.group(1) == "failed"
    stripes = re.findall(r'<rect [^>]*width="([\d.]+)"[^>]*fill="(#\w+)"', group.group(2))
    assert [fill for _, fill in stripes] == [get_styles()["completed"].fill,
                                             get_styles()["failed"].fill]
    widths = [float(w) for w, _ in stripes]
    assert widths[0] == pytest.approx(3 * widths[1], rel=0.01)
    assert "9 completed · 3 failed" in group.group(2)


def test_panel_follows_workers_in_another_process(queue, key):
    wf = Workflow("other-process")
    a = wf.add_task(jobs.identity, {"value": 1}, name="a")
    wf.add_task(jobs.identity, {"value": 2}, name="b", depends_on=[a])
    run = wf.submit(queue)
    panel = run.widget(interval=FAST)
    assert count_in(panel, "pending") == 2
    code = (
        "from gigq_flow import Worker, JobQueue; import sys; "
        f"w = Worker({queue.db_path!r}, worker_id='outside', polling_interval=0.05); "
        "[w.process_one() for _ in range(2)]"
    )
    subprocess.run([sys.executable, "-c", code], env=subprocess_env(), check=True, timeout=60)
    wait_until(lambda: panel.done, what="the panel to see the other process's work")
    assert count_in(panel, "completed") == 2
    assert {row["worker"] for row in table_rows(panel)} == {"outside"}
    wait_until(lambda: not panel.running, what="the thread to stop")


def test_panel_of_an_empty_or_huge_graph_leaves_the_graph_out(queue, monkeypatch):
    from gigq_flow.viz import widget as widget_module

    wf = Workflow("three")
    for name in "abc":
        wf.add_task(jobs.identity, name=name)
    run = wf.submit(queue)
    monkeypatch.setattr(widget_module, "MAX_GRAPH_NODES", 2)
    panel = run.widget(autostart=False)
    assert "graph left out: 3 nodes" in panel.graph_view.value
    assert len(table_rows(panel)) == 3


def test_panel_graph_is_titled_by_name_only_so_its_title_never_goes_stale(queue):
    wf = Workflow("titled")
    wf.add_task(jobs.identity, name="only")
    run = wf.submit(queue)
    panel = run.widget(autostart=False)  # laid out while 0 of 1 jobs are finished
    try:
        svg = panel.graph_view.value
        assert ">titled</text>" in svg
        assert "0/1" not in svg and "finished" not in svg  # the progress bar shows those
    finally:
        panel.close()
