"""A step's output in the live panel (select a step: its prints, growing while it runs,
then its traceback once it failed) and a failed step's error in the picture's tooltip."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from support import jobs
from support.helpers import wait_until
from support.viz import svg_nodes, table_rows, tooltip_of

from gigq_flow import Worker, Workflow
from gigq_flow.errors import JobNotFoundError
from gigq_flow.viz.stepout import OUTPUT_SHOWN_CHARS, PICK_CLASS

pytestmark = pytest.mark.contract

ipywidgets = pytest.importorskip("ipywidgets")

FAST = 0.02


@pytest.fixture
def key():
    name = f"out-{uuid.uuid4().hex[:8]}"
    yield name
    jobs.event(f"{name}:release").set()


def talk_and_fail(queue, key):
    """``talker`` prints a line, waits for ``<key>:release``, prints another; ``failing``
    prints a line and raises."""
    wf = Workflow("talk-and-fail")
    talker = wf.add_task(jobs.print_until_released, {"key": key}, name="talker")
    failing = wf.add_task(jobs.print_then_fail, {"label": "failing"}, name="failing",
                          max_attempts=1)
    return wf.submit(queue), talker, failing


def shown(panel) -> str:
    """The text of the panel's output area, as a person reads it."""
    pre = re.search(r"<pre [^>]*>(.*?)</pre>", panel.output.value, re.DOTALL).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", pre))


def count_logs(monkeypatch, run) -> list[str]:
    """The job ids of every run.logs() call from now on."""
    calls: list[str] = []
    real = run.logs

    def counted(step, attempt=None):
        calls.append(step)
        return real(step, attempt)

    monkeypatch.setattr(run, "logs", counted)
    return calls


def test_a_selected_running_step_shows_its_output_growing(queue, key, monkeypatch):
    run, talker, failing = talk_and_fail(queue, key)
    reads = count_logs(monkeypatch, run)
    panel = run.widget(interval=FAST)
    try:
        assert panel.selected is None and panel.output.layout.display == "none"
        with Worker(queue.db_path, concurrency=2, polling_interval=0.05):
            assert jobs.event(f"{key}:started").wait(20)
            wait_until(lambda: panel.counts.get("failed") == 1, what="failing to fail")
            assert reads == []  # nothing selected: no output read
            panel.select("talker")
            assert panel.selected == talker.id and panel.output.layout.display == ""
            wait_until(lambda: f"{key} started" in panel.output_text,
                       what="the first line, stored while the step runs")
            before = panel.output_text
            assert f"{key} released" not in before and f"{key} started" in shown(panel)
            assert "running" in panel.output.value
            jobs.event(f"{key}:release").set()
            assert run.wait(timeout=20)
            wait_until(lambda: f"{key} released" in panel.output_text,
                       what="the line printed after the release")
        assert panel.output_text.startswith(before)
        assert shown(panel) == panel.output_text == f"{key} started\n{key} released\n"
        assert set(reads) == {talker.id}  # only the selected step's output was read
        # the selected row is marked; a finished, unchanged step is not read again
        marked = re.findall(r'<tr data-job="([^"]+)"[^>]*aria-selected="true"', panel.table.value)
        assert marked == [talker.id]
        settled = len(reads)
        for _ in range(3):
            panel.refresh()
        assert len(reads) == settled
    finally:
        panel.close()


def test_a_failed_step_shows_its_error_in_its_row_and_its_traceback_when_selected(queue, key):
    run, talker, failing = talk_and_fail(queue, key)
    jobs.event(f"{key}:release").set()
    with Worker(queue.db_path, concurrency=2, polling_interval=0.05):
        run.wait(timeout=20)
    panel = run.widget(autostart=False)
    rows = {row["name"]: row for row in table_rows(panel)}
    assert rows["failing"]["error"] == "ValueError: deep problem in failing"
    assert rows["talker"]["error"] == ""
    panel.select(failing)  # a Job works too
    text = shown(panel)
    assert text.startswith("failing is about to fail\n")
    assert "Traceback (most recent call last):" in text
    assert "in print_then_fail" in text
    assert text.rstrip().endswith("ValueError: deep problem in failing")
    assert text == panel.output_text == run.logs(failing.id)
    assert "failed, attempt 1" in panel.output.value
    # another step, then none: the area follows and hides
    panel.select(talker.id)
    assert shown(panel) == f"{key} started\n{key} released\n"
    panel.select(None)
    assert panel.selected is None and panel.output_text == ""
    assert panel.output.layout.display == "none" and "aria-selected" not in panel.table.value


