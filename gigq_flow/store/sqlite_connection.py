"""The SQLite transport: the file, per-thread connections, transactions and lock waits.

Connection policy: one connection per thread and file, opened on first use and kept
until :func:`close_thread_connections`. Connections run in autocommit mode; every
write is one ``BEGIN IMMEDIATE`` transaction. The threads of one process take turns on
a lock of the file's own (:func:`writer_lock`), so they queue rather than meet SQLite's
lock; waits on another process's lock happen at the transaction's start and are retried
here with short randomized sleeps: no "database is locked" reaches the caller. WAL
journal, ``synchronous=NORMAL`` by default: a power cut may roll back the last commits
but never corrupts the file; ``synchronous="FULL"`` makes each commit
durable on return, at the cost of an fsync per transaction.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import ConfigurationError, DatabaseError

logger = logging.getLogger(__name__)

LOCK_RETRY_SECONDS = 60.0
# Sleeps between attempts at the write lock (first, longest), randomized by ±50%. A
# claim holds nothing yet and backs off far; any other write ends work in hand (a job
# done, a heartbeat), so it retries soon, or the job's completion would wait on a nap.
PATIENT_BACKOFF = (0.001, 0.02)
PROMPT_BACKOFF = (0.0001, 0.001)
SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
WAL_SIZE_LIMIT = 64 * 1024 * 1024
STREAM_ROWS = 1000
"""Rows a streamed read holds at once (a large run's results)."""
CACHE_KIB = 8 * 1024  # per connection: the hot pages of large queues (the OS caches the rest)
# SQLite's own checkpoint runs after every commit once the WAL holds 1,000 pages; while
# other processes keep using the WAL it cannot start the WAL over, and then every commit
# pays a checkpoint and its fsyncs. Each connection checkpoints instead after
# CHECKPOINT_COMMITS of its own commits (about 1,000 pages of a worker's), or sooner
# once its commits changed CHECKPOINT_ROWS rows (a bulk submit; a worker thread's batch
# changes a few hundred rows a commit, most of them on the same pages).
CHECKPOINT_COMMITS = 512
CHECKPOINT_ROWS = 16384
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # result codes (the sqlite3 module names them from 3.11)
NETWORK_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb", "smbfs", "smb3", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs",
     "lustre", "davfs", "fuse.s3fs", "fuse.gcsfuse"}
)

T = TypeVar("T")
_jitter = random.Random()  # not the random module's: users may seed that one
_local = threading.local()
_writer_locks: dict[str, threading.RLock] = {}
_writer_locks_guard = threading.Lock()


def writer_lock(path: str) -> threading.RLock:
    """The lock this process's writers of the file ``path`` take turns on.

    SQLite lets one connection write at a time; threads that meet its lock sleep and try
    again, and a woken sleeper often finds the lock taken anew. Queued on a lock of
    their own, a process's threads write one after the other with no sleep between.
    """
    lock = _writer_locks.get(path)
    if lock is None:
        with _writer_locks_guard:
            lock = _writer_locks.setdefault(path, threading.RLock())
    return lock


def close_thread_connections(path: str | None = None) -> None:
    """Close this thread's connections (to one file, or to all)."""
    connections: dict[str, sqlite3.Connection] = getattr(_local, "connections", {})
    for key in [path] if path else list(connections):
        conn = connections.pop(key, None)
        if conn is not None:
            conn.close()


