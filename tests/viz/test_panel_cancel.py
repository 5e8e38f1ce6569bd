"""The live panel's "Cancel run" button, on runs that real workers run: it ends every
unfinished step, running ones included, says how many, and is disabled while it works
and once the run is done; a failure shows in the panel."""

from __future__ import annotations

import uuid

import pytest
from support import jobs
from support.helpers import drain, wait_until

from gigq_flow import Workflow

pytestmark = pytest.mark.contract

ipywidgets = pytest.importorskip("ipywidgets")

FAST = 0.02


def long_run(queue, make_worker):
    """``long`` (loops on check_cancelled()) -> ``after``, with ``long`` running on a
    background worker; returns the run and the key of ``long``'s events."""
    key = f"panel-cancel-{uuid.uuid4().hex[:8]}"
    wf = Workflow("to cancel")
    long = wf.add_task(jobs.work_until_cancelled, {"key": key}, name="long")
    wf.add_task(jobs.noop, name="after", depends_on=[long])
    run = wf.submit(queue)
    make_worker(queue.db_path, polling_interval=0.05).start_background()
    assert jobs.event(f"{key}:started").wait(20)
    return run, key


def test_the_button_ends_a_running_run_and_is_disabled_while_and_after(
        queue, make_worker, monkeypatch):
    run, key = long_run(queue, make_worker)
    panel = run.widget(interval=FAST)
    try:
        assert panel.cancel_button.description == "Cancel run"
        assert not panel.cancel_button.disabled and not panel.done
        seen = []
        real = run.cancel

        def cancel():
            seen.append(panel.cancel_button.disabled)
            return real()

        monkeypatch.setattr(run, "cancel", cancel)
        panel.cancel_button.click()
        assert seen == [True]  # disabled while the click is handled
        assert panel.done and panel.cancel_button.disabled
        statuses = {job.name: job.status.value for job in run.snapshot().jobs}
        assert statuses == {"long": "cancelled", "after": "cancelled"}
        assert panel.counts["cancelled"] == 2 and panel.progress.bar_style == "warning"
        assert "cancelled 2 steps" in panel.status_line.value
        assert jobs.event(f"{key}:stopped").wait(5)  # the step was told, and stopped
        wait_until(lambda: not panel.running, what="the thread's last refresh")
        assert "finished · cancelled 2 steps" in panel.status_line.value
        panel.cancel_button.click()  # done: the click does nothing
        assert seen == [True] and "cancelled 2 steps" in panel.status_line.value
    finally:
        panel.close()


def test_the_button_is_disabled_on_a_completed_run(queue, make_worker):
    wf = Workflow("done")
    wf.add_task(jobs.identity, {"value": 1}, name="only")
    run = wf.submit(queue)
    drain(make_worker(queue.db_path))
    panel = run.widget()
    assert panel.done and not panel.running
    assert panel.cancel_button.disabled
    panel.cancel_button.click()
    assert "cancelled" not in panel.status_line.value
    assert run.snapshot().counts["completed"] == 1


def test_a_failing_cancel_shows_in_the_panel_and_the_button_works_again(queue, monkeypatch):
    wf = Workflow("pending")
    first = wf.add_task(jobs.identity, name="first")
    wf.add_task(jobs.identity, name="second", depends_on=[first])
    run = wf.submit(queue)
    panel = run.widget(autostart=False)
    real = run.cancel

    def unreachable():
        raise OSError("queue file unreachable")

    monkeypatch.setattr(run, "cancel", unreachable)
    panel.cancel_button.click()  # raises nothing into the caller
    assert "cancelling the run failed" in panel.error_box.value
    assert "OSError: queue file unreachable" in panel.error_box.value
    assert panel.error_box.layout.display == ""
    assert "cancel failed: OSError: queue file unreachable" in panel.status_line.value
    assert not panel.cancel_button.disabled and not panel.done

    monkeypatch.setattr(run, "cancel", real)
    panel.cancel_button.click()
    assert panel.done and panel.cancel_button.disabled
    assert "cancelled 2 steps" in panel.status_line.value
    assert panel.error_box.layout.display == "none"  # the refresh after it cleared the error
