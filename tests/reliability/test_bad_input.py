"""Bad input, one table: each case gets a clear error of a documented type, and the
database is left byte-for-byte (or row-for-row) as it was wherever nothing should be
written.

A case prepares a queue file (by default a small queue with one completed and one
pending job), does one wrong thing, and names what it expects:

- ``error``: the exception type raised to the caller (a :mod:`gigq_flow.errors` type),
  or, for mistakes only a worker can see (``at_run=True``), the type named in the
  error stored on the failed job;
- ``says``: phrases the message must contain (the thing at fault and the fix);
  ``{path}``, ``{parent}`` and ``{job}`` stand for the queue file, its directory and the
  job the case prepared;
- ``keeps``: ``"bytes"`` (sha256 of the main file after a checkpoint), ``"rows"`` (every
  row of every table, for cases where a worker legitimately writes its own bookkeeping),
  or ``"nothing"`` (no file, no directory created).

After the table: the mistakes that need no queue at all, and the readers' and GigQ
files' cases that are not one wrong step.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import jobs
from support.cli import assert_usage_error, run_cli
from support.db import sql
from support.helpers import file_digest

from gigq_flow import Job, JobQueue, Worker, Workflow, close_connections
from gigq_flow.codec import to_new_job
from gigq_flow.errors import (
    ConfigurationError,
    CycleError,
    DatabaseError,
    DuplicateJobError,
    GigqFlowError,
    NotAllowedError,
    SchemaVersionError,
    SelfDependencyError,
    SerializationError,
    TaskDefinitionError,
    UnknownDependencyError,
    WorkflowError,
)
from gigq_flow.store.sqlite_schema import GIGQ_JOBS_TABLE


# -- the starting states -----------------------------------------------------------------------
def settle(path: Path) -> None:
    """Close our connections and fold the WAL into the main file."""
    close_connections()
    if path.is_file() and path.stat().st_size:
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError:
            pass  # not a database: nothing to fold
        finally:
            conn.close()


def digest(path: Path) -> str:
    settle(path)
    return file_digest(path)


def all_rows(path: Path) -> dict[str, list[tuple]]:
    settle(path)
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(map(repr, conn.execute(f"SELECT * FROM {table}")))
                for table in tables}
    finally:
        conn.close()


def new_file(tmp: Path) -> Path:
    return tmp / "new.db"


def small_queue(tmp: Path) -> Path:
    """A queue with a completed job and a pending one."""
    path = tmp / "q.db"
    queue = JobQueue(path)
    queue.submit(Job("done", jobs.add, params={"a": 1, "b": 1}))
    worker = Worker(path, worker_id="setup")
    try:
        assert worker.process_one()
    finally:
        worker.close()
    queue.submit(Job("waiting", jobs.add, params={"a": 2, "b": 2}, priority=-1))
    settle(path)
    return path


def with_completed_job(tmp: Path) -> tuple[Path, str]:
    """A small queue, and the id of its completed job."""
    path = small_queue(tmp)
    return path, JobQueue(path).list_jobs(status="completed")[0]["id"]


def with_foreign_job(tmp: Path, **changes: Any) -> tuple[Path, str]:
    """A small queue plus one job written as a hostile or careless writer would."""
    path = small_queue(tmp)
    job = to_new_job(Job("odd", jobs.add, params={"a": 1, "b": 2}, priority=5))
    JobQueue(path).store.submit([dataclasses.replace(job, **changes)])
    settle(path)
    return path, job.id


def not_a_database(tmp: Path) -> Path:
    path = tmp / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    return path


def newer_version(tmp: Path) -> Path:
    path = small_queue(tmp)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return path


def foreign_database(tmp: Path) -> Path:
    """Another program's SQLite file, in the default rollback-journal mode, as most
    programs leave it (kept byte for byte, it stays in that mode)."""
    path = tmp / "shop.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.commit()
    conn.close()
    return path


def newer_rollback_journal_database(tmp: Path) -> Path:
    """A file with a jobs table stamped by a future version, in rollback-journal mode."""
    path = tmp / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return path


def gigq_v0_with_malformed_dependencies(tmp: Path) -> Path:
    """A GigQ 0.5 file (schema version 0) whose child row has unparsable dependencies."""
    path = tmp / "gigq.db"
    conn = sqlite3.connect(path)
    conn.execute(GIGQ_JOBS_TABLE)
    conn.execute("CREATE TABLE job_executions (id TEXT PRIMARY KEY, job_id TEXT NOT NULL, "
                 "worker_id TEXT NOT NULL, status TEXT NOT NULL, started_at TEXT NOT NULL, "
                 "completed_at TEXT, result TEXT, error TEXT)")
    for job_id, deps in (("parent-1", "[]"), ("child-1", '["parent-1"')):
        conn.execute(
            "INSERT INTO jobs (id, name, function_name, function_module, params, dependencies, "
            "status, created_at, updated_at) VALUES (?, ?, 'add', 'support.jobs', '{}', ?, "
            "'pending', '2024-01-01T00:00:00', '2024-01-01T00:00:00')",
            (job_id, job_id, deps))
    conn.commit()
    conn.close()
    return path


def make_gigq_file(path: Path) -> tuple[str, str]:
    """Two jobs written by gigq 0.5.1 itself (child depends on parent); returns their ids."""
    import gigq
    from gigq.db_utils import close_connections as gigq_close

    ids: list[str] = []

    def build() -> None:  # own thread: gigq caches connections per thread
        try:
            queue = gigq.JobQueue(str(path))
            parent = gigq.Job("parent", jobs.noop)
            child = gigq.Job("child", jobs.noop, dependencies=[parent.id])
            ids.extend([queue.submit(parent), queue.submit(child)])
        finally:
            gigq_close()

    thread = threading.Thread(target=build)
    thread.start()
    thread.join(30)
    return ids[0], ids[1]


def gigq_file_with_dependencies(bad: str) -> Callable[[Path], tuple[Path, str]]:
    """A file gigq 0.5.1 wrote, whose child row's dependencies were then set to ``bad``."""
    def prepare(tmp: Path) -> tuple[Path, str]:
        path = tmp / "gigq.db"
        _, child = make_gigq_file(path)
        sql(path, "UPDATE jobs SET dependencies = ? WHERE id = ?", (bad, child))
        return path, child

    return prepare