def is_locked(exc: sqlite3.Error) -> bool:
    """The error says another connection holds a lock (SQLITE_BUSY or SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # Python 3.10's errors carry no result code
        return "locked" in str(exc)
    return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def filesystem_type(path: str) -> str | None:
    """The type of the filesystem holding ``path``, from /proc/mounts (Linux only)."""
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            entries = [line.split()[1:3] for line in mounts if len(line.split()) > 2]
    except OSError:
        return None
    best: tuple[str, str | None] = ("", None)
    for mount_point, fs_type in entries:
        mount_point = mount_point.replace("\\040", " ")
        if (path == mount_point or path.startswith(mount_point.rstrip("/") + "/")) \
                and len(mount_point) > len(best[0]):
            best = (mount_point, fs_type)
    return best[1]


class QueueConnection(sqlite3.Connection):
    """A connection that checkpoints after enough of its own commits or changed rows.

    ``hot`` is one cursor kept for the statements of every job (``Connection.execute``
    makes a cursor per statement, a twentieth of a job's cost): a statement run on it must
    be done, its row read or none returned, before another one runs on it.
    """

    commits = 0
    changes_at_checkpoint = 0
    idle = False  # its last claim found nothing

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hot = self.cursor()

    def committed(self) -> None:
        self.commits += 1
        if self.commits < CHECKPOINT_COMMITS \
                and self.total_changes - self.changes_at_checkpoint < CHECKPOINT_ROWS:
            return
        self.commits, self.changes_at_checkpoint = 0, self.total_changes
        try:  # PASSIVE: copies what no reader needs, waits for nobody
            self.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            logger.debug("checkpoint skipped: %s", exc)


class SQLiteConnections:
    """Owns the file at ``path``: checks it, creates it private, hands out connections."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "NORMAL") -> None:
        raw = os.fspath(path)
        if raw in ("", ":memory:"):
            raise DatabaseError(
                "an in-memory database cannot be shared by workers; pass a file path"
            )
        if str(synchronous).upper() not in SYNCHRONOUS_MODES:
            raise ConfigurationError(
                f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, got {synchronous!r}"
            )
        self.path = os.path.abspath(raw)
        self.synchronous = synchronous.upper()
        self.writing = writer_lock(self.path)
        self._check_path()
        self._create_private_file()
        self._warn_if_network_filesystem()

    def _check_path(self) -> None:
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise DatabaseError(
                f"cannot open {self.path}: directory {parent} does not exist; create it first"
            )
        if os.path.isdir(self.path):
            raise DatabaseError(f"{self.path} is a directory; pass a file path for the queue")

    def _create_private_file(self) -> None:
        """New files are readable by their owner only: the queue is the power to run code."""
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise DatabaseError(f"cannot create {self.path}: {exc.strerror}") from exc

    def _warn_if_network_filesystem(self) -> None:
        fs_type = filesystem_type(self.path)
        if fs_type in NETWORK_FILESYSTEMS:
            message = (
                f"{self.path} is on a network filesystem ({fs_type}): SQLite's locking is not "
                "safe there and the queue can be corrupted; keep the file on a local disk, or "
                "use the PostgreSQL backend for workers on several hosts"
            )
            logger.warning(message)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    # -- connections --------------------------------------------------------------------------
    def connection(self) -> QueueConnection:
        """This thread's connection to the file, opened on first use."""
        connections = getattr(_local, "connections", None)
        if connections is None:
            connections = _local.connections = {}
        conn = connections.get(self.path)
        if conn is None:
            conn = connections[self.path] = self._connect()
        return conn

    def _connect(self) -> QueueConnection:
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None,
                                   check_same_thread=False, factory=QueueConnection)
            # The first statements read the file, and meet the lock of a process that
            # opens or closes it (SQLITE_BUSY) like any other statement.
            self.retry_locked(self._configure, conn)
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc
        return conn

    def _configure(self, conn: QueueConnection) -> None:
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute("PRAGMA wal_autocheckpoint = 0")

    def use_wal(self) -> None:
        """Switch the file to the WAL journal (persistent; call once the file is accepted)."""
        conn = self.connection()
        try:
            mode = self.retry_locked(
                lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            )
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc
        if mode != "wal":
            logger.warning("%s: WAL journal unavailable (got %s)", self.path, mode)

    def close(self) -> None:
        close_thread_connections(self.path)

    # -- errors and lock waits ----------------------------------------------------------------
    def wrap(self, exc: sqlite3.Error) -> DatabaseError:
        """A DatabaseError naming the file, the cause and, where known, the fix."""
        text = str(exc)
        if "not a database" in text:
            return DatabaseError(
                f"{self.path} is not a SQLite database ({text}); pass a queue file or a new path"
            )
        if "readonly" in text:
            return DatabaseError(
                f"{self.path} is read-only ({text}); give this user write access to the file "
                "and its directory"
            )
        return DatabaseError(f"{self.path}: {text}")

    def retry_locked(self, operation: Callable[..., T], *args: Any, patient: bool = False) -> T:
        """Run ``operation(*args)``, retrying while another connection holds the write
        lock (nothing is set up for the retries until the first attempt meets the lock)."""
        deadline = None
        delay, longest = PATIENT_BACKOFF if patient else PROMPT_BACKOFF
        while True:
            try:
                return operation(*args)
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
                deadline = deadline or time.monotonic() + LOCK_RETRY_SECONDS
                if time.monotonic() > deadline:
                    raise DatabaseError(
                        f"{self.path} stayed locked for {LOCK_RETRY_SECONDS:.0f}s; "
                        "is a process holding a long transaction on it?"
                    ) from exc
                time.sleep(delay * _jitter.uniform(0.5, 1.5))
                delay = min(delay * 2, longest)

    def hold_writer_lock(self) -> None:
        """Take this process's turn to write the file (released by the caller)."""
        if not self.writing.acquire(timeout=LOCK_RETRY_SECONDS):
            raise DatabaseError(
                f"{self.path}: another thread of this process held its write turn for "
                f"{LOCK_RETRY_SECONDS:.0f}s; is a thread holding a long transaction on it?"
            )

    def run(self, body: Callable[[QueueConnection], T], *, patient: bool = False) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction: committed on success,
        rolled back on error. ``patient``: back off far while the file is locked."""
        self.hold_writer_lock()
        try:
            return self._run(body, patient)
        finally:
            self.writing.release()

    def _run(self, body: Callable[[QueueConnection], T], patient: bool) -> T:
        conn = self.connection()
        try:
            self.retry_locked(conn.hot.execute, "BEGIN IMMEDIATE", patient=patient)
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc
        try:
            result = body(conn)
            conn.hot.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self.wrap(exc) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.committed()
        return result

    def write(self, sql: str, args: Any = ()) -> int:
        """Run one write statement (without RETURNING) as its own transaction; returns its
        row count."""
        conn = self.connection()
        self.hold_writer_lock()
        try:
            changed = self.retry_locked(conn.hot.execute, sql, args).rowcount
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc
        finally:
            self.writing.release()
        conn.committed()
        return changed

    def read(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        """Rows of one read statement as dicts (WAL: readers do not wait for writers)."""
        names, rows = self._fetch(sql, args)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def read_tuples(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        """Rows of one read statement as tuples."""
        return self._fetch(sql, args)[1]

    def stream_tuples(self, sql: str, args: Any = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of one read statement as tuples, STREAM_ROWS at a time."""
        conn = self.connection()
        try:
            cursor = self.retry_locked(conn.execute, sql, args)
            while rows := cursor.fetchmany(STREAM_ROWS):
                yield from rows
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc

    def _fetch(self, sql: str, args: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        conn = self.connection()

        def fetch() -> tuple[list[str], list[tuple[Any, ...]]]:
            cursor = conn.execute(sql, args)
            return [column[0] for column in cursor.description or ()], cursor.fetchall()

        try:
            return self.retry_locked(fetch)
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc

    def data_version(self) -> int:
        """``PRAGMA data_version`` of this thread's connection: it moves when another
        connection commits."""
        conn = self.connection()
        try:
            return self.retry_locked(conn.execute, "PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise self.wrap(exc) from exc

    def checkpoint_if_large(self) -> None:
        """Fold the WAL back into the file once it passes WAL_SIZE_LIMIT (long readers
        can stop SQLite's automatic checkpoints from catching up)."""
        try:
            size = os.path.getsize(self.path + "-wal")
        except OSError:
            return
        if size > WAL_SIZE_LIMIT:
            busy = self.read("PRAGMA wal_checkpoint(TRUNCATE)")[0]["busy"]
            logger.info("%s: WAL at %d bytes, checkpoint %s", self.path, size,
                        "blocked by a reader" if busy else "done")
