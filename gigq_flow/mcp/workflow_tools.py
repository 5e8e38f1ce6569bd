"""Workflow tools: GigQ's ``gigq_submit_workflow``, and listing workflows, a workflow's
status and its results, why each step ran or was reused, a rerun and cancelling a run,
which gigq-mcp does not have.

A submission is checked whole before anything is written: the ``cache`` argument, the
steps' shape, duplicate ids, unknown dependencies, cycles (``invalid_workflow``, naming
the steps), and every function's import (``import_error``, with the ``step_id``). Then
every job is written in one transaction by ``Workflow.submit``.
"""

from __future__ import annotations

import graphlib
from typing import Any

from ..cli.maps import grouped
from ..cli.workflows import snapshot_json, summarize
from ..errors import TaskDefinitionError, WorkflowNotFoundError
from ..job import CACHE_RECOMPUTE, Job
from ..job_queue import JobQueue
from ..loader import module_allowed
from ..locations import describe_location
from ..run import WorkflowRun
from ..workflow import Workflow
from .common import (
    DEFAULT_SETTINGS,
    Response,
    ServerSettings,
    ToolFailure,
    check_flag,
    check_integer,
    check_text,
    described,
    invalid,
    load_function,
    no_queue_message,
    ok,
    outside_message,
    queue_at,
    resolve_db,
    tool,
    valid_tags,
    worker_hint,
)
from .tools import MAX_LIST_LIMIT

STEP_KEYS = ("id", "function", "params", "depends_on", "pass_parent_results", "name",
             "cache", "cache_version", "tags", "map_over", "item_param", "max_active")
MAP_KEYS = ("item_param", "max_active")
"""Keys only a map step (one with ``map_over``) takes."""
EXAMPLE_STEPS = ('[{"id": "load", "function": "tasks.load"}, '
                 '{"id": "report", "function": "tasks.report", "depends_on": ["load"]}]')
EXAMPLE_WORKFLOW_ID = "c6db5c56-5d04-4dd9-ad05-9694c8fa053f"


def bad_workflow(message: str, step_id: str | None = None) -> ToolFailure:
    return ToolFailure("invalid_workflow", message, {"step_id": step_id} if step_id else None)


def check_step(index: int, step: Any) -> dict[str, Any]:
    """One step's shape; its position (from 1) names it until its id is known."""
    where = f"step {index}"
    if not isinstance(step, dict):
        raise bad_workflow(f"{where} must be an object with 'id' and 'function' (and optional "
                           f"{', '.join(STEP_KEYS[2:])}), got {described(step)}")
    unknown = sorted(set(step) - set(STEP_KEYS))
    if unknown:
        raise bad_workflow(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; "
                           f"a step takes {', '.join(STEP_KEYS)}")
    step_id = step.get("id")
    if not isinstance(step_id, str) or not step_id.strip():
        raise bad_workflow(f"{where} must have a non-empty string 'id', got {described(step_id)}")
    where = f"step {step_id!r}"
    function = step.get("function")
    if not isinstance(function, str) or not function.strip():
        raise bad_workflow(f"{where} must have a non-empty string 'function' (module.function), "
                           f"got {described(function)}", step_id)
    if step.get("params") is not None and not isinstance(step["params"], dict):
        raise bad_workflow(f"{where}: 'params' must be an object of keyword arguments, got "
                           f"{described(step['params'])}", step_id)
    depends_on = step.get("depends_on")
    if depends_on is not None and (not isinstance(depends_on, list) or not all(
            isinstance(dep, str) for dep in depends_on)):
        raise bad_workflow(f"{where}: 'depends_on' must be a list of step ids, got "
                           f"{described(depends_on)}", step_id)
    flag = step.get("pass_parent_results")
    if flag is not None and not isinstance(flag, bool):
        raise ToolFailure("invalid_pass_parent_results",
                          f"{where}: 'pass_parent_results' must be true, false or omitted, "
                          f"got {described(flag)}", {"step_id": step_id})
    name = step.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise bad_workflow(f"{where}: 'name' must be a non-empty string or omitted, got "
                           f"{described(name)}", step_id)
    cache = step.get("cache")
    if cache is not None and not isinstance(cache, bool):
        raise bad_workflow(f"{where}: 'cache' must be true, false (always run this step, "
                           f"e.g. for side effects) or omitted, got {described(cache)}", step_id)
    version = step.get("cache_version")
    if version is not None and (not isinstance(version, str) or not version.strip()):
        raise bad_workflow(f"{where}: 'cache_version' must be a non-empty string or omitted, "
                           f"got {described(version)}; change it (e.g. \"2\") to stop "
                           "reusing results stored before", step_id)
    if step.get("tags") is not None and not valid_tags(step["tags"]):
        raise bad_workflow(f"{where}: 'tags' must be a list of non-empty, one-line strings or "
                           f"omitted, got {described(step['tags'])}", step_id)
    check_map_step(where, step)
    return step