def immutable_queue(tmp: Path) -> Path:
    """A queue file that even root cannot write (chattr +i)."""
    path = small_queue(tmp)
    if shutil.which("chattr") is None:
        pytest.skip("chattr not available: root ignores permission bits, so a read-only "
                    "file needs the immutable attribute")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i not supported here ({made.stderr.strip()}); root ignores "
                    "permission bits, so there is no read-only file to test")
    return path


# -- the wrong things --------------------------------------------------------------------------
def submit(path: Path, *submitted: Any) -> None:
    queue = JobQueue(path)
    for job in submitted:
        queue.submit(job)


def cyclic_workflow(path: Path) -> None:
    workflow = Workflow("loop")
    a = workflow.add_task(jobs.noop, name="a")
    b = workflow.add_task(jobs.noop, name="b", depends_on=[a])
    a.dependencies = [b.id]
    workflow.submit(JobQueue(path))


def self_dependent_workflow(path: Path) -> None:
    workflow = Workflow("self")
    job = Job("me", jobs.noop)
    workflow.add_job(job, depends_on=[job])
    workflow.submit(JobQueue(path))


def self_dependent_job(path: Path) -> None:
    job = Job("me", jobs.noop)
    job.dependencies = [job.id]
    submit(path, job)


def workflow_with_unknown_dependency(path: Path) -> None:
    workflow = Workflow("orphan")
    workflow.add_task(jobs.noop, name="child", depends_on=["no-such-job"])
    workflow.submit(JobQueue(path))


def unpicklable_closure_job(path: Path) -> None:
    """A closure is shipped by value: one that holds a lock cannot be pickled."""
    lock = threading.Lock()

    def inner() -> None:
        with lock:
            return None

    submit(path, Job("inner", inner))


def duplicate_submission(path: Path) -> None:
    """Submit again a job the queue already holds (same id)."""
    job = Job("twice", jobs.noop)
    job.id = JobQueue(path).list_jobs(status="completed")[0]["id"]
    submit(path, job)


def cli(*args: str) -> Callable[[Path], None]:
    """Run ``gigq-flow --db PATH *args``; expect exit 2 and one line on stderr."""
    def run(path: Path) -> None:
        result = run_cli("--db", path, *args, cwd=path.parent)
        raise CLIUsageError(assert_usage_error(result))

    return run


class CLIUsageError(Exception):
    """Stands for a CLI run that exited 2 with one line on stderr."""


