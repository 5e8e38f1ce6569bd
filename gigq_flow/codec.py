"""Jobs to stored rows and back: encoding a submitted ``Job``, decoding a stored row the
way GigQ returns it.

One rule decodes every stored payload. ``unpickle=False`` (the CLI's choice: looking at
a queue must never run code chosen by whoever wrote it) shows a pickled value as a
placeholder; a value that cannot be decoded (a row edited by hand) is kept as stored and
named in ``decode_errors``, so one bad row never hides the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import ConfigurationError, SelfDependencyError, SerializationError
from .job import CACHE_NEVER, Job
from .job_status import JobStatus
from .serialization import dumps_params, loads
from .shipping import Shipped, local_only, ship
from .store import NewJob, Row


class FunctionRef(NamedTuple):
    """How a submission stores a job's function: by module and name, and its code when
    it is shipped by value."""

    module: str
    name: str
    code: Shipped | None


def to_new_job(job: Job, cache: str | None = None,
               functions: dict[Callable | str, FunctionRef] | None = None) -> NewJob:
    """Check and encode a Job for the store, its run using the cache as ``cache`` says
    (a stored mode: see ``gigq_flow.job.cache_mode``); raises before anything is written.

    A function only this process can find is shipped by value (:mod:`.shipping`).
    ``functions`` is the memo of one submission: each function is looked at (and shipped)
    once, however many of its jobs the submission has."""
    if not isinstance(job, Job):
        raise ConfigurationError(f"expected a Job, got {type(job).__name__}")
    for dep in job.dependencies:
        if not isinstance(dep, str):
            raise ConfigurationError(
                f"dependencies of job {job.name!r} must be job ids (str), got {dep!r}"
            )
    if job.id in job.dependencies:
        raise SelfDependencyError(
            f"job {job.name!r} depends on itself; remove its own id from its dependencies"
        )
    function = job.function
    ref = None if functions is None else functions.get(function)
    if ref is None:
        code = None if isinstance(function, str) or not local_only(function) else ship(function)
        ref = FunctionRef(job.function_module, job.function_name, code)
        if functions is not None:
            functions[function] = ref
    module, name, code = ref
    return NewJob(
        id=job.id,
        name=job.name,
        function_module=module,
        function_name=name,
        params=dumps_params(job.params, job.serializer, job.name),
        priority=job.priority,
        dependencies=tuple(dict.fromkeys(job.dependencies)),
        max_attempts=job.max_attempts,
        timeout=job.timeout,
        description=job.description,
        created_at=job.created_at,
        pass_parent_results=job.pass_parent_results,
        retry_delay=job.retry_delay,
        serializer=job.serializer,
        cache=cache if job.cache else CACHE_NEVER,
        cache_version=job.cache_version,
        code_digest=None if code is None else code.digest,
        code=None if code is None else code.code,
        map_param=job.map_param,
        map_limit=job.map_limit,
        tags=job.tags,
    )


def pickled_placeholder(data: str | bytes) -> str:
    """What a pickled payload shows as where it must not be unpickled."""
    return f"<pickled, {len(data)} bytes; not decoded>"


def decode_payload(data: Any, serializer: str | None, *, unpickle: bool, what: str) -> Any:
    """A stored payload decoded; with ``unpickle=False`` a pickled one is a placeholder.
    Raises SerializationError naming ``what`` when the data cannot be decoded."""
    if data is None or data == "":
        return None
    if serializer == "pickle" and not unpickle:
        return pickled_placeholder(data)
    return loads(data, serializer, what=what)


def decode_job_row(row: Row, *, unpickle: bool = True) -> Row:
    """A stored ``jobs`` row as GigQ returns it: payloads decoded, ``pass_parent_results`` a
    bool (or None), ``tags`` a list; ``decode_errors`` lists the columns that could not be
    decoded."""
    serializer = row.get("serializer") or "json"
    errors = []
    for column, column_serializer in (
        ("params", serializer), ("dependencies", "json"), ("result", serializer)
    ):
        if row[column]:
            try:
                row[column] = decode_payload(row[column], column_serializer, unpickle=unpickle,
                                             what=f"{column} of job {row['id']}")
            except SerializationError as exc:
                errors.append(str(exc))
    if errors:
        row["decode_errors"] = errors
    flag = row.get("pass_parent_results")
    row["pass_parent_results"] = None if flag is None else bool(flag)
    if "tags" in row:
        row["tags"] = json.loads(row["tags"]) if row["tags"] else []
    return row


def decode_executions(executions: list[Row], serializer: str | None, *,
                      unpickle: bool = True) -> list[Row]:
    """A job's attempts (``get_executions`` rows) with their results decoded."""
    for execution in executions:
        execution["result"] = decode_payload(
            execution["result"], serializer, unpickle=unpickle,
            what=f"result of execution {execution['id']}")
    return executions


def result_of(row: Row) -> Any:
    """A stored job's decoded result once it completed, else None."""
    if row["status"] != JobStatus.COMPLETED.value:
        return None
    return loads(row["result"], row.get("serializer"), what=f"result of job {row['id']}")
