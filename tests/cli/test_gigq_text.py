"""The job commands print GigQ 0.5.1's text: both commands run side by side, GigQ's
``gigq`` (``python -m gigq.cli``) first, then ``gigq-flow``.

On one GigQ file (GigQ's workers ran its jobs; ``gigq-flow`` migrates it in place on
first use, after GigQ has printed everything): ``status`` prints GigQ's lines first and
unchanged, then gigq_flow's fields; each line of GigQ's tables (``list``, the
executions of ``status``) starts the matching line of ours, which only adds columns;
``stats`` has GigQ's rows in GigQ's order, plus ``upstream_failed`` before ``total``.
On two files that go through the same commands: submit, cancel, requeue, clear and
``worker`` print the same lines. Where the two differ on purpose (failures go to stderr,
an unknown id is exit status 2) the test says so.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.cli import cli, cli_env, module_command
from support.helpers import wait_until

pytest.importorskip("gigq")

FULL = ("--show-params", "--show-result", "--show-executions")
GIGQ_FLOW_FIELDS = ("Function", "Priority", "Workflow", "Depends on", "Description",
                    "Unreadable")


def gigq(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """GigQ's own ``gigq --db DB *args``."""
    return subprocess.run([sys.executable, "-m", "gigq.cli", "--db", str(db), *args],
                          cwd=db.parent, env=cli_env(), capture_output=True, text=True,
                          timeout=60)


