"""Incremental runs across interpreters: each run is a fresh Python process (a new kernel)
on one queue file, and the code of the steps is rewritten between runs."""

from __future__ import annotations

import os
from pathlib import Path

from support import jobs
from support.cli import cli, ok
from support.helpers import lines
from support.workflows import python_script, run_python

from gigq_flow import JobQueue, Workflow, WorkflowRun

STEPS = '''
import os

OFFSET = 1
UNUSED = "not read by any step"


def note(name):
    with open(os.environ["STEP_LOG"], "a") as log:
        log.write(name + "\\n")


def scale(x):
    return x * 2


def tidy(x):
    return scale(x) + OFFSET


def load(n):
    note("load")
    return list(range(n))


def clean(parent_results):
    note("clean")
    return [tidy(v) for v in parent_results.by_name["load"]]


def report(parent_results):
    note("report")
    return sum(parent_results.by_name["clean"])
'''

PIPELINE = '''
import json
import sys

import steps
from gigq_flow import JobQueue, Workflow

wf = Workflow("iterate")
raw = wf.add_task(steps.load, params={"n": int(sys.argv[2])}, name="load")
clean = wf.add_task(steps.clean, depends_on=[raw], name="clean")
wf.add_task(steps.report, depends_on=[clean], name="report")
run = wf.run(JobQueue(sys.argv[1]), workers=2, progress=False, cache=True)
print(json.dumps({"id": run.id, "explain": run.explain(), "results": run.results()}))
'''


class Pipeline:
    """The steps module and the script that runs it, in a directory of their own."""

    def __init__(self, tmp_path: Path) -> None:
        self.steps = tmp_path / "steps.py"
        self.steps.write_text(STEPS)
        self.script = python_script(tmp_path, "pipeline.py", PIPELINE)
        self.db = str(tmp_path / "queue.db")
        self.log = tmp_path / "calls.log"
        self.env = {**os.environ, "STEP_LOG": str(self.log), "PYTHONDONTWRITEBYTECODE": "1"}

    def edit(self, old: str, new: str) -> None:
        source = self.steps.read_text()
        assert old in source
        self.steps.write_text(source.replace(old, new))

    def run(self, n: int = 4) -> dict:
        self.log.unlink(missing_ok=True)
        return run_python(self.script, self.env, self.db, str(n))

    def calls(self) -> list[str]:
        return lines(self.log) if self.log.exists() else []


def test_a_new_interpreter_with_the_same_code_reuses_every_step(tmp_path):
    pipeline = Pipeline(tmp_path)
    first = pipeline.run()
    assert first["explain"] == dict.fromkeys(("load", "clean", "report"),
                                             "ran: no earlier result")
    assert first["results"] == {"load": [0, 1, 2, 3], "clean": [1, 3, 5, 7], "report": 16}

    second = pipeline.run()
    assert pipeline.calls() == []
    assert second["results"] == first["results"]
    assert set(second["explain"].values()) == {f"cached (from run {first['id']})"}

    pipeline.edit("def scale(x):", "# a comment, a blank line, lines shifted\n\ndef scale(x):")
    pipeline.edit('UNUSED = "not read by any step"', 'UNUSED = "edited"')
    assert pipeline.run()["explain"]["report"].startswith("cached")
    assert pipeline.calls() == []


def test_an_edited_helper_two_calls_deep_runs_its_step_and_what_depends_on_it(tmp_path):
    pipeline = Pipeline(tmp_path)
    pipeline.run()
    pipeline.edit("return x * 2", "return x * 3")  # scale, called by tidy, called by clean
    changed = pipeline.run()

    assert changed["explain"]["load"].startswith("cached")
    assert changed["explain"]["clean"] == "ran: code changed"
    assert changed["explain"]["report"] == "ran: parents changed"
    assert changed["results"]["report"] == 22 and pipeline.calls() == ["clean", "report"]


def test_a_code_change_that_keeps_the_result_spares_the_children(tmp_path):
    pipeline = Pipeline(tmp_path)
    pipeline.run()
    pipeline.edit('for v in parent_results.by_name["load"]]',
                  'for v in list(parent_results.by_name["load"])]')
    changed = pipeline.run()

    assert changed["explain"]["clean"] == "ran: code changed"
    assert changed["explain"]["report"].startswith("cached")
    assert pipeline.calls() == ["clean"]


def test_a_changed_module_constant_or_param_is_never_served_stale(tmp_path):
    pipeline = Pipeline(tmp_path)
    pipeline.run()
    pipeline.edit("OFFSET = 1", "OFFSET = 2")
    constant = pipeline.run()
    assert constant["explain"]["clean"] == "ran: code changed"
    assert constant["results"]["clean"] == [2, 4, 6, 8]

    more = pipeline.run(n=5)
    assert more["explain"]["load"] == "ran: params changed"
    assert more["explain"]["clean"] == "ran: parents changed"
    assert more["results"]["report"] == 30


def test_steps_defined_in_main_are_keyed_like_notebook_cells(tmp_path):
    script = python_script(tmp_path, "cells.py", '''
        import json
        import sys

        from gigq_flow import JobQueue, Workflow

        def double(x):
            return x * 2

        def step(value):
            with open(sys.argv[2], "a") as log:
                log.write("step\\n")
            return double(value)

        if __name__ == "__main__":
            wf = Workflow("cells")
            wf.add_task(step, params={"value": 21})
            run = wf.run(JobQueue(sys.argv[1]), workers=1, progress=False, cache=True)
            print(json.dumps({"explain": run.explain(), "results": run.results()}))
        ''')
    db, log = str(tmp_path / "q.db"), tmp_path / "calls.log"

    assert run_python(script, dict(os.environ), db, str(log))["results"] == {"step": 42}
    assert run_python(script, dict(os.environ), db, str(log))["explain"]["step"].startswith(
        "cached")
    script.write_text(script.read_text().replace("return x * 2", "return x * 3"))
    edited = run_python(script, dict(os.environ), db, str(log))
    assert edited == {"explain": {"step": "ran: code changed"}, "results": {"step": 63}}
    assert lines(log) == ["step", "step"]


def test_worker_processes_key_steps_like_threads_and_reuse_across_them(tmp_path):
    """Each job runs in a new `gigq-flow worker --once` process, whose first claim finds
    the step's module not imported yet: the key is then computed after the claim."""
    queue = JobQueue(tmp_path / "q.db")
    log = tmp_path / "calls.log"

    def submit_and_drain() -> WorkflowRun:
        wf = Workflow("processes")
        first = wf.add_task(jobs.record_call, {"log_path": str(log), "label": "first"},
                            name="first")
        wf.add_task(jobs.takes_parent_results, depends_on=[first], name="second")
        run = wf.submit(queue, cache=True)
        for _ in range(2):
            ok(cli(queue.db_path, "worker", "--once", "--polling-interval", "0.1"))
        assert run.done
        return run

    ran = submit_and_drain()
    reused = submit_and_drain()
    assert set(ran.explain().values()) == {"ran: no earlier result"}
    assert set(reused.explain().values()) == {f"cached (from run {ran.id})"}
    assert reused.results() == ran.results() and lines(log) == ["first"]
