"""Crash consistency and the file-level safeguards of the SQLite store.

- SIGKILL at any instant leaves a file that passes ``PRAGMA integrity_check`` and keeps
  every completion that was reported.
- ``synchronous``: NORMAL by default, FULL on request.
- The WAL is folded back once it passes its bound, even after a long reader held it.
- A file on a network filesystem warns loudly.
- Requeue restores exactly the jobs that no other failure still blocks.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings

import pytest
from support import jobs
from support.helpers import subprocess_env, wait_until

from gigq_flow import Job, JobQueue, Worker
from gigq_flow.store import sqlite_connection

pytestmark = pytest.mark.contract

# -- crash consistency -----------------------------------------------------------------------
CRASH_SCRIPT = """
import json, sys
from support import jobs
from gigq_flow import Job, JobQueue
from gigq_flow.codec import to_new_job
from gigq_flow.store import new_instance
queue = JobQueue(sys.argv[1])
store, tag, n = queue.store, sys.argv[2], 0
instance = new_instance()
store.register_worker(instance, tag, 1, 60)
while True:
    parent = Job(f"{tag}-{n}", jobs.add, params={"a": n, "b": 1})
    child = Job(f"{tag}-{n}c", jobs.add, params={"a": n, "b": 2}, dependencies=[parent.id])
    store.submit([to_new_job(parent), to_new_job(child)])
    print("submitted", parent.id, child.id, flush=True)
    for _ in range(2):
        claim = store.claim(tag, f"{instance}-{n}-{_}")
        if claim is not None and store.complete(claim, json.dumps(claim.name)):
            print("completed", claim.id, flush=True)
    n += 1
"""


def test_sigkill_at_any_instant_keeps_the_file_consistent(tmp_path):
    path = tmp_path / "crash.db"
    JobQueue(path).close()
    rng = random.Random(11)
    submitted, completed = set(), set()
    for round_ in range(12):
        out_path = tmp_path / f"crash{round_}.out"
        with open(out_path, "w") as out:
            proc = subprocess.Popen([sys.executable, "-c", CRASH_SCRIPT, str(path), f"r{round_}"],
                                    env=subprocess_env(), stdout=out,
                                    stderr=subprocess.STDOUT)
        try:
            wait_until(lambda out=out_path, p=proc: "completed" in out.read_text()
                       or p.poll() is not None, 60, what="the writer runs")
            time.sleep(rng.uniform(0, 0.15))  # land anywhere in its stream of transactions
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for line in out_path.read_text().splitlines():
            kind, *ids = line.split()
            assert kind in ("submitted", "completed"), out_path.read_text()
            (submitted if kind == "submitted" else completed).update(ids)

        conn = sqlite3.connect(path, timeout=60)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            status = dict(conn.execute("SELECT id, status FROM jobs"))
            # Every reported submission and completion survived the kill.
            assert submitted <= set(status)
            assert all(status[job_id] == "completed" for job_id in completed)
            # Whatever was committed is whole: a completed job has its result and holds
            # its completed attempt, and its children were released.
            broken = conn.execute(
                """SELECT j.id FROM jobs j WHERE j.status = 'completed' AND (j.result IS NULL
                     OR NOT EXISTS (SELECT 1 FROM job_executions e WHERE e.id = j.execution_id
                                    AND e.status = 'completed'))""").fetchall()
            assert broken == []
            wrong_counts = conn.execute(
                """SELECT c.id FROM jobs c WHERE c.status = 'pending' AND c.pending_deps !=
                     (SELECT COUNT(*) FROM job_dependencies d JOIN jobs p ON p.id = d.depends_on
                      WHERE d.job_id = c.id AND p.status != 'completed')""").fetchall()
            assert wrong_counts == []
        finally:
            conn.close()
    assert len(completed) >= 12
    print(f"\nFIGURE crash consistency: 12 SIGKILLs, {len(submitted)} jobs submitted, "
          f"{len(completed)} completions reported, all kept; integrity_check ok")


# -- opening the file while other processes open and close it ---------------------------
OPEN_AND_READ = """
import sys
from gigq_flow import JobQueue
queue = JobQueue(sys.argv[1])
for _ in range(int(sys.argv[2])):
    queue.store.watch()  # PRAGMA data_version, as a worker's loop reads it
    queue.stats()
    queue.close()  # the next round opens a new connection; the last one out folds the WAL
