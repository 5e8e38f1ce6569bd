"""Incremental runs on the worker: a step's cache key, computed once its parents
completed, and the decision to reuse an earlier result or to run.

The key covers the step's function and the helpers it reaches (their bytecode, see
:mod:`.fingerprint`), its params, the digests of its parents' results (content, not
ids), the serializer and ``cache_version``. The store keeps the entries; hashing happens
here, so the key is the same on threads, processes and hosts.

A hit is decided inside the claim's transaction when it can be (the step's function is
already loaded): the claim completes the step, and the steps of cached runs that this
makes ready, without a transaction of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .fingerprint import (
    CodeFingerprint,
    code_fingerprint,
    digest,
    params_digest,
    result_digest,
)
from .job import CACHE_RECOMPUTE, CACHE_USE
from .serialization import loads
from .store import CacheKey, CacheLookup, ClaimedJob, ParentResult, Store

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
             parents: Sequence[ParentResult], code: CodeFingerprint | None = None,
             ) -> tuple[CacheKey, tuple[str, ...]]:
    """The claimed step's key, and the callables whose code could not be read (``code``:
    ``func``'s fingerprint, when known already)."""
    code = code or code_fingerprint(func)
    parents_part = digest(*(
        f"{parent.name}\0"
        f"{parent.digest or result_digest(parent.result, parent.serializer or 'json')}"
        for parent in parents
    ))
    params_part = params_digest(params, claim.serializer)
    settings = f"{claim.serializer}|{claim.cache_version or ''}"
    step = f"{claim.function_module}.{claim.function_name}"
    key = digest(KEY_FORMAT, step, claim.name, code.digest, params_part, parents_part,
                 settings)
    return CacheKey(key, step, claim.name, code.digest, params_part, parents_part,
                    settings), code.unknown


def hit_note(found: CacheLookup, unknown: tuple[str, ...]) -> str:
    source = f"run {found.workflow_id}" if found.workflow_id else f"job {found.job_id}"
    return f"cached (from {source}){caveat(unknown)}"


def caveat(unknown: tuple[str, ...]) -> str:
    return (f"; code of {', '.join(unknown)} unreadable, keyed on name and version"
            if unknown else "")


class StepCache:
    """A worker's cache decisions. Its probe side (``key``, ``hit_note``, ``missed``,
    ``next_attempt``: a CacheProbe) runs inside a claim's transaction: a step whose
    function is already loaded is keyed there and, on a hit, completed there, with the
    steps this makes ready. ``plan`` runs after the claim for the steps that run."""

    def __init__(self, store: Store,
                 loaded: Callable[[ClaimedJob], Callable[..., Any] | None],
                 attempt_ids: Callable[[], str]) -> None:
        """``loaded``: the claimed job's function if it can be had without importing
        anything (else None: a claim's transaction must stay short); ``attempt_ids``:
        the worker's next attempt id."""
        self.store = store
        self.loaded = loaded
        self.next_attempt = attempt_ids
        self.misses: dict[str, tuple[CacheKey, tuple[str, ...], CacheLookup]] = {}
        """What probes found for claims that run, by attempt, for ``plan``."""
        self.codes: dict[int, tuple[Callable[..., Any], CodeFingerprint]] = {}
        """Fingerprints of the functions keyed during the current claim (by id, with the
        function, which keeps the id from being reused): one claim's transaction sees
        one state of the code."""

    def begin_claim(self) -> None:
        """Forget the fingerprints of the last claim: code may change between claims."""
        if self.codes:
            self.codes.clear()

    def key(self, claim: ClaimedJob, parents: Sequence[ParentResult]
            ) -> tuple[CacheKey, tuple[str, ...]] | None:
        try:
            func = self.loaded(claim)
            if func is None:
                return None
            known = self.codes.get(id(func))
            if known is None:
                known = self.codes[id(func)] = (func, code_fingerprint(func))
            return step_key(claim, func, loads(claim.params, claim.serializer), parents,
                            known[1])
        except Exception:  # the job runs, and its start reports the problem
            return None

    hit_note = staticmethod(hit_note)

    def missed(self, claim: ClaimedJob, key: CacheKey, unknown: tuple[str, ...],
               found: CacheLookup) -> None:
        self.misses[claim.execution_id] = (key, unknown, found)

    def plan(self, claim: ClaimedJob, func: Callable[..., Any], params: Mapping[str, Any],
             parents: Sequence[ParentResult] | None) -> StepPlan | None:
        """Why a claimed step of a cached run runs, and its key; None when it was
        completed here with an earlier run's result instead. ``parents``: as read for
        ``parent_results``, None when not read (then only their digests are)."""
        probed = self.misses.pop(claim.execution_id, None)
        if probed is not None:
            key, unknown, found = probed
            return StepPlan(key, MISS_REASONS[found.shared] + caveat(unknown), refresh=False)
        if parents is None:
            parents = (self.store.parent_results(claim.id, results=False)
                       if claim.has_dependencies else [])
        key, unknown = step_key(claim, func, params, parents)
        if claim.cache == CACHE_RECOMPUTE:
            return StepPlan(key, "ran: recompute" + caveat(unknown), refresh=True)
        found = self.store.find_cached(key)
        if found.result_digest is not None:
            if self.store.reuse(claim, key, hit_note(found, unknown)):
                return None
            return StepPlan(key, "ran: earlier result cleared" + caveat(unknown),
                            refresh=False)
        return StepPlan(key, MISS_REASONS[found.shared] + caveat(unknown), refresh=False)
