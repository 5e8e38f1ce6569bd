"""Steps of a script's ``__main__`` on processes: a GigQ-style script (steps at module
level, no ``if __name__ == "__main__":`` guard) runs its workflow with
``executor="processes"``; its steps go to the child processes by value, the script is
not run again in them, and no child outlives the run. A worker of another process runs
such steps only when it trusts the queue (``--allow-pickle``)."""

from __future__ import annotations

import pytest
from support.cli import cli, ok
from support.db import rows
from support.helpers import alive, subprocess_env
from support.workflows import python_script, run_python

from gigq_flow import JobQueue

RUNS_ON_PROCESSES = """
    import json, logging, os, sys
    from gigq_flow import JobQueue, Workflow

    SCALE = 7

    def load(n):
        return {"values": list(range(n)), "pid": os.getpid()}

    def shout(label):
        print(f"shouting {label} from {os.getpid()}")
        logging.getLogger("script.shout").warning("logged %s", label)
        return {"label": label, "pid": os.getpid()}

    def scaled(parent_results):
        return {"total": sum(parent_results.by_name["load"]["values"]) * SCALE,
                "pid": os.getpid()}

    wf = Workflow("from main")
    first = wf.add_task(load, {"n": 4})
    wf.add_task(shout, {"label": "hello"})
    wf.add_task(scaled, depends_on=[first])
    run = wf.run(JobQueue(sys.argv[1]), workers=2, executor="processes", progress=False)
    print(json.dumps({"pid": os.getpid(), "done": run.done, "results": run.results(),
                      "ids": {job.name: job.id for job in wf.jobs}}))
"""

SUBMITS_ONLY = """
    import json, os, sys
    from gigq_flow import JobQueue, Workflow

    GREETING = "hi"

    def shout(label):
        print(f"shouting {GREETING} {label} from {os.getpid()}")
        return {"label": label, "pid": os.getpid()}

    wf = Workflow("submitted from main")
    wf.add_task(shout, {"label": "there"})
    run = wf.submit(JobQueue(sys.argv[1]))
    print(json.dumps({"pid": os.getpid(), "job": wf.jobs[0].id}))
"""


def test_a_scripts_main_steps_run_on_processes_and_none_outlives_it(tmp_path):
    db = tmp_path / "script.db"
    script = python_script(tmp_path, "pipeline.py", RUNS_ON_PROCESSES)
    seen = run_python(script, subprocess_env(), str(db))
    results = seen["results"]
    assert seen["done"] is True
    assert results["load"]["values"] == [0, 1, 2, 3]
    assert results["scaled"]["total"] == 6 * 7  # parent results and a module constant
    assert results["shout"]["label"] == "hello"
    pids = {result["pid"] for result in results.values()}
    assert seen["pid"] not in pids and len(pids) <= 2  # two children at most, reused

    queue = JobQueue(db)
    assert len(queue.list_workflows()) == 1  # the children did not run the script again
    logs = queue.get_logs(seen["ids"]["shout"])
    assert f"shouting hello from {results['shout']['pid']}" in logs
    assert "WARNING script.shout: logged hello" in logs
    assert rows(db, "SELECT function_module FROM jobs") == [("__main__",)] * 3
    assert len(rows(db, "SELECT digest FROM step_code")) == 3  # each shipped by value
    assert not any(alive(pid) for pid in pids)  # the run's worker ended its children


@pytest.mark.usefixtures("cli_subprocesses")
@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_worker_of_another_process_runs_main_steps_only_with_allow_pickle(tmp_path,
                                                                            executor):
    db = tmp_path / "submitted.db"
    script = python_script(tmp_path, "submit.py", SUBMITS_ONLY)
    refused = run_python(script, subprocess_env(), str(db))["job"]
    ok(cli(db, "worker", "--once", "--executor", executor))
    queue = JobQueue(db)
    status = queue.get_status(refused)
    assert (status["status"], status["attempts"]) == ("failed", 1)  # not retried
    assert status["error"].startswith("cannot start job: NotAllowedError: ")
    assert "allow_pickle=True" in status["error"]
    assert "--allow-pickle" in status["error"]
    assert queue.get_logs(refused).count("shouting") == 0  # the step never ran

    submitted = run_python(script, subprocess_env(), str(db))
    ok(cli(db, "worker", "--once", "--allow-pickle", "--executor", executor))
    result = queue.get_result(submitted["job"])
    assert result["label"] == "there" and result["pid"] != submitted["pid"]
    worker_pid = queue.list_workers()[0]["pid"]
    assert (result["pid"] != worker_pid) == (executor == "processes")
    logs = queue.get_logs(submitted["job"])
    assert f"shouting hi there from {result['pid']}" in logs  # the constant came along


NAMED_MAIN = """
    import json, sys
    from gigq_flow import JobQueue, Job

    def main(label):
        return f"the script's main: {label}"

    print(json.dumps(JobQueue(sys.argv[1]).submit(Job("main", main, params={"label": "ran"}))))
"""


@pytest.mark.usefixtures("cli_subprocesses")
def test_a_main_step_named_like_the_commands_own_main_runs_its_own_code(tmp_path):
    """The command's ``__main__`` imports a ``main`` too: a step shipped by value is
    found by name there only if it was defined there."""
    db = tmp_path / "main.db"
    script = python_script(tmp_path, "named_main.py", NAMED_MAIN)
    env = subprocess_env()
    refused = run_python(script, env, str(db))
    ok(cli(db, "worker", "--once"))
    queue = JobQueue(db)
    assert "allow_pickle" in queue.get_status(refused)["error"]
    job_id = run_python(script, env, str(db))
    ok(cli(db, "worker", "--once", "--allow-pickle"))
    assert queue.get_result(job_id) == "the script's main: ran"