def check_map_step(where: str, step: dict[str, Any]) -> None:
    """``map_over`` and the keys that go with it."""
    step_id = step["id"]
    over = step.get("map_over")
    if over is None:
        given = [key for key in MAP_KEYS if step.get(key) is not None]
        if given:
            raise bad_workflow(f"{where}: {', '.join(map(repr, given))} applies to a map step "
                               "only; add \"map_over\": <the id of the step whose list it "
                               "maps over>, or remove it", step_id)
        return
    if not isinstance(over, str) or not over.strip():
        raise bad_workflow(f"{where}: 'map_over' must be the id of the step whose result (a "
                           f"list) it maps over, got {described(over)}", step_id)
    if over == step_id:
        raise bad_workflow(f"{where} maps over itself; 'map_over' names the step whose list "
                           "it maps over", step_id)
    if step.get("depends_on"):
        raise bad_workflow(f"{where} maps over {over!r} and depends on that step alone; "
                           "remove 'depends_on' (map over a step that depends on the others)",
                           step_id)
    if step.get("pass_parent_results"):
        raise bad_workflow(f"{where}: a map step's items receive one element each (as "
                           "item_param), not parent_results; remove 'pass_parent_results'",
                           step_id)
    item_param = item_param_of(step)
    if not isinstance(item_param, str) or not item_param.isidentifier():
        raise bad_workflow(f"{where}: 'item_param' must be a parameter name of the function "
                           f"(e.g. \"item\", the default), got {described(item_param)}",
                           step_id)
    if item_param in (step.get("params") or {}) or item_param == "parent_results":
        raise bad_workflow(f"{where}: item_param {item_param!r} is also given in 'params' "
                           "(or is parent_results); each item gets its element as "
                           f"{item_param}, so choose another item_param", step_id)
    limit = step.get("max_active")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                              or limit < 1):
        raise bad_workflow(f"{where}: 'max_active' must be an integer >= 1 (how many of its "
                           f"items may run at once), got {described(limit)}; omit it for no "
                           "cap", step_id)


def check_cache(value: Any, *, example: str) -> bool | str:
    """A run's ``cache``: false, true or "recompute"."""
    if value is False or value is True or value == CACHE_RECOMPUTE:
        return value
    raise invalid("cache", f"must be false, true or \"recompute\", got {described(value)}",
                  f"pass e.g. cache={example} (true reuses the results of earlier runs whose "
                  "step, code, params and parents match; \"recompute\" runs every step and "
                  "refreshes what is stored)")


def item_param_of(step: dict[str, Any]) -> Any:
    return "item" if step.get("item_param") is None else step["item_param"]


def parents(step: dict[str, Any]) -> list[str]:
    """The ids of the steps ``step`` waits for."""
    over = step.get("map_over")
    return [over] if over is not None else list(step.get("depends_on") or ())