print("ok")
"""


def test_processes_opening_and_closing_the_file_never_see_it_locked(tmp_path):
    """A connection's first statements, and ``data_version``, meet the lock that a process
    opening or closing the file takes (SQLITE_BUSY): they wait like any other statement."""
    path = tmp_path / "q.db"
    JobQueue(path).submit(Job("j", jobs.noop))
    children = [subprocess.Popen([sys.executable, "-c", OPEN_AND_READ, str(path), "400"],
                                 env=subprocess_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for child in children:
        out, err = child.communicate(timeout=120)
        assert (child.returncode, out.strip()) == (0, "ok"), err[-2000:]


def test_waiting_for_the_lock_leaves_the_random_module_alone(tmp_path):
    """The jitter of lock waits has its own generator: a notebook that seeds ``random``
    gets the same numbers whether or not background workers met a locked file."""
    path = tmp_path / "q.db"
    JobQueue(path).submit(Job("j", jobs.noop))
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    worker = Worker(path)
    worker.store.db.connection()  # opened before the lock wait, not during it
    random.seed(7)
    expected = random.Random(7).random()
    release = threading.Timer(0.2, holder.execute, ("COMMIT",))
    release.start()
    began = time.monotonic()
    try:
        assert worker.process_one()
    finally:
        release.join()
        worker.close()
        holder.close()
    assert time.monotonic() - began >= 0.15  # the claim did wait for the lock
    assert random.random() == expected


# -- synchronous ---------------------------------------------------------------------------
@pytest.mark.sqlite_only(reason="SQLite's PRAGMA synchronous")
@pytest.mark.parametrize("mode, level", [(None, 1), ("NORMAL", 1), ("FULL", 2), ("full", 2)])
def test_synchronous_setting(db_path, mode, level):
    queue = JobQueue(db_path) if mode is None else JobQueue(db_path, synchronous=mode)
    try:
        conn = queue.store.db.connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        queue.close()


# -- WAL bound -------------------------------------------------------------------------------
@pytest.mark.sqlite_only(reason="SQLite's WAL file")
def test_wal_is_folded_back_after_a_long_reader(db_path, monkeypatch):
    limit = 256 * 1024
    monkeypatch.setattr(sqlite_connection, "WAL_SIZE_LIMIT", limit)
    queue = JobQueue(db_path)
    wal = str(db_path) + "-wal"
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM jobs").fetchone()  # holds its snapshot
    try:
        while os.path.getsize(wal) <= 4 * limit:
            queue.store.submit([big_job(i) for i in range(50)])
        worker = Worker(db_path, worker_id="beat")
        worker.store.heartbeat(worker.instance)  # a checkpoint blocked by the reader ...
        assert os.path.getsize(wal) > 4 * limit  # ... cannot shrink the WAL
    finally:
        reader.execute("COMMIT")
        reader.close()
    grown = os.path.getsize(wal)
    worker.store.heartbeat(worker.instance)  # the heartbeat checkpoints once the reader left
    assert os.path.getsize(wal) <= limit
    print(f"\nFIGURE WAL bound: grew to {grown // 1024} KiB behind a reader, "
          f"{os.path.getsize(wal) // 1024} KiB after the next heartbeat "
          f"(limit {limit // 1024} KiB)")
    queue.close()


@pytest.mark.sqlite_only(reason="SQLite's WAL snapshots")
def test_a_worker_holds_no_snapshot_between_jobs(db_path):
    """The claim and the completion run on a reused cursor; neither may leave a statement
    open, which would pin the connection to a read snapshot: it would stop seeing other
    processes' commits (and the WAL could never start over)."""
    queue = JobQueue(db_path)
    first = queue.submit(Job("one", jobs.noop))
    worker = Worker(db_path)
    conn = worker.store.db.connection()  # this thread's, as process_one's is
    other = sqlite3.connect(db_path, isolation_level=None)
    marks = itertools.count()

    def sees_other_commits() -> bool:
        mark = f"mark-{next(marks)}"
        other.execute("UPDATE jobs SET description = ? WHERE id = ?", (mark, first))
        return conn.execute("SELECT description FROM jobs WHERE id = ?",
                            (first,)).fetchone()[0] == mark

    try:
        assert worker.process_one()
        assert sees_other_commits()
        assert not worker.process_one()  # a claim that finds nothing
        assert sees_other_commits()
        queue.submit(Job("two", jobs.noop))
        assert worker.process_one()
        assert sees_other_commits()
        # The check can fail: a row left unread on the reused cursor pins a snapshot.
        conn.hot.execute("SELECT id FROM jobs").fetchone()
        assert not sees_other_commits()
    finally:
        other.close()
        worker.close()
        queue.close()


def big_job(i: int):
    from gigq_flow.codec import to_new_job

    return to_new_job(Job(f"big{i}", jobs.identity, params={"value": "x" * 2000}))


# -- network filesystems ------------------------------------------------------------------------
@pytest.mark.sqlite_only(reason="a SQLite file on a network filesystem")
def test_network_filesystem_warns(db_path, monkeypatch, caplog):
    monkeypatch.setattr(sqlite_connection, "filesystem_type", lambda path: "nfs4")
    with pytest.warns(RuntimeWarning, match="network filesystem") as record:
        JobQueue(db_path).close()
    message = str(record[0].message)
    assert "nfs4" in message and str(db_path) in message
    assert "PostgreSQL" in message  # names the way out
    assert any("network filesystem" in r.getMessage() for r in caplog.records)


@pytest.mark.sqlite_only(reason="a SQLite file on a local disk")
def test_local_disk_does_not_warn(db_path):
    assert sqlite_connection.filesystem_type(str(db_path)) not in \
        sqlite_connection.NETWORK_FILESYSTEMS
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        JobQueue(db_path).close()


