"""The storage contract every backend implements, and the typed rows it exchanges.

``JobQueue`` and ``Worker`` speak only to a :class:`Store`; a backend owns its SQL,
its schema and migrations, its connections and its wake-up mechanism. Values cross
this boundary already encoded (``str`` for JSON, ``bytes`` for pickle): the store
never decodes params or results.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

Row = dict[str, Any]

INSTANCE_DIGITS = 16
"""Hex digits of a worker instance, the key of its lease and the prefix of its attempts'
ids: 64 random bits, short because a claim writes one into the job's row."""


def new_instance() -> str:
    """A fresh worker instance id."""
    return uuid.uuid4().hex[:INSTANCE_DIGITS]


@dataclass(slots=True)
class NewJob:
    """A job ready to be inserted: encoded payload and deduplicated dependency ids
    (slots: a submission holds one per job until its transaction commits)."""

    id: str
    name: str
    function_module: str
    function_name: str
    params: str | bytes
    priority: int
    dependencies: tuple[str, ...]
    max_attempts: int
    timeout: float
    description: str
    created_at: str
    pass_parent_results: bool | None
    retry_delay: float
    serializer: str
    cache: str | None = None
    cache_version: str | None = None
    code_digest: str | None = None  # a function shipped by value: the digest of its code
    code: bytes | None = None  # that code, when this submission stores it
    map_param: str | None = None  # a map (Workflow.map): the parameter its items receive
    map_limit: int | None = None  # a map's max_active: a limit on its items
    tags: tuple[str, ...] = ()


def map_tag(map_id: str) -> str:
    """The tag a map's ``max_active`` limits, carried by its items."""
    return f"map:{map_id}"


class ClaimedJob(NamedTuple):
    """One attempt at a job, as a worker sees it. ``execution_id`` fences its writes.

    A named tuple: one is built per job on the worker's hot path."""

    id: str
    name: str
    function_module: str
    function_name: str
    params: str | bytes
    attempts: int
    max_attempts: int
    retry_delay: float
    pass_parent_results: bool | None
    has_dependencies: bool
    serializer: str
    timeout: float
    cache: str | None  # how the job's run uses the cache (see CacheMode), None: off
    cache_version: str | None
    code_digest: str | None  # set when the function is shipped by value (see step_code)
    map_param: str | None  # set on a map: the parameter its items receive
    map_size: int | None  # a map's item count once expanded (None: to expand)
    has_children: bool  # when claimed (a submit may add one later)
    row_key: Any  # where the backend finds the job's row fastest (SQLite: its rowid)
    execution_id: str
    worker_id: str


@dataclass(frozen=True)
class ParentResult:
    """A parent's encoded result, for building ``parent_results``, and its digest when a
    cached run stored it (``result`` may then be left out: see ``parent_results``)."""

    id: str
    name: str | None
    result: str | bytes | None
    serializer: str | None
    digest: str | None = None


@dataclass(frozen=True)
class CacheKey:
    """A step's cache key and the digests it is made of, computed by the worker. A step
    is its function and its task name: two steps of one function under different names
    keep results apart."""

    key: str
    step: str  # module.function
    name: str  # the job's task name
    code: str
    params: str
    parents: str
    settings: str  # serializer and cache_version


@dataclass(frozen=True)
class CacheLookup:
    """What the cache holds for a key: the entry (``result_digest``, the job and run that
    made it) on a hit; else how much of the key an earlier entry of the step (its
    function and task name) shares: 0 none, 1 the step, 2 its code, 3 and params,
    4 and parents (the settings differ)."""

    result_digest: str | None
    job_id: str | None
    workflow_id: str | None
    shared: int


@dataclass(frozen=True)
class WorkflowRecord:
    id: str
    name: str
    created_at: str


REUSED = "reused"
"""The ``cache`` of a claim whose job the claim's transaction completed from the cache:
there is nothing to run."""

class CacheProbe(Protocol):
    """The worker's side of a claim that may reuse results, called inside the claim's
    transaction for a job of a cached run (and for the jobs its reuse makes ready: the
    claim cascades down the reusable part of the DAG). None of these may raise or touch
    the queue."""

    def key(self, claim: ClaimedJob, parents: Sequence[ParentResult]
            ) -> tuple[CacheKey, tuple[str, ...]] | None:
        """The job's key and the callables whose code could not be read; None when it
        cannot be had without waiting (its function is not loaded: the job then runs)."""

    def hit_note(self, found: CacheLookup, unknown: tuple[str, ...]) -> str:
        """What ``explain()`` says of a reused job."""

    def missed(self, claim: ClaimedJob, key: CacheKey, unknown: tuple[str, ...],
               found: CacheLookup) -> None:
        """The claimed job runs: what the lookup found, for its plan."""

    def next_attempt(self) -> str:
        """An attempt id (as ``claim``'s ``execution_id``) for a job the cascade reuses."""