def test_a_click_in_the_page_selects_through_the_hidden_box(queue, key):
    run, talker, failing = talk_and_fail(queue, key)
    jobs.event(f"{key}:release").set()
    with Worker(queue.db_path, concurrency=2, polling_interval=0.05):
        run.wait(timeout=20)
    panel = run.widget(autostart=False)
    box = next(child for child in panel.children if PICK_CLASS in child._dom_classes)
    assert box.layout.display == "none"
    # what the click handler does in the page: write the job id of the clicked element
    box.value = failing.id
    assert panel.selected == failing.id and "Traceback" in panel.output_text
    # both the table and the graph carry the handler, and the job ids it reads
    assert 'onclick="' in panel.table.value and PICK_CLASS in panel.table.value
    assert 'onclick="' in panel.graph_view.value
    for job in (talker, failing):
        assert f'<tr data-job="{job.id}"' in panel.table.value
        assert f'id="job-{job.id}" class="node' in panel.graph_view.value
        assert re.search(rf'<g id="job-{job.id}" [^>]*data-job="{job.id}"',
                         panel.graph_view.value)
    # an id that is not a step of the run shows an error and changes nothing
    box.value = "not-a-job"
    assert panel.selected == failing.id
    assert "not a step" in panel.error_box.value and panel.error_box.layout.display == ""
    # selecting from Python keeps the box in step, so a click on the same row works again
    panel.select(talker.id)
    assert box.value == talker.id


def test_selecting_an_unknown_or_ambiguous_step_names_the_fix(queue):
    wf = Workflow("twins")
    wf.add_task(jobs.identity, name="twin")
    wf.add_task(jobs.identity, name="twin")
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    with pytest.raises(JobNotFoundError, match="not a step of 'twins'; select a Job"):
        panel.select("nobody")
    with pytest.raises(JobNotFoundError, match="2 steps of 'twins' are named 'twin'"):
        panel.select("twin")
    assert panel.selected is None and panel.output.layout.display == "none"
    first = run.snapshot().jobs[0].id
    panel.select(first)  # pending: nothing to read yet
    assert panel.output_text == "" and "not started yet" in panel.output.value


def test_the_output_area_shows_the_tail_of_a_long_output(queue):
    wf = Workflow("long")
    step = wf.add_task(jobs.print_lots, {"n": 3000, "width": 50}, name="long")
    run = wf.run(queue, progress=False, workers=1)
    panel = run.widget(autostart=False)
    panel.select(step)
    assert len(panel.output_text) == 3000 * 51
    text = shown(panel)
    head, tail = text.split("\n", 1)
    assert head == f"[the first {3000 * 51 - OUTPUT_SHOWN_CHARS} characters are not shown]"
    assert tail == panel.output_text[-OUTPUT_SHOWN_CHARS:]


def test_a_failed_nodes_tooltip_is_its_error_line_escaped(queue):
    message = 'bad <row> & "quote" \\ back\nsecond line'
    wf = Workflow("escaped")
    bad = wf.add_task(jobs.fail, {"message": message}, name="bad", max_attempts=1)
    run = wf.run(queue, progress=False, workers=1)
    picture = run.visualize()
    node = svg_nodes(picture.svg())[f"job-{bad.id}"]
    assert tooltip_of(node) == 'RuntimeError: bad <row> & "quote" \\ back'
    assert "second line" not in tooltip_of(node)