def ordered_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps, parents before children (in the order given where free); duplicate ids,
    unknown dependencies and cycles are ``invalid_workflow``."""
    position: dict[str, int] = {}
    for index, step in enumerate(steps, 1):
        if step["id"] in position:
            raise bad_workflow(f"duplicate step id {step['id']!r} (steps {position[step['id']]} "
                               f"and {index}); give every step its own id", step["id"])
        position[step["id"]] = index
    for step in steps:
        over = step.get("map_over")
        if over is not None and over not in position:
            raise bad_workflow(
                f"step {step['id']!r} has map_over unknown step id {over!r}; the step ids are "
                f"{', '.join(position)}", step["id"])
        for dep in step.get("depends_on") or ():
            if dep not in position:
                raise bad_workflow(
                    f"step {step['id']!r} depends_on unknown step id {dep!r}; the step ids are "
                    f"{', '.join(position)}", step["id"])
    sorter = graphlib.TopologicalSorter({step["id"]: parents(step) for step in steps})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))
        raise bad_workflow(f"the steps' dependencies form a cycle: {' -> '.join(cycle)} "
                           "(each step depends on the next); remove one of these dependencies",
                           cycle[0]) from None
    by_id = {step["id"]: step for step in steps}
    order: list[dict[str, Any]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(by_id[step_id] for step_id in ready)
        sorter.done(*ready)
    return order


@tool
def submit_workflow(name: str, steps: list[dict[str, Any]], db_path: str | None = None,
                    cache: bool | str = False, *,
                    settings: ServerSettings | None = None) -> Response:
    """Submit a DAG of jobs as one workflow, in one transaction (fan-out, fan-in, chains).

    Each step is an object: ``id`` (unique among the steps), ``function``
    (``module.function``: a ``@task`` or a plain module-level function), optional
    ``params`` (its keyword arguments), ``depends_on`` (ids of steps that must complete
    first; a dependent step receives their results as ``parent_results`` if it takes
    them), ``pass_parent_results`` (true, false, or omitted to decide from the
    function's signature), ``name`` (the job's name; default: the task's name),
    ``cache`` (false: always run this step, even in a cached run) and ``cache_version``
    (a string; change it to stop reusing results stored before), ``tags`` (a list of
    strings; ``gigq_set_limit`` caps how many jobs of a tag run at once). A step with
    ``map_over`` (the id of a step that returns a list) is a map: its function runs once
    per element, called with ``item=<element>`` (or ``item_param``) and ``params``; the
    map's result is the list of the items' results, in order, which steps depending on
    it receive; ``max_active`` caps how many of its items run at once. A map step takes
    no ``depends_on``. Steps may come in any order. Duplicate ids, unknown dependencies,
    cycles and malformed step fields are ``invalid_workflow`` and write nothing.
    ``cache``: false (the default) runs every step; true reuses the results of earlier
    runs whose step, code, params and parents' results match; "recompute" runs every
    step and refreshes the stored results. Returns ``workflow_id``, ``submitted_job_ids``
    (parents first; a map's items are written when its list arrives) and
    ``step_id_to_job_id``.
    """
    settings = settings or DEFAULT_SETTINGS
    check_text("name", name, example="nightly-report")
    cache = check_cache(cache, example="true")
    location = resolve_db(db_path, settings)
    if not isinstance(steps, list):
        raise invalid("steps", f"must be a list of step objects, got {described(steps)}",
                      f"pass e.g. steps={EXAMPLE_STEPS}")
    if not steps:
        raise bad_workflow(f"a workflow needs at least one step; pass e.g. steps={EXAMPLE_STEPS}")
    order = ordered_steps([check_step(index, step) for index, step in enumerate(steps, 1)])
    functions = {}
    for step in order:  # every import before any job: a failure writes nothing
        if step["function"] not in functions:
            functions[step["function"]] = load_function(
                step["function"], settings, where=f"step {step['id']!r}",
                details={"step_id": step["id"]})
    workflow = Workflow(name)
    jobs: dict[str, Job] = {}
    for step in order:
        options = {key: step[key] for key in ("name", "cache", "cache_version", "tags")
                   if step.get(key) is not None}
        try:
            if step.get("map_over") is not None:
                jobs[step["id"]] = workflow.map(
                    functions[step["function"]], over=jobs[step["map_over"]],
                    params=step.get("params"), item_param=item_param_of(step),
                    max_active=step.get("max_active"), **options)
                continue
            jobs[step["id"]] = workflow.add_task(
                functions[step["function"]], params=step.get("params"),
                depends_on=[jobs[dep] for dep in step.get("depends_on") or ()],
                pass_parent_results=step.get("pass_parent_results"), **options)
        except TaskDefinitionError as exc:
            raise ToolFailure("import_error", f"step {step['id']!r}: {step['function']} cannot "
                                              f"be a job: {exc}", {"step_id": step["id"]}) from None
    with queue_at(location, create=True) as queue:
        assert queue is not None
        run = workflow.submit(queue, cache=cache)
    return ok(
        workflow_name=name, workflow_id=run.id, cache=cache,
        submitted_job_ids=[job.id for job in workflow.jobs],
        step_id_to_job_id={step["id"]: jobs[step["id"]].id for step in steps},
        db_path=describe_location(location), **worker_hint(location, settings),
    )


@tool
def list_workflows(limit: int = 100, db_path: str | None = None, *,
                   settings: ServerSettings | None = None) -> Response:
    """Submitted workflows, newest first, at most ``limit``: ``id``, ``name``,
    ``created_at``, ``state`` (pending, running, succeeded or failed), ``counts`` per
    status, ``total``, ``finished`` and ``done``."""
    limit = check_integer("limit", limit, minimum=0, maximum=MAX_LIST_LIMIT, example=100)
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        found = [] if queue is None else queue.list_workflows()
    workflows = [summarize(workflow) for workflow in found[:limit]]
    return ok(workflows=workflows, count=len(workflows), total=len(found),
              db_path=describe_location(location))


def find_workflow(queue: JobQueue | None, workflow_id: Any, location: str) -> WorkflowRun:
    workflow_id = check_text("workflow_id", workflow_id, example=EXAMPLE_WORKFLOW_ID)
    details = {"db_path": describe_location(location)}
    if queue is None:
        raise ToolFailure("not_found", f"no workflow with id {workflow_id!r}: "
                                       f"{no_queue_message(location)}", details)
    try:
        return queue.get_workflow(workflow_id)
    except WorkflowNotFoundError:
        raise ToolFailure("not_found", f"no workflow with id {workflow_id!r} in "
                                       f"{describe_location(location)}; "
                                       "gigq_list_workflows lists them", details) from None


@tool
def get_workflow_status(workflow_id: str, db_path: str | None = None, items: bool = False, *,
                        settings: ServerSettings | None = None) -> Response:
    """A workflow's progress: ``state``, ``counts`` per status (items of maps included),
    ``total``, ``finished``, ``done``, ``succeeded``, ``cached`` (how many completed steps
    reused an earlier run's result), and ``jobs``: each step's id, name, function,
    status, attempts, times, worker, error, ``cached_from`` (the job whose result it
    reused, or null), ``tags``, and for maps ``item_param`` and ``map_size``, for their
    items ``map_of`` (the map's id) and ``map_index``; parents first. ``maps`` gives each
    map's ``size``, its items' ``counts`` and ``progress`` ("map ×120: 37 done, 2
    failed"). Items are listed only when they failed for good, unless ``items`` is true
    (``items_hidden`` counts the others); ``edges`` are [parent, child] job id pairs of
    the listed jobs."""
    show_all = check_flag("items", items, meaning="list every item of each map")
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        run = find_workflow(queue, workflow_id, location)
        snapshot = run.snapshot()
        status = snapshot_json(run, snapshot, results=False)
    shown = {job.id for job, _ in grouped(snapshot, all_items=show_all)}
    status["jobs"] = [job for job in status["jobs"] if job["id"] in shown]
    status["edges"] = [edge for edge in status["edges"] if shown.issuperset(edge)]
    status["items_hidden"] = snapshot.total - len(shown)
    status["workflow_id"] = status.pop("id")
    return ok(**status, db_path=describe_location(location))


@tool
def get_workflow_results(workflow_id: str, db_path: str | None = None, *,
                         settings: ServerSettings | None = None) -> Response:
    """A workflow's results by step name: ``results`` maps each completed job's name to
    its return value (a list where steps share a name); ``failed`` lists the jobs that
    failed, timed out, were cancelled or upstream_failed, with their errors; ``done``
    and ``counts`` tell whether more results are to come."""
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        run = find_workflow(queue, workflow_id, location)
        results = run.results(unpickle=False)
        snapshot = run.snapshot()
        failed = run.failed()
    response = ok(workflow_id=run.id, name=run.name, done=snapshot.done,
                  counts=snapshot.counts, total=snapshot.total, results=results,
                  failed=failed, db_path=describe_location(location))
    if not snapshot.done:
        response["message"] = (f"{snapshot.total - snapshot.finished} of {snapshot.total} "
                               "jobs have not finished; results holds the completed ones")
    return response


@tool
def explain_workflow(workflow_id: str, db_path: str | None = None, *,
                     settings: ServerSettings | None = None) -> Response:
    """Why each step of a workflow ran or reused an earlier result: ``reasons`` maps each
    step's name to "cached (from run ID)", or "ran: " and why (no earlier result, code
    changed, params changed, parents changed, cache_version or serializer changed, cache
    off, recompute, failed, timeout), or its state ("pending", "running", "not run:
    upstream_failed"); a list where steps share a name. ``cached`` counts the reused
    steps."""
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        run = find_workflow(queue, workflow_id, location)
        reasons = run.explain()
        snapshot = run.snapshot()
    return ok(workflow_id=run.id, name=run.name, reasons=reasons, cached=snapshot.cached,
              done=snapshot.done, db_path=describe_location(location))


@tool
def cancel_workflow(workflow_id: str, db_path: str | None = None, *,
                    settings: ServerSettings | None = None) -> Response:
    """End every unfinished step of a workflow run (``WorkflowRun.cancel()``): pending
    steps are cancelled, and running ones too: their attempt ends cancelled at once, a
    step that calls ``check_cancelled()`` stops within a second, and whatever a step
    returns afterwards is discarded. Returns ``cancelled`` (how many steps it ended; 0
    when the run had finished), and the run's ``counts`` and ``done`` afterwards. Jobs
    outside the run that depend on its steps become upstream_failed. Unknown ids are
    ``not_found``."""
    location = resolve_db(db_path, settings or DEFAULT_SETTINGS)
    with queue_at(location, create=False) as queue:
        run = find_workflow(queue, workflow_id, location)
        cancelled = run.cancel()
        snapshot = run.snapshot()
    return ok(workflow_id=run.id, name=run.name, cancelled=cancelled, counts=snapshot.counts,
              total=snapshot.total, done=snapshot.done, db_path=describe_location(location))


@tool
def rerun_workflow(workflow_id: str, cache: bool | str = True, db_path: str | None = None, *,
                   settings: ServerSettings | None = None) -> Response:
    """Submit a new run of a workflow's steps, rebuilt from the queue (same functions,
    params, dependencies and options), e.g. after fixing what made a step fail. With
    ``cache`` true (the default) the steps whose step, code, params and parents' results
    match an earlier run reuse its result, so after a failure only the failed steps and
    what depends on them run; false runs every step; "recompute" runs every step and
    refreshes the stored results. Returns the new ``workflow_id``, ``rerun_of``, and
    ``worker_command_example``: nothing runs until a worker does (``gigq_run_worker``
    runs ready jobs inside this server for a bounded time)."""
    settings = settings or DEFAULT_SETTINGS
    check_text("workflow_id", workflow_id, example=EXAMPLE_WORKFLOW_ID)
    cache = check_cache(cache, example="true")
    location = resolve_db(db_path, settings)
    with queue_at(location, create=False) as queue:
        run = find_workflow(queue, workflow_id, location)
        jobs = run.snapshot().jobs
        for job in jobs:  # as a submission: refused before anything is written
            module = job.function.rpartition(".")[0]
            if not module_allowed(module, settings.allowed_modules):
                raise ToolFailure("not_allowed", f"step {job.name!r}: "
                                  f"{outside_message(job.function, settings)}",
                                  {"job_id": job.id})
        new_run = run.rerun(cache=cache)
    return ok(workflow_id=new_run.id, rerun_of=run.id, name=new_run.name, cache=cache,
              total=len(jobs), db_path=describe_location(location),
              **worker_hint(location, settings))
