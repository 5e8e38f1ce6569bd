"""The tools the server offers: name, description (the function's docstring), the JSON
Schema of the arguments, hints for clients, and :func:`call_tool`, which checks the
argument names and calls the function. No SDK here: tests call tools without a session.

Defaults in the schemas come from the functions' signatures, so a schema cannot promise
a default the function does not have. The server does not validate arguments against
the schemas (the SDK's generic message would replace the tools' own errors): the
functions check every value and answer ``invalid_argument`` naming the fix.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .common import DEFAULT_SETTINGS, Response, ServerSettings, failure
from .limit_tools import MAX_LIMIT, list_limits, set_limit
from .tools import (
    MAX_ATTEMPTS,
    MAX_JOB_SECONDS,
    MAX_LIST_LIMIT,
    MAX_PRIORITY,
    cancel_job,
    get_job_logs,
    get_job_result,
    get_job_status,
    list_jobs,
    queue_stats,
    requeue_job,
    submit_job,
)
from .worker_tool import MAX_RUN_CONCURRENCY, MAX_RUN_SECONDS, run_worker
from .workflow_tools import (
    cancel_workflow,
    explain_workflow,
    get_workflow_results,
    get_workflow_status,
    list_workflows,
    rerun_workflow,
    submit_workflow,
)


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str


@dataclass(frozen=True)
class ToolSpec:
    name: str
    function: Callable[..., Response]
    params: tuple[Param, ...]
    read_only: bool = False
    destructive: bool = False

    @property
    def description(self) -> str:
        return inspect.getdoc(self.function) or ""

    def defaults(self) -> dict[str, Any]:
        signature = inspect.signature(self.function)
        return {name: parameter.default for name, parameter in signature.parameters.items()
                if parameter.default is not inspect.Parameter.empty}

    @property
    def required(self) -> list[str]:
        defaults = self.defaults()
        return [param.name for param in self.params if param.name not in defaults]

    def input_schema(self) -> dict[str, Any]:
        defaults = self.defaults()
        properties = {}
        for param in self.params:
            prop = {**param.schema, "description": param.description}
            if param.name in defaults:
                prop["default"] = defaults[param.name]
            properties[param.name] = prop
        return {"type": "object", "properties": properties, "required": self.required,
                "additionalProperties": False}


DB_PATH = Param("db_path", {"type": ["string", "null"]},
                "The queue: a SQLite file (a relative path is taken from the server's working "
                "directory) or a postgresql:// URL. Default: the server's --db, else "
                "$GIGQ_DB_PATH, else $GIGQ_FLOW_DB, else gigq_flow.db in the server's working "
                "directory.")
JOB_ID = Param("job_id", {"type": "string", "minLength": 1}, "The job's id, as submitted.")
WORKFLOW_ID = Param("workflow_id", {"type": "string", "minLength": 1},
                    "The workflow's id (workflow_id of gigq_submit_workflow, or "
                    "gigq_list_workflows).")
LIMIT = Param("limit", {"type": "integer", "minimum": 0, "maximum": MAX_LIST_LIMIT},
              "At most this many, newest first.")


def cache_param(description: str) -> Param:
    return Param("cache", {"type": ["boolean", "string"], "enum": [False, True, "recompute"]},
                 description)


TAGS_SCHEMA = {"type": ["array", "null"], "items": {"type": "string", "minLength": 1}}


def seconds_schema(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


STEP_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1,
               "description": "Unique among the steps; depends_on refers to it."},
        "function": {"type": "string", "minLength": 1,
                     "description": "module.function: a @task or a plain module-level "
                                    "function, importable by the server and the workers."},
        "params": {"type": ["object", "null"], "description": "Its keyword arguments."},
        "depends_on": {"type": ["array", "null"], "items": {"type": "string"},
                       "description": "Ids of steps that must complete first."},
        "pass_parent_results": {"type": ["boolean", "null"],
                                "description": "Pass the parents' results as "
                                               "parent_results; omitted: when the function "
                                               "takes that parameter (or **kwargs)."},
        "name": {"type": "string", "minLength": 1,
                 "description": "The job's name (default: the task's name); results are "
                                "read by name."},
        "cache": {"type": ["boolean", "null"],
                  "description": "false: always run this step, even in a cached run (side "
                                 "effects, randomness); omitted: the task's own setting "
                                 "(true unless it says otherwise)."},
        "cache_version": {"type": ["string", "null"], "minLength": 1,
                          "description": "Part of the step's cache key: change it to stop "
                                         "reusing results stored before."},
        "tags": {**TAGS_SCHEMA, "description": "Kinds of work this step is (a map's items "
                                               "carry its tags); gigq_set_limit caps how "
                                               "many jobs of a tag run at once."},
        "map_over": {"type": ["string", "null"], "minLength": 1,
                     "description": "Makes this step a map: the id of a step returning a "
                                    "list; the function runs once per element, and the "
                                    "map's result is the items' results in order. A map "
                                    "step takes no depends_on."},
        "item_param": {"type": ["string", "null"], "minLength": 1,
                       "description": "With map_over: the parameter each item receives its "
                                      "element as (default: item)."},
        "max_active": {"type": ["integer", "null"], "minimum": 1,
                       "description": "With map_over: at most this many of its items run at "
                                      "once, across every worker."},
    },
    "required": ["id", "function"],
    "additionalProperties": False,
}

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("gigq_submit_job", submit_job, (
        Param("function_path", {"type": "string", "minLength": 1},
              "module.function (or module.sub.function): a module-level function."),
        Param("name", {"type": "string", "minLength": 1}, "The job's name."),
        Param("params", {"type": ["object", "null"]},
              "The function's keyword arguments (JSON values)."),
        DB_PATH,
        Param("priority", {"type": "integer", "minimum": -MAX_PRIORITY,
                           "maximum": MAX_PRIORITY}, "Higher runs first."),
        Param("max_attempts", {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
              "Attempts before the job fails."),
        Param("timeout", seconds_schema(1, MAX_JOB_SECONDS), "Seconds per attempt."),
        Param("description", {"type": ["string", "null"]}, "Free text kept with the job."),
        Param("retry_delay", seconds_schema(0, MAX_JOB_SECONDS),
              "Seconds between a failed attempt and the next."),
        Param("tags", TAGS_SCHEMA, "Kinds of work this job is; gigq_set_limit caps how many "
                                   "jobs of a tag run at once."),
    )),
    ToolSpec("gigq_get_job_status", get_job_status, (JOB_ID, DB_PATH), read_only=True),
    ToolSpec("gigq_get_job_result", get_job_result, (JOB_ID, DB_PATH), read_only=True),
    ToolSpec("gigq_get_job_logs", get_job_logs, (
        JOB_ID,
        Param("attempt", {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ATTEMPTS},
              "The attempt, from 1 (executions of gigq_get_job_status lists them); "
              "default: the latest."),
        DB_PATH,
    ), read_only=True),
    ToolSpec("gigq_list_jobs", list_jobs, (
        Param("status_filter", {"type": ["string", "null"],
                                "enum": ["pending", "running", "completed", "failed",
                                         "cancelled", "timeout", "upstream_failed", None]},
              "Only jobs of this status."),
        LIMIT, DB_PATH,
    ), read_only=True),
    ToolSpec("gigq_queue_stats", queue_stats, (DB_PATH,), read_only=True),
    ToolSpec("gigq_cancel_job", cancel_job, (
        JOB_ID, DB_PATH,
        Param("running", {"type": "boolean"},
              "true: cancel a running job too (its attempt ends cancelled at once); "
              "false (GigQ's meaning): pending jobs only."),
    ), destructive=True),
    ToolSpec("gigq_requeue_job", requeue_job, (JOB_ID, DB_PATH)),
    ToolSpec("gigq_submit_workflow", submit_workflow, (
        Param("name", {"type": "string", "minLength": 1}, "The workflow's name."),
        Param("steps", {"type": "array", "minItems": 1, "items": STEP_SCHEMA},
              "The steps, in any order."),
        DB_PATH,
        cache_param("false: run every step; true: reuse the results of earlier runs whose "
                    "step, code, params and parents' results match; \"recompute\": run "
                    "every step and refresh the stored results."),
    )),
    ToolSpec("gigq_list_workflows", list_workflows, (LIMIT, DB_PATH), read_only=True),
    ToolSpec("gigq_get_workflow_status", get_workflow_status, (
        WORKFLOW_ID, DB_PATH,
        Param("items", {"type": "boolean"},
              "true: list every item of each map; false: only items that failed for good "
              "(maps give their items' counts)."),
    ), read_only=True),
    ToolSpec("gigq_get_workflow_results", get_workflow_results, (WORKFLOW_ID, DB_PATH),
             read_only=True),
    ToolSpec("gigq_explain_workflow", explain_workflow, (WORKFLOW_ID, DB_PATH),
             read_only=True),
    ToolSpec("gigq_cancel_workflow", cancel_workflow, (WORKFLOW_ID, DB_PATH),
             destructive=True),
    ToolSpec("gigq_rerun_workflow", rerun_workflow, (
        WORKFLOW_ID,
        cache_param("true: reuse the results of steps whose step, code, params and parents' "
                    "results match an earlier run (after a failure, only the failed steps "
                    "and their dependents run); false: run every step; \"recompute\": run "
                    "every step and refresh the stored results."),
        DB_PATH,
    )),
    ToolSpec("gigq_set_limit", set_limit, (
        Param("tag", {"type": "string", "minLength": 1}, "The tag to limit."),
        Param("max_running", {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_LIMIT},
              "At most this many jobs carrying the tag run at once; null removes the limit."),
        DB_PATH,
    )),
    ToolSpec("gigq_list_limits", list_limits, (DB_PATH,), read_only=True),
    ToolSpec("gigq_run_worker", run_worker, (
        Param("seconds", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RUN_SECONDS},
              "Longest time the call runs jobs, in seconds."),
        Param("concurrency", {"type": "integer", "minimum": 1, "maximum": MAX_RUN_CONCURRENCY},
              "Worker threads running jobs in parallel."),
        DB_PATH,
        Param("executor", {"type": "string", "enum": ["threads", "processes"]},
              "Where steps run: on the threads (default), or each thread's steps in a child "
              "process (CPU-bound steps in parallel; timeouts stop the work)."),
    )),
)
TOOLS_BY_NAME = {spec.name: spec for spec in TOOLS}


def call_tool(name: str, arguments: Any,
              settings: ServerSettings = DEFAULT_SETTINGS) -> Response:
    """Call the tool ``name`` with ``arguments`` as a client sent them; never raises."""
    spec = TOOLS_BY_NAME.get(name)
    if spec is None:
        return failure("unknown_tool", f"there is no tool {name!r}; the tools are "
                                       f"{', '.join(TOOLS_BY_NAME)}")
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        return failure("invalid_argument", f"the arguments of {name} must be an object, got "
                                           f"{type(arguments).__name__}")
    names = [param.name for param in spec.params]
    for key in arguments:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            return failure("invalid_argument",
                           f"{name} has no argument {key!r}{guess}; it takes "
                           f"{', '.join(names)}", {"argument": key})
    for key in spec.required:
        if key not in arguments:
            return failure("invalid_argument",
                           f"{name} needs the argument {key!r}: "
                           f"{spec.input_schema()['properties'][key]['description']}",
                           {"argument": key})
    return spec.function(**arguments, settings=settings)