def out_of(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def submitted(result: subprocess.CompletedProcess[str]) -> str:
    return re.fullmatch(r"Job submitted: (\S+)\n", out_of(result)).group(1)


@pytest.fixture(scope="module")
def gigq_file(tmp_path_factory):
    """A file GigQ wrote and ran, and what GigQ prints about it."""
    db = tmp_path_factory.mktemp("gigq") / "jobs.db"
    done = submitted(gigq(db, "submit", "support.jobs.echo_params", "--name", "Process CSV",
                          "-p", "filename=data.csv", "-p", "threshold=0.7",
                          "-p", 'nested={"k": [1, "x"]}'))
    failed = submitted(gigq(db, "submit", "support.jobs.fail", "--name", "Broken",
                            "--max-attempts", "1"))
    assert out_of(gigq(db, "worker", "--once")) == "Processed one job.\n"
    assert out_of(gigq(db, "worker", "--once")) == "Processed one job.\n"
    waiting = submitted(gigq(db, "submit", "support.jobs.add", "--name", "Waiting",
                             "-p", "a=1", "-p", "b=2", "--priority", "5"))
    ids = {"completed": done, "failed": failed, "pending": waiting}
    printed = {("status", state, flags): out_of(gigq(db, "status", job_id, *flags))
               for state, job_id in ids.items() for flags in ((), FULL)}
    printed["list"] = out_of(gigq(db, "list"))
    printed["list pending"] = out_of(gigq(db, "list", "--status", "pending"))
    printed["stats"] = out_of(gigq(db, "stats"))
    return db, ids, printed


@pytest.mark.parametrize("flags", [(), FULL], ids=["plain", "full"])
@pytest.mark.parametrize("state", ["completed", "failed", "pending"])
def test_status_prints_gigqs_lines_first_then_its_own(gigq_file, state, flags):
    db, ids, printed = gigq_file
    theirs = printed[("status", state, flags)].splitlines()
    ours = out_of(cli(db, "status", ids[state], *flags)).splitlines()
    fields = theirs.index("") if "" in theirs else len(theirs)
    assert ours[:fields] == theirs[:fields]
    assert theirs[1] == f"Status: {state}"
    added = []
    while fields + len(added) < len(ours) and ours[fields + len(added)]:
        added.append(ours[fields + len(added)])
    assert added and {line.split(": ")[0] for line in added} <= set(GIGQ_FLOW_FIELDS), added
    rest = ours[:fields] + ours[fields + len(added):]
    for line, mine in zip(theirs, rest, strict=False):
        if line.startswith(("+", "|")):  # a table line: ours only adds columns
            assert mine.startswith(line), (line, mine)
        else:
            assert mine == line
    extra = rest[len(theirs):]
    assert extra in ([], ["", "Executions: none yet"])  # GigQ prints nothing then
    if flags and state == "completed":
        assert "  nested: {'k': [1, 'x']}" in ours  # values as Python prints them


@pytest.mark.parametrize("args", [("list",), ("list", "--status", "pending")])
def test_list_draws_gigqs_table_and_adds_a_column(gigq_file, args):
    db, _, printed = gigq_file
    theirs = printed[" ".join(args[:1] + args[2:])].splitlines()
    ours = out_of(cli(db, *args)).splitlines()
    assert len(ours) == len(theirs)
    for line, mine in zip(theirs, ours, strict=True):
        assert mine.startswith(line), (line, mine)
    assert ours[1].endswith("| Attempts |")


def cells(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


def test_stats_has_gigqs_rows_and_upstream_failed_before_total(gigq_file):
    db, _, printed = gigq_file
    theirs, ours = cells(printed["stats"]), cells(out_of(cli(db, "stats")))
    assert ours[-2:-1] == [["upstream_failed", "0"]]
    assert ours[:-2] + ours[-1:] == theirs


def test_submit_cancel_requeue_clear_and_worker_print_gigqs_lines(tmp_path):
    (tmp_path / "gigq").mkdir()
    (tmp_path / "flow").mkdir()

    def session(run) -> list[str]:
        """The same commands on each side; ids replaced by ID."""
        lines, ids = [], []

        def say(*args: str) -> None:
            out = out_of(run(*args))
            ids.extend(re.findall(r"Job submitted: (\S+)", out))
            for job_id in ids:
                out = out.replace(job_id, "ID")
            lines.append(out)

        say("submit", "support.jobs.add", "--name", "first", "-p", "a=1", "-p", "b=2")
        say("submit", "support.jobs.add", "--name", "second", "-p", "a=3", "-p", "b=4")
        say("cancel", ids[1])
        say("requeue", ids[1])
        say("worker", "--once")
        say("worker", "--once")
        say("worker", "--once")
        say("clear", "--before", "1")
        say("clear")
        say("list")
        return lines

    theirs = session(lambda *args: gigq(tmp_path / "gigq" / "jobs.db", *args))
    ours = session(lambda *args: cli(tmp_path / "flow" / "jobs.db", *args))
    assert ours == theirs == [
        "Job submitted: ID\n", "Job submitted: ID\n", "Job ID cancelled.\n",
        "Job ID requeued.\n", "Processed one job.\n", "Processed one job.\n",
        "No jobs available to process.\n", "Cleared 0 completed jobs.\n",
        "Cleared 2 completed jobs.\n", "No jobs found.\n",
    ]


def test_refusals_start_with_gigqs_words_on_stderr(tmp_path):
    (tmp_path / "gigq").mkdir()
    (tmp_path / "flow").mkdir()
    for db, run in ((tmp_path / "gigq" / "jobs.db", gigq), (tmp_path / "flow" / "jobs.db", cli)):
        job_id = submitted(run(db, "submit", "support.jobs.add", "--name", "n",
                               "-p", "a=1", "-p", "b=2"))
        out_of(run(db, "worker", "--once"))
        cancel, requeue, status = (run(db, "cancel", job_id), run(db, "requeue", job_id),
                                   run(db, "status", "no-such-job"))
        assert (cancel.returncode, requeue.returncode) == (1, 1)
        if run is gigq:  # GigQ prints them on stdout, and an unknown id exits 1
            assert cancel.stdout.startswith(f"Could not cancel job {job_id}.")
            assert requeue.stdout.startswith(f"Could not requeue job {job_id}.")
            assert (status.returncode, status.stdout) == (1, "Job no-such-job not found.\n")
        else:
            assert cancel.stderr.startswith(f"gigq-flow: error: Could not cancel job {job_id}:")
            assert requeue.stderr.startswith(
                f"gigq-flow: error: Could not requeue job {job_id}:")
            assert status.returncode == 2
            assert status.stderr.startswith("gigq-flow: error: Job no-such-job not found in ")
            assert cancel.stdout == requeue.stdout == status.stdout == ""


def test_a_running_worker_prints_gigqs_first_line(tmp_path):
    commands = {"gigq": [sys.executable, "-m", "gigq.cli"], "flow": module_command()}
    workers = {}
    for name, command in commands.items():
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "out", "w") as out:
            workers[name] = subprocess.Popen(
                [*command, "--db", "jobs.db", "worker", "--worker-id", "w-1",
                 "--polling-interval", "1"],
                cwd=tmp_path / name, env=cli_env(), stdout=out, stderr=subprocess.DEVNULL)
    try:
        for name in commands:
            wait_until(lambda name=name: (tmp_path / name / "out").read_text(),
                       what=f"the first line of {name}")
        time.sleep(0.5)  # the line comes just before the signal handlers are installed
        for worker in workers.values():
            worker.send_signal(signal.SIGTERM)
        codes = {name: worker.wait(30) for name, worker in workers.items()}
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert codes == {"gigq": 0, "flow": 0}
    for name in commands:
        assert (tmp_path / name / "out").read_text() == "Starting worker w-1...\n"


def test_rows_stay_on_one_line_in_a_pipe_however_wide(tmp_path):
    db = tmp_path / "jobs.db"
    long = "x" * 1500
    job_id = submitted(cli(db, "submit", "support.jobs.fail", "--name", f"n{long}",
                           "--max-attempts", "1", "-p", f"message={long}"))
    out_of(cli(db, "worker", "--once"))
    for args in (("list",), ("status", job_id, "--show-executions")):
        table = [line for line in out_of(cli(db, *args)).splitlines()
                 if line.startswith(("+", "|"))]
        assert len(table) == 5, table  # rule, header, rule, the row, rule
        assert len({len(line) for line in table}) == 1
        assert long in table[3]