class Store(Protocol):
    """Everything the queue and the workers need from a database."""

    location: str

    # -- writes (each one transaction) -------------------------------------------------
    def submit(self, jobs: Sequence[NewJob], workflow: WorkflowRecord | None = None) -> None:
        """Insert jobs, their edges and the workflow record atomically.

        Raises UnknownDependencyError when a dependency is neither among ``jobs``
        nor already stored. A job whose parent already ended failed, timed out or
        was cancelled is stored as upstream_failed.
        """

    def claim(self, worker_id: str, execution_id: str,
              probe: CacheProbe | None = None) -> ClaimedJob | None:
        """Mark the best ready job running for ``worker_id`` as attempt ``execution_id``
        (``f"{instance}-{n}"``: the registered worker instance, then its own counter).
        With ``probe``, a job of a cached run whose key has an entry is completed from it
        in the same transaction, and so are the jobs of cached runs that this makes ready
        and whose keys have entries (at most REUSE_CASCADE_LIMIT); the claim then comes
        back with ``cache == REUSED``."""

    def complete(self, claim: ClaimedJob, result: str | bytes | None) -> bool:
        """Store the result and release the children; False when the claim went stale."""

    def complete_and_claim(self, done: Sequence[tuple[ClaimedJob, str | bytes | None]],
                           worker_id: str, execution_ids: Sequence[str],
                           probe: CacheProbe | None = None, *, leading: bool = False
                           ) -> tuple[list[bool], list[ClaimedJob]]:
        """``complete`` each of ``done`` (a claim and its result), then ``claim`` as
        ``worker_id`` up to one job per id of ``execution_ids``, in one transaction:
        whether each completion was recorded, and the jobs claimed (fewer when fewer
        were ready). Idle threads of this process wake when it claimed none, or every
        job it asked for (more may be ready) unless ``leading``: the caller claims for
        its worker's other threads, which wait for it."""
        ...

    def unclaim(self, claims: Sequence[ClaimedJob]) -> int:
        """Return claimed jobs whose steps never started to pending, their claim not
        counted as an attempt; returns how many were still held by their claim."""
        ...

    def fail(self, claim: ClaimedJob, error: str, *, retry: bool,
             traceback: str | None = None) -> bool:
        """Record a failed attempt (its one-line ``error`` and full ``traceback``): back to
        pending after ``retry_delay``, or failed for good (descendants become
        upstream_failed). False when the claim went stale."""

    def append_output(self, claim: ClaimedJob, text: str) -> None:
        """Add ``text`` to what the attempt ``claim`` printed and logged so far."""

    def time_out(self, claim: ClaimedJob) -> bool:
        """End an attempt past its timeout (its worker calls this): requeue the job while
        attempts remain, else end it timeout. False when the attempt had already ended."""

    def reclaim_lost(self) -> int:
        """Requeue or fail the running jobs of workers whose heartbeat stopped for longer
        than their lease_timeout; returns how many."""

    def release(self, claims: Sequence[ClaimedJob]) -> int:
        """Return unfinished jobs of a stopping worker to the queue (attempt not counted)."""

    def register_worker(self, instance: str, worker_id: str, concurrency: int,
                        lease_timeout: float) -> None:
        """Record a worker process (host, pid, start, heartbeat) under a new ``instance``."""

    def heartbeat(self, instance: str) -> None:
        """Renew the lease of the worker ``instance`` (and so of all its running attempts)."""

    def unregister_worker(self, instance: str) -> None:
        """Mark a worker stopped."""

    def cancel(self, job_id: str, *, running: bool = False) -> bool:
        """Cancel a pending job (and a running one with ``running``: its attempt ends
        cancelled); its pending descendants become upstream_failed."""

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every pending and running job of a workflow; returns how many. Pending
        jobs of other workflows that depend on them become upstream_failed."""

    def requeue(self, job_id: str) -> bool:
        """Failed, timed-out or cancelled back to pending, with its upstream_failed
        descendants."""

    def clear_completed(self, before_timestamp: str | None = None) -> int:
        """Delete completed and cancelled jobs, and the cached results nothing references
        any more; returns how many jobs."""

    # -- reads ---------------------------------------------------------------------------
    def get_job(self, job_id: str) -> Row | None: ...

    def list_workers(self) -> list[Row]: ...

    def get_executions(self, job_id: str) -> list[Row]: ...

    def attempt_states(self, job_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        """Job id -> (the attempt its row holds, its status): a worker sees from them
        which of its attempts ended without it (cancelled, reclaimed)."""

    def expand_map(self, claim: ClaimedJob, item_params: Sequence[str | bytes]) -> bool:
        """Turn the claimed map into its items (one job per encoded params, named
        ``f"{name}[{i}]"``, the map's options) and send the map back to pending until they
        complete, in one transaction; False if the attempt no longer holds the map."""
        ...

    def set_limit(self, tag: str, max_running: int | None) -> None:
        """At most ``max_running`` jobs tagged ``tag`` run at once (None: no limit)."""
        ...

    def limits(self) -> dict[str, int]:
        """Every tag's limit, and the ``max_active`` of each map waiting for its items."""
        ...

    def running_by_tag(self) -> dict[str, int]:
        """How many running jobs carry each limited tag (tags with none running left out)."""
        ...

    def step_code(self, digest: str) -> bytes | None:
        """The code of a function shipped by value (see ``NewJob.code``), None if gone."""
        ...

    def attempt_output(self, job_id: str, attempt_id: str) -> str:
        """What an attempt printed and logged (empty when nothing, or unknown)."""

    def list_jobs(self, status: str | None, limit: int) -> list[Row]: ...

    def count_by_status(self) -> dict[str, int]: ...

    def existing_ids(self, job_ids: Iterable[str]) -> set[str]: ...

    def parent_results(self, job_id: str, *, results: bool = True) -> list[ParentResult]:
        """The parents in dependency order; with ``results=False`` a result is read only
        for a parent without a digest."""

    # -- incremental runs ----------------------------------------------------------------
    def find_cached(self, key: CacheKey) -> CacheLookup: ...

    def reuse(self, claim: ClaimedJob, key: CacheKey, note: str) -> bool:
        """Complete the job with the result of the entry ``key`` without running it (its
        ``cached_from`` names the job that made it); False when the entry is gone or the
        claim went stale."""

    def complete_cached(self, claim: ClaimedJob, result: str | bytes | None, digest: str,
                        key: CacheKey, note: str, *, refresh: bool) -> bool:
        """``complete`` for a job of a cached run: the result is stored once under
        ``digest`` and the entry ``key`` points at it (kept if one exists, replaced with
        ``refresh``). False when the claim went stale."""

    def cache_entries(self, limit: int) -> list[Row]:
        """The entries, most recently used first, with their result's size."""

    def clear_cache(self, before_timestamp: str | None = None) -> int:
        """Delete the entries last used before ``before_timestamp`` (all by default) and
        the results nothing references any more; returns how many entries."""

    def list_workflows(self) -> list[Row]:
        """Newest first: id, name, created_at and ``counts`` per status."""

    def get_workflow(self, workflow_id: str) -> Row | None: ...

    def workflow_jobs(self, workflow_id: str, updated_since: str | None = None) -> list[Row]:
        """The run-state columns of a workflow's jobs (with ``cache``, ``cache_note``,
        ``cached_from``, the map columns, ``tags`` and ``updated_at``), in submission
        order; with ``updated_since`` only those whose ``updated_at`` is not before it."""

    def workflow_outline(self, workflow_id: str, *, names: bool = True
                         ) -> list[tuple[Any, ...]]:
        """What a grouped picture of a large run reads of each job, in submission order:
        ``(id, name, function, status, cached, erred, mapped)`` tuples (``function`` is
        ``module.name``; ``cached``: it reused a result; ``erred``: it has an error;
        ``mapped``: a map or a map's item); ``names=False`` leaves out the id, name and
        function (for a reader that holds them)."""

    def workflow_jobs_by_id(self, workflow_id: str, job_ids: Iterable[str]) -> list[Row]:
        """``workflow_jobs``'s rows of the jobs of these ids (in no order)."""

    def workflow_definitions(self, workflow_id: str) -> list[Row]:
        """What it takes to submit a workflow's jobs again (``NewJob``'s fields, payloads
        encoded as at submit), in submission order."""

    def workflow_counts(self, workflow_id: str) -> dict[str, int]: ...

    def workflow_results(self, workflow_id: str) -> Iterator[tuple[str, str, Any, str | None]]:
        """(id, name, encoded result, serializer) of the completed jobs, as tuples, in
        submission order; read as they are used (a large run's are never all held)."""

    def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]: ...

    def workflow_executions(self, workflow_id: str) -> list[Row]:
        """Every attempt at a workflow's jobs, by start: id, job_id, name (the job's),
        worker_id, status, started_at, completed_at, error."""

    # -- copying a queue to another store --------------------------------------------------
    def count_rows(self) -> dict[str, int]:
        """Rows per table of the queue (workflows, jobs, job_dependencies, ended_attempts,
        workers)."""

    def export_rows(self) -> dict[str, list[Row]]:
        """Every row of those tables, read as one snapshot, parents before children and
        in insertion order; payloads encoded as at submit (``str`` JSON, ``bytes`` pickle)."""

    def import_rows(self, rows: Mapping[str, Sequence[Row]], *, replace: bool = False) -> None:
        """Insert rows from ``export_rows`` of any backend in one transaction; with
        ``replace`` the existing rows are deleted first, in the same transaction."""

    # -- wake-ups and lifecycle ----------------------------------------------------------
    def next_due(self) -> float | None:
        """Seconds until a delayed retry becomes ready or a running job times out."""

    def watch(self, this_process: bool = False) -> Any:
        """A token for ``wait_for_work``: changes committed after it wake the waiter. A
        token taken with ``this_process`` serves only waits with ``this_process`` (it
        may cost nothing to take)."""

    def wait_for_work(self, timeout: float, since: Any = None, *,
                      this_process: bool = False) -> None:
        """Block until work may have appeared since ``since`` (default: now) or a wake-up,
        at most ``timeout`` seconds; with ``this_process``, only a wake-up from this
        process ends the wait early."""

    def wake_all(self) -> None:
        """Wake every thread of this process blocked in ``wait_for_work``."""

    def close(self) -> None:
        """Close this thread's connection."""
