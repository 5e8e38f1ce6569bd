"""What every tool shares: its response shape, argument checks whose errors name the
argument and the fix, which queue a call uses, and the reminder that jobs need a worker.

Every tool returns ``{"success": True, ...}`` or ``{"success": False, "error": {"code",
"message", "details"?}}`` and never raises: :func:`tool` turns what a call raises into an
error response. A check that fails raises before anything is written.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec

from ..cli.common import UsageError, default_db, to_json_text
from ..cli.common import worker_command as cli_worker_command
from ..cli.jobs import import_function
from ..errors import (
    ConfigurationError,
    DatabaseError,
    GigqFlowError,
    NotFoundError,
    SerializationError,
    TaskDefinitionError,
    WorkflowError,
)
from ..job_queue import JobQueue
from ..loader import module_allowed
from ..locations import describe_location, is_postgres_url

logger = logging.getLogger(__name__)

DB_PATH_ENV = "GIGQ_DB_PATH"
"""GigQ's MCP server variable: the queue when neither the call nor ``--db`` names one."""

P = ParamSpec("P")
Response = dict[str, Any]


@dataclass(frozen=True)
class ServerSettings:
    """What ``gigq-flow mcp`` was started with: ``--db`` when it was typed (else None),
    and the worker options ``gigq_run_worker`` and the submissions respect."""

    db: str | None = None
    allowed_modules: tuple[str, ...] | None = None
    allow_pickle: bool = False


DEFAULT_SETTINGS = ServerSettings()


# -- responses ------------------------------------------------------------------------------
class ToolFailure(Exception):
    """A call that cannot be done as asked: becomes ``{"success": False, "error": ...}``."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def response(self) -> Response:
        return failure(self.code, self.message, self.details)


def ok(**fields: Any) -> Response:
    return {"success": True, **fields}


def failure(code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"success": False, "error": error}


def jsonable(response: Response) -> Response:
    """The response as JSON would carry it (values JSON cannot hold become strings)."""
    loaded: Response = json.loads(to_json_text(response))
    return loaded


def tool(function: Callable[P, Response]) -> Callable[P, Response]:
    """Make ``function`` a tool: what it raises becomes an error response."""

    @functools.wraps(function)
    def call(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return jsonable(function(*args, **kwargs))
        except ToolFailure as exc:
            return exc.response()
        except NotFoundError as exc:
            return failure("not_found", str(exc))
        except DatabaseError as exc:
            return failure("database_error", str(exc))
        except WorkflowError as exc:
            return failure("invalid_workflow", str(exc))
        except (ConfigurationError, TaskDefinitionError, SerializationError) as exc:
            return failure("invalid_argument", str(exc))
        except GigqFlowError as exc:
            return failure("error", str(exc))
        except Exception as exc:  # a bug: the agent gets one line, the log the traceback
            logger.exception("tool %s failed", function.__name__)
            return failure("internal_error", f"unexpected {type(exc).__name__}: {exc}")

    return call


# -- arguments ------------------------------------------------------------------------------
JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
              (list, "array"), (dict, "object"))


def described(value: Any) -> str:
    """A value as an agent sent it: its JSON type and a short rendering."""
    if value is None:
        return "null"
    kind = next((name for python, name in JSON_TYPES if isinstance(value, python)),
                type(value).__name__)
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return f"the {kind} {text if len(text) <= 60 else text[:57] + '...'}"


def invalid(argument: str, message: str, fix: str) -> ToolFailure:
    return ToolFailure("invalid_argument", f"{argument} {message}; {fix}",
                       {"argument": argument})


def check_text(name: str, value: Any, *, example: str) -> str:
    """A required, non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(name, f"must be a non-empty string, got {described(value)}",
                      f"pass e.g. {name}={json.dumps(example)}")
    return value


def check_optional_text(name: str, value: Any, *, example: str) -> str | None:
    """A string, or None; a blank string counts as not given (as in GigQ)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise invalid(name, f"must be a string or null, got {described(value)}",
                      f"pass e.g. {name}={json.dumps(example)}, or leave it out")
    return value


def check_integer(name: str, value: Any, *, minimum: int | None = None,
                  maximum: int | None = None, example: int) -> int:
    """An integer within bounds; a float with an integer value (``3.0``) is taken."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    in_range = (isinstance(value, int) and not isinstance(value, bool)
                and (minimum is None or value >= minimum)
                and (maximum is None or value <= maximum))
    if not in_range:
        if minimum is not None and maximum is not None:
            accepted = f"an integer from {minimum} to {maximum}"
        elif minimum is not None:
            accepted = f"an integer >= {minimum}"
        else:
            accepted = "an integer"
        raise invalid(name, f"must be {accepted}, got {described(value)}",
                      f"pass e.g. {name}={example}")
    return int(value)