def run_one_job(**worker_options: Any) -> Callable[[Path], None]:
    def run(path: Path) -> None:
        worker = Worker(path, worker_id="runner", **worker_options)
        try:
            assert worker.process_one()
        finally:
            worker.close()

    return run


# -- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    prepare: Callable[[Path], Any]
    act: Callable[[Path], Any]
    error: type[BaseException]
    says: tuple[str, ...]
    keeps: str = "bytes"
    at_run: bool = False


def foreign(**changes: Any) -> Callable[[Path], tuple[Path, str]]:
    return lambda tmp: with_foreign_job(tmp, **changes)


def missing_directory(tmp: Path) -> Path:
    return tmp / "no" / "such" / "q.db"


def cached_pipeline(path: Path, cache: Any) -> Any:
    wf = Workflow("cached")
    wf.add_task(jobs.noop)
    return wf.submit(JobQueue(path), cache=cache)


def with_workflow(tmp: Path) -> Path:
    """The small queue and a submitted workflow."""
    path = small_queue(tmp)
    cached_pipeline(path, True)
    settle(path)
    return path


def rerun_with_unknown_mode(path: Path) -> Any:
    queue = JobQueue(path)
    return queue.get_workflow(queue.list_workflows()[0]["id"]).rerun(cache="sometimes")


UNJSONABLE = object()
PICKLED = pickle.dumps({"a": 1, "b": 2})