# -- requeue and failure propagation ---------------------------------------------------------
def fail_now(queue: JobQueue, db_path, job_id: str) -> None:
    """Run the one ready job (it raises on its only attempt)."""
    worker = Worker(db_path)
    try:
        assert worker.process_one()
    finally:
        worker.close()
    assert queue.get_status(job_id)["status"] == "failed"


def test_requeue_keeps_descendants_blocked_by_another_failed_ancestor(queue, db_path):
    """x -> r <- p <- y: with y failed, requeueing x must leave r upstream_failed."""
    x, y = Job("x", jobs.noop), Job("y", jobs.noop)
    p = Job("p", jobs.noop, dependencies=[y.id])
    r = Job("r", jobs.noop, dependencies=[x.id, p.id])
    for job in (x, y, p, r):
        queue.submit(job)
    assert queue.cancel(y.id) and queue.cancel(x.id)
    assert [queue.get_status(j.id)["status"] for j in (p, r)] == ["upstream_failed"] * 2
    assert queue.requeue_job(x.id)
    assert queue.get_status(x.id)["status"] == "pending"
    assert queue.get_status(r.id)["status"] == "upstream_failed"  # y still blocks it
    assert queue.requeue_job(y.id)
    assert [queue.get_status(j.id)["status"] for j in (x, y, p, r)] == ["pending"] * 4


def test_requeue_of_a_job_whose_parent_failed_meanwhile(queue, db_path, tmp_path):
    parent = Job("parent", jobs.hold, max_attempts=1,
                 params={"started": str(tmp_path / "s"), "release": str(tmp_path / "r")})
    child = Job("child", jobs.noop, dependencies=[parent.id])
    grandchild = Job("grandchild", jobs.noop, dependencies=[child.id])
    for job in (parent, child, grandchild):
        queue.submit(job)
    assert queue.cancel(child.id)  # grandchild: upstream_failed
    os.environ[jobs.FAIL_ENV] = "1"
    try:
        (tmp_path / "r").touch()
        fail_now(queue, db_path, parent.id)
    finally:
        del os.environ[jobs.FAIL_ENV]
    assert queue.requeue_job(child.id)
    # Its parent ended failed: it can never run, so it must not wait as pending.
    assert queue.get_status(child.id)["status"] == "upstream_failed"
    assert queue.get_status(grandchild.id)["status"] == "upstream_failed"



def test_a_token_for_this_process_opens_no_connection(tmp_path):
    """A worker thread that defers to another waits for this process's wake-ups only: it
    takes its token without a connection (a whole token reads PRAGMA data_version)."""
    queue = JobQueue(tmp_path / "q.db")
    opened = {}

    def watch(this_process):
        queue.store.watch(this_process=this_process)
        opened[this_process] = bool(getattr(sqlite_connection._local, "connections", None))
        queue.store.close()  # this thread's connections

    for this_process in (True, False):
        thread = threading.Thread(target=watch, args=(this_process,))
        thread.start()
        thread.join()
    assert opened == {True: False, False: True}
    queue.close()


SUBMIT_MEETING = """
import sys
from gigq_flow import Job, JobQueue
from support import jobs
queue = JobQueue(sys.argv[1])
for i in range(4):
    queue.submit(Job(f"meet-{i}", jobs.meet_at_barrier, params={"key": sys.argv[2],
                                                              "parties": 4}, max_attempts=1))
"""


def test_one_idle_thread_watches_the_file_and_wakes_the_others(tmp_path, monkeypatch):
    """While a worker has nothing to do, one of its threads reads PRAGMA data_version
    and the others wait for it; work that another process submits still starts on every
    thread (four steps that meet at a barrier)."""
    reads: dict[str, int] = {}
    data_version = sqlite_connection.SQLiteConnections.data_version

    def counted(self):
        name = threading.current_thread().name
        reads[name] = reads.get(name, 0) + 1
        return data_version(self)

    monkeypatch.setattr(sqlite_connection.SQLiteConnections, "data_version", counted)
    path = tmp_path / "q.db"
    queue = JobQueue(path)
    worker = Worker(queue, worker_id="quad", concurrency=4, polling_interval=5)
    worker.start_background()
    try:
        time.sleep(0.5)  # idle: 25 polls of the file a watching thread
        idle = sorted(reads.get(f"quad-{i}", 0) for i in range(4))
        assert idle[-1] >= 10, reads
        assert idle[-2] <= 3, reads  # the others do not poll
        key = f"barrier-{uuid.uuid4()}"
        done = subprocess.run([sys.executable, "-c", SUBMIT_MEETING, str(path), key],
                              env=subprocess_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: queue.stats()["completed"] + queue.stats()["failed"] == 4, 20)
        assert queue.stats()["completed"] == 4, [job["error"] for job in queue.list_jobs()]
        assert {job["worker_id"] for job in queue.list_jobs()} == {f"quad-{i}" for i in range(4)}
    finally:
        worker.stop(wait=True, timeout=10)
        queue.close()