def check_flag(name: str, value: Any, *, meaning: str) -> bool:
    """A boolean; ``meaning`` says what true does, for the fix."""
    if not isinstance(value, bool):
        raise invalid(name, f"must be true or false, got {described(value)}",
                      f"pass {name}=true to {meaning}, or leave it out")
    return value


def check_seconds(name: str, value: Any, *, maximum: float, example: float) -> float:
    """A number of seconds above 0 and at most ``maximum``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 < value <= maximum:
        raise invalid(name, f"must be a number of seconds above 0 and at most {maximum:g}, "
                            f"got {described(value)}", f"pass e.g. {name}={example:g}")
    return float(value)


def check_object(name: str, value: Any, *, example: str) -> dict[str, Any] | None:
    """A JSON object (keyword arguments), or None."""
    if value is not None and not isinstance(value, dict):
        raise invalid(name, f"must be an object of keyword arguments or null, got "
                            f"{described(value)}", f"pass e.g. {name}={example}")
    return value


def valid_tags(value: Any) -> bool:
    """A list of tags: non-empty, one-line strings."""
    return isinstance(value, list) and all(
        isinstance(tag, str) and tag.strip() and "\n" not in tag for tag in value)


def check_tags(name: str, value: Any) -> list[str]:
    """Tags, or None for none."""
    if value is None:
        return []
    if not valid_tags(value):
        raise invalid(name, f"must be a list of non-empty, one-line strings or null, got "
                            f"{described(value)}", f'pass e.g. {name}=["gpu"]')
    return list(dict.fromkeys(value))


# -- the queue ------------------------------------------------------------------------------
def resolve_db(db_path: Any, settings: ServerSettings) -> str:
    """The queue of a call: the tool's ``db_path``, else ``--db`` when typed, else
    ``$GIGQ_DB_PATH``, else the embedded default (``$GIGQ_FLOW_DB`` or ``gigq_flow.db`` in
    the working directory). A file path is made absolute."""
    chosen = check_optional_text("db_path", db_path, example="/absolute/path/jobs.db")
    location = chosen or settings.db or os.environ.get(DB_PATH_ENV) or default_db()
    if is_postgres_url(location):
        return location
    return os.path.abspath(os.path.expanduser(location))


@contextmanager
def queue_at(location: str, *, create: bool) -> Iterator[JobQueue | None]:
    """The queue at ``location``, closed afterwards; None for a file that does not exist
    unless ``create`` (reading never creates a file where a typo pointed)."""
    if not create and not is_postgres_url(location) and not os.path.exists(location):
        yield None
        return
    try:
        queue = JobQueue(location)
    except GigqFlowError as exc:
        raise ToolFailure("database_error", str(exc),
                          {"db_path": describe_location(location)}) from None
    try:
        yield queue
    finally:
        queue.close()


def no_queue_message(location: str) -> str:
    return (f"there is no queue at {describe_location(location)} (the file does not exist); "
            "submit a job or workflow to create it, or pass db_path")


def worker_command(location: str, settings: ServerSettings) -> str:
    """The shell command that starts a worker on ``location`` with the server's options."""
    return cli_worker_command(location, allowed_modules=settings.allowed_modules or (),
                              allow_pickle=settings.allow_pickle)


def worker_hint(location: str, settings: ServerSettings) -> Response:
    """GigQ's reminder fields: nothing runs until a worker does."""
    return {
        "worker_required": True,
        "worker_command_example": worker_command(location, settings),
        "worker_note": (
            "Jobs only wait in the queue until a worker runs them. Start one in a terminal "
            "with the command above (adjust --concurrency), or call gigq_run_worker to run "
            "the ready jobs inside this server for a bounded number of seconds."
        ),
    }


# -- job functions --------------------------------------------------------------------------
def load_function(spec: str, settings: ServerSettings, *, where: str,
                  details: dict[str, Any] | None = None) -> Callable[..., Any]:
    """Import ``module.function`` as a worker will; with ``--allow-module``, a function
    outside the allowed modules is refused before its module is imported. ``where``
    (the argument or the step) starts the error messages."""
    module_name = spec.rpartition(".")[0]
    if module_name and not module_allowed(module_name, settings.allowed_modules):
        raise ToolFailure("not_allowed", f"{where}: {outside_message(spec, settings)}",
                          details)
    try:
        function = import_function(spec)
    except UsageError as exc:
        raise ToolFailure("import_error", f"{where}: {exc}", details) from None
    defined_in = getattr(function, "__module__", None) or module_name
    if not module_allowed(defined_in, settings.allowed_modules):  # merely imported there
        message = outside_message(f"{spec} (defined in {defined_in})", settings)
        raise ToolFailure("not_allowed", f"{where}: {message}", details)
    return function


def outside_message(spec: str, settings: ServerSettings) -> str:
    modules = ", ".join(settings.allowed_modules or ()) or "none"
    return (f"{spec} is outside the modules this server allows ({modules}); use a function "
            "of those modules, or restart the server with --allow-module for its module")
