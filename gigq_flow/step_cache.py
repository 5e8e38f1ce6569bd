"""Incremental runs on the worker: a step's cache key, computed once its parents
completed, and the decision to reuse an earlier result or to run.

The key covers the step's function and the helpers it reaches (their bytecode, see
:mod:`.fingerprint`), its params, the digests of its parents' results (content, not
ids), the serializer and ``cache_version``. The store keeps the entries; hashing happens
here, so the key is the same on threads, processes and hosts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .fingerprint import code_fingerprint, digest, params_digest, result_digest
from .job import CACHE_RECOMPUTE, CACHE_USE
from .store import CacheKey, ClaimedJob, ParentResult, Store

KEY_FORMAT = "gigq_flow cache key 1"
"""Part of every key: a new way of computing keys never matches an old one."""
CACHED_MODES = frozenset({CACHE_USE, CACHE_RECOMPUTE})
#: Why a step ran, by how much of its key the step's nearest earlier entry shares.
MISS_REASONS = (
    "ran: no earlier result",
    "ran: code changed",
    "ran: params changed",
    "ran: parents changed",
    "ran: cache_version or serializer changed",
)


@dataclass(frozen=True)
class StepPlan:
    """A step of a cached run that is going to run: its key, why it runs, and whether
    its entry replaces an existing one (``recompute``)."""

    key: CacheKey
    note: str
    refresh: bool


def step_key(claim: ClaimedJob, func: Callable[..., Any], params: Mapping[str, Any],
             parents: Sequence[ParentResult]) -> tuple[CacheKey, tuple[str, ...]]:
    """The claimed step's key, and the callables whose code could not be read."""
    code = code_fingerprint(func)
    parents_part = digest(*(
        f"{parent.name}\0"
        f"{parent.digest or result_digest(parent.result, parent.serializer or 'json')}"
        for parent in parents
    ))
    params_part = params_digest(params, claim.serializer)
    settings = f"{claim.serializer}|{claim.cache_version or ''}"
    step = f"{claim.function_module}.{claim.function_name}"
    key = digest(KEY_FORMAT, step, code.digest, params_part, parents_part, settings)
    return CacheKey(key, step, claim.name, code.digest, params_part, parents_part,
                    settings), code.unknown


def plan_step(store: Store, claim: ClaimedJob, func: Callable[..., Any],
              params: Mapping[str, Any], parents: Sequence[ParentResult]) -> StepPlan | None:
    """Reuse the result of an earlier run when the key matches (None: the job is
    complete), else the plan of a step that runs and why."""
    key, unknown = step_key(claim, func, params, parents)
    caveat = (f"; code of {', '.join(unknown)} unreadable, keyed on name and version"
              if unknown else "")
    if claim.cache == CACHE_RECOMPUTE:
        return StepPlan(key, "ran: recompute" + caveat, refresh=True)
    found = store.find_cached(key)
    if found.result_digest is not None:
        source = (f"run {found.workflow_id}" if found.workflow_id
                  else f"job {found.job_id}")
        if store.reuse(claim, key, f"cached (from {source}){caveat}"):
            return None
        return StepPlan(key, "ran: earlier result cleared" + caveat, refresh=False)
    return StepPlan(key, MISS_REASONS[found.shared] + caveat, refresh=False)