CASES = {
    # DAG shape
    "cycle": Case(small_queue, cyclic_workflow, CycleError,
                  ("dependency cycle", "a ->", "remove one of these dependencies")),
    "self-dependency-workflow": Case(small_queue, self_dependent_workflow, SelfDependencyError,
                                     ("'me' depends on itself", "remove")),
    "self-dependency-job": Case(small_queue, self_dependent_job, SelfDependencyError,
                                ("'me' depends on itself", "remove")),
    "unknown-dependency": Case(
        small_queue, lambda p: submit(p, Job("orphan", jobs.noop,
                                             dependencies=["no-such-job"])),
        UnknownDependencyError, ("'orphan'", "no-such-job", "submit the parent first")),
    "unknown-dependency-workflow": Case(small_queue, workflow_with_unknown_dependency,
                                        UnknownDependencyError, ("'child'", "no-such-job")),
    "duplicate-submission": Case(with_completed_job, duplicate_submission, DuplicateJobError,
                                 ("{job}", "already in the queue", "new Job")),
    "dependency-not-an-id": Case(
        small_queue, lambda p: submit(p, Job("c", jobs.noop, dependencies=[object()])),
        ConfigurationError, ("dependencies of job 'c'", "job ids")),
    "dependency-a-job-not-its-id": Case(
        small_queue,
        lambda p: submit(p, Job("c", jobs.noop, dependencies=[Job("p", jobs.noop)])),
        ConfigurationError, ("dependencies of job 'c'", "job ids")),
    "not-a-job": Case(small_queue,
                      lambda p: submit(p, {"name": "x", "function": "support.jobs.noop"}),
                      ConfigurationError, ("expected a Job",)),
    # what a job is made of
    "non-json-params": Case(
        small_queue, lambda p: submit(p, Job("j", jobs.identity,
                                             params={"value": UNJSONABLE})),
        SerializationError, ("param 'value' of job 'j'", 'serializer="pickle"')),
    "method": Case(small_queue, lambda p: submit(p, Job("m", jobs.Holder().method)),
                   TaskDefinitionError, ("Holder.method is a method", "module-level function")),
    "nameless-callable": Case(
        small_queue, lambda p: submit(p, Job("p", functools.partial(jobs.add, a=1))),
        TaskDefinitionError, ("has no __module__/__name__", "module-level function")),
    "unpicklable-closure": Case(small_queue, unpicklable_closure_job, TaskDefinitionError,
                                ("inner cannot be pickled by value", "module level")),
    "timeout-zero": Case(small_queue, lambda p: submit(p, Job("t", jobs.noop, timeout=0)),
                         ConfigurationError, ("timeout of job 't'", "> 0")),
    "timeout-negative": Case(small_queue,
                             lambda p: submit(p, Job("t", jobs.noop, timeout=-5)),
                             ConfigurationError, ("timeout of job 't'",)),
    "max-attempts-zero": Case(small_queue,
                              lambda p: submit(p, Job("m", jobs.noop, max_attempts=0)),
                              ConfigurationError, ("max_attempts of job 'm'", ">= 1")),
    "max-attempts-negative": Case(small_queue,
                                  lambda p: submit(p, Job("m", jobs.noop, max_attempts=-1)),
                                  ConfigurationError, ("max_attempts of job 'm'",)),
    "retry-delay-negative": Case(small_queue,
                                 lambda p: submit(p, Job("r", jobs.noop, retry_delay=-1)),
                                 ConfigurationError, ("retry_delay of job 'r'", ">= 0")),
    # incremental runs
    "cache-mode-unknown": Case(small_queue, lambda p: cached_pipeline(p, "always"),
                               ConfigurationError, ("cache must be False, True or 'recompute'",
                                                    "'always'")),
    "cache-mode-a-number": Case(small_queue, lambda p: cached_pipeline(p, 1),
                                ConfigurationError, ("cache must be", "'recompute'")),
    "step-cache-not-a-bool": Case(small_queue,
                                  lambda p: submit(p, Job("c", jobs.noop, cache="no")),
                                  ConfigurationError, ("cache of job 'c'", "True or False")),
    "cache-version-a-list": Case(
        small_queue, lambda p: submit(p, Job("v", jobs.noop, cache_version=[2])),
        ConfigurationError, ("cache_version of job 'v'", "string or an integer")),
    "clear-cache-negative-age": Case(small_queue, lambda p: JobQueue(p).clear_cache(-1),
                                     ConfigurationError, ("older_than", "seconds")),
    "cache-entries-limit-negative": Case(small_queue,
                                         lambda p: JobQueue(p).cache_entries(limit=-1),
                                         ConfigurationError, ("limit",)),
    "rerun-cache-mode-unknown": Case(with_workflow, rerun_with_unknown_mode, ConfigurationError,
                                     ("cache must be False, True or 'recompute'",)),
    # queries
    "list-unknown-status": Case(small_queue, lambda p: JobQueue(p).list_jobs(status="bogus"),
                                ConfigurationError, ("'bogus'", "pending")),
    "list-limit-minus-1": Case(small_queue, lambda p: JobQueue(p).list_jobs(limit=-1),
                               ConfigurationError, ("limit",)),
    "list-limit-minus-100": Case(small_queue, lambda p: JobQueue(p).list_jobs(limit=-100),
                                 ConfigurationError, ("limit",)),
    # worker options (checked before the file is touched)
    "concurrency-zero": Case(new_file, lambda p: Worker(p, concurrency=0),
                             ConfigurationError, ("concurrency", ">= 1"), keeps="nothing"),
    "lease-timeout-zero": Case(new_file, lambda p: Worker(p, lease_timeout=0),
                               ConfigurationError, ("lease_timeout", "> 0"), keeps="nothing"),
    "grace-period-negative": Case(new_file, lambda p: Worker(p, grace_period=-1),
                                  ConfigurationError, ("grace_period", ">= 0"), keeps="nothing"),
    "polling-interval-zero": Case(new_file, lambda p: Worker(p, polling_interval=0),
                                  ConfigurationError, ("polling_interval", "> 0"),
                                  keeps="nothing"),
    "polling-interval-minus-1": Case(new_file, lambda p: Worker(p, polling_interval=-1),
                                     ConfigurationError, ("polling_interval", "> 0"),
                                     keeps="nothing"),
    "polling-interval-minus-half": Case(new_file, lambda p: Worker(p, polling_interval=-0.5),
                                        ConfigurationError, ("polling_interval", "> 0"),
                                        keeps="nothing"),
    "allowed-modules-string": Case(new_file,
                                   lambda p: Worker(p, allowed_modules="support.jobs"),
                                   ConfigurationError, ("list of module names",),
                                   keeps="nothing"),
    "synchronous-unknown": pytest.param(
        Case(new_file, lambda p: JobQueue(p, synchronous="SOMETIMES"),
             ConfigurationError, ("synchronous", "NORMAL", "FULL"), keeps="nothing")),
    # files that cannot be queues
    "not-a-database": Case(not_a_database, JobQueue, DatabaseError,
                           ("{path}", "not a SQLite database", "new path")),
    "not-a-database-worker": Case(not_a_database, Worker, DatabaseError,
                                  ("{path}", "not a SQLite database")),
    "foreign-database": Case(foreign_database, JobQueue, DatabaseError,
                             ("{path}", "customers")),
    "newer-version": Case(newer_version, JobQueue, SchemaVersionError,
                          ("{path}", "newer gigq_flow", "schema 99", "upgrade gigq_flow")),
    "newer-version-worker": Case(newer_version, Worker, SchemaVersionError,
                                 ("{path}", "newer gigq_flow")),
    "newer-version-rollback-journal": Case(newer_rollback_journal_database, JobQueue,
                                           DatabaseError, ()),
    "read-only-file": Case(immutable_queue,
                           lambda p: submit(p, Job("j", jobs.noop)), DatabaseError,
                           ("read-only", "write access")),
    "missing-directory": Case(missing_directory, JobQueue, DatabaseError,
                              ("{parent}", "does not exist", "create it first"),
                              keeps="nothing"),
    "missing-directory-worker": Case(missing_directory, Worker, DatabaseError,
                                     ("{parent}", "does not exist"), keeps="nothing"),
    "directory-not-file": Case(lambda tmp: tmp, JobQueue, DatabaseError,
                               ("is a directory",), keeps="nothing"),
    "in-memory": Case(lambda tmp: Path(":memory:"), JobQueue, DatabaseError,
                      ("in-memory", "file path"), keeps="nothing"),
    "gigq-v0-malformed-dependencies": Case(gigq_v0_with_malformed_dependencies, JobQueue,
                                           DatabaseError,
                                           ("child-1", "malformed dependencies", "fix the row")),
    # a file gigq 0.5.1 wrote: the migration is rolled back as a whole
    "gigq-dependencies-not-json": Case(gigq_file_with_dependencies("[not json"), JobQueue,
                                       DatabaseError, ("{job}", "{path}")),
    "gigq-dependencies-not-ids": Case(gigq_file_with_dependencies("[1, 2]"), JobQueue,
                                      DatabaseError, ("{job}", "{path}")),
    "gigq-dependencies-a-number": Case(gigq_file_with_dependencies("42"), JobQueue,
                                       DatabaseError, ("{job}", "{path}")),
    "gigq-dependencies-a-string": Case(gigq_file_with_dependencies('"abc"'), JobQueue,
                                       DatabaseError, ("{job}",)),
    "gigq-dependencies-an-object": Case(gigq_file_with_dependencies('{"a": 1}'), JobQueue,
                                        DatabaseError, ("{job}",)),
    # rows and payloads only a worker sees
    "malformed-params-row": pytest.param(
        Case(foreign(params="{not json"), run_one_job(), SerializationError,
             ("params",), keeps="rows", at_run=True)),
    "unknown-function": Case(foreign(function_name="no_such_function"), run_one_job(),
                             ImportError, ("module 'support.jobs' has no function "
                                           "'no_such_function'",), keeps="rows", at_run=True),
    "unknown-module": Case(foreign(function_module="no_such_module_xyz"), run_one_job(),
                           ModuleNotFoundError, ("no_such_module_xyz",), keeps="rows",
                           at_run=True),
    "outside-allow-list": Case(foreign(), run_one_job(allowed_modules=["gigq_flow"]),
                               NotAllowedError, ("support.jobs.add is outside",
                                                 "allowed_modules"),
                               keeps="rows", at_run=True),
    "pickle-refused": Case(foreign(params=PICKLED, serializer="pickle"), run_one_job(),
                           NotAllowedError, ("pickled", "allow_pickle=True"), keeps="rows",
                           at_run=True),
    # the command line
    "cli-negative-limit": Case(small_queue, cli("list", "--limit", "-1"), CLIUsageError,
                               ("--limit", ">= 0")),
    "cli-limit-not-a-number": Case(small_queue, cli("list", "--limit", "many"), CLIUsageError,
                                   ("--limit", "'many'")),
    "cli-zero-timeout": Case(small_queue, cli("submit", "support.jobs.noop", "--timeout", "0"),
                             CLIUsageError, ("--timeout",)),
    "cli-zero-concurrency": Case(small_queue, cli("worker", "--concurrency", "0"),
                                 CLIUsageError, ("--concurrency", ">= 1")),
    "cli-unknown-command": Case(small_queue, cli("explode"), CLIUsageError,
                                ("invalid choice: 'explode'",)),
    "cli-unimportable-function": Case(small_queue, cli("submit", "no_such_module_xyz.f"),
                                      CLIUsageError, ("cannot import", "PYTHONPATH")),
    "cli-not-a-database": Case(not_a_database, cli("list"), CLIUsageError,
                               ("not a SQLite database",)),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input(tmp_path, case: Case):
    prepared = case.prepare(tmp_path)
    path, job_id = prepared if isinstance(prepared, tuple) else (prepared, None)
    existed = path.exists()
    before_bytes = path.read_bytes() if path.is_file() else None
    before_digest = digest(path) if path.is_file() else None
    before_rows = all_rows(path) if case.keeps == "rows" else None
    try:
        if case.at_run:
            case.act(path)
            failed = JobQueue(path).store.get_job(job_id)
            assert failed["status"] == "failed"
            assert failed["attempts"] == 1  # refused once, not retried
            message = failed["error"]
            assert message.startswith("cannot start job: ")
            assert f"{case.error.__name__}: " in message
        else:
            with pytest.raises(case.error) as raised:
                case.act(path)
            message = str(raised.value)
            if issubclass(case.error, GigqFlowError):
                assert type(raised.value).__module__ == "gigq_flow.errors"
            if issubclass(case.error, (ConfigurationError, WorkflowError)):
                assert isinstance(raised.value, ValueError)  # what GigQ raised for them
        for phrase in case.says:
            phrase = (phrase.replace("{path}", str(path)).replace("{parent}", str(path.parent))
                      .replace("{job}", str(job_id)))
            assert phrase in message, message
    finally:
        if case.prepare is immutable_queue:
            subprocess.run(["chattr", "-i", str(path)], check=True)

    if case.keeps == "nothing":
        assert path.exists() == existed
        assert not (tmp_path / "no").exists()
        if path.is_file():
            assert path.read_bytes() == before_bytes
    elif case.keeps == "bytes":
        assert digest(path) == before_digest
    else:  # rows: only the failed job, its execution and the worker registry changed
        after = all_rows(path)
        for table in before_rows:
            if table not in ("jobs", "ended_attempts", "workers"):
                assert after[table] == before_rows[table], table
        assert [r for r in after["jobs"] if job_id not in r] == \
            [r for r in before_rows["jobs"] if job_id not in r]
        assert [r for r in after["ended_attempts"] if job_id not in r] == \
            [r for r in before_rows["ended_attempts"] if job_id not in r]


def test_the_table_is_large_enough():
    assert len(CASES) >= 20
    # every documented error type of the queue's input checks appears at least once
    errors = {c.values[0].error if hasattr(c, "values") else c.error for c in CASES.values()}
    assert {CycleError, SelfDependencyError, UnknownDependencyError, DuplicateJobError,
            ConfigurationError, SerializationError, TaskDefinitionError, DatabaseError,
            SchemaVersionError, NotAllowedError} <= errors


# -- mistakes that need no queue -----------------------------------------------------------------
@pytest.mark.parametrize("params", [[1, 2], "a=1", (("a", 1),)])
def test_params_that_are_not_a_dict(params):
    with pytest.raises(GigqFlowError, match="params") as info:
        Job("j", jobs.add, params=params)
    assert isinstance(info.value, (ValueError, TypeError))


# -- the readers must survive a malformed row, too ---------------------------------------------
@pytest.mark.parametrize("column", ["params", "result"])
def test_malformed_row_does_not_break_the_readers(tmp_path, column):
    path, job_id = with_foreign_job(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE jobs SET {column} = '{{not json' WHERE id = ?", (job_id,))
    conn.commit()
    conn.close()
    queue = JobQueue(path)
    try:
        status = queue.get_status(job_id)
    except GigqFlowError as exc:  # a documented error naming the row is fine too
        assert job_id in str(exc) and column in str(exc)
    else:
        assert status["exists"]
    assert len(queue.list_jobs()) == 3  # the other jobs are still listed
    out = run_cli("--db", path, "list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


# -- a GigQ file whose dependencies are well formed opens --------------------------------------
def test_gigq_file_opens_when_dependencies_are_well_formed(tmp_path):
    """The control case of the gigq-dependencies-* cases of the table."""
    path = tmp_path / "gigq.db"
    parent, child = make_gigq_file(path)
    queue = JobQueue(path)
    assert queue.get_status(child)["dependencies"] == [parent]
    worker = Worker(path)
    try:
        assert worker.process_one() and worker.process_one() and not worker.process_one()
    finally:
        worker.close()
    assert queue.stats()["completed"] == 2
