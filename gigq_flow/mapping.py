"""Maps (``Workflow.map``): a step run once per element of its parent's result.

A map's row is claimed twice, and neither claim calls its function. The first expands
it: the parent's result, a list, becomes one item job per element (``name[i]``, the
map's function and options, the element as the item parameter), created in one
transaction, and the map waits for its items as it waited for its parent. The second,
once every item completed, collects their results in input order as the map's result.
Items are ordinary jobs: retries, timeouts, limits and the cache apply to each.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .loader import FunctionLoader
from .serialization import dumps, dumps_params, loads
from .store import ClaimedJob, ParentResult, Store

logger = logging.getLogger(__name__)


class MapError(Exception):
    """A map that cannot expand: retrying cannot help."""


def run_map(store: Store, loader: FunctionLoader, claim: ClaimedJob) -> None:
    """Expand the claimed map, or collect its items' results; a map that cannot expand
    fails for good, writing no item."""
    parents = store.parent_results(claim.id)
    try:
        if claim.map_size is None:
            done = _expand(store, loader, claim, parents)
        else:
            results = _decode(loader, parents[1:])  # the first parent is the list's
            done = store.complete(claim, dumps(results, claim.serializer))
    except Exception as exc:
        done = store.fail(claim, str(exc) if isinstance(exc, MapError) else
                          f"cannot map: {type(exc).__name__}: {exc}", retry=False)
    if not done:
        logger.warning("map %s: outcome discarded, the map was reclaimed", claim.id)


def _expand(store: Store, loader: FunctionLoader, claim: ClaimedJob,
            parents: Sequence[ParentResult]) -> bool:
    if not parents:
        raise MapError(f"map {claim.name!r} has no parent to map over")
    over = parents[0]
    (items,) = _decode(loader, [over])
    if not isinstance(items, list | tuple):
        raise MapError(
            f"map {claim.name!r} maps over the result of {over.name!r}, which is a "
            f"{type(items).__name__}, not a list; make {over.name!r} return a list"
        )
    if not items:
        return store.complete(claim, dumps([], claim.serializer))
    params = loads(claim.params, claim.serializer, what="params")
    item_param = claim.map_param or "item"
    return store.expand_map(claim, [
        dumps_params({**params, item_param: item}, claim.serializer, f"{claim.name}[{i}]")
        for i, item in enumerate(items)
    ])


def _decode(loader: FunctionLoader, parents: Sequence[ParentResult]) -> list[Any]:
    if any(parent.serializer == "pickle" for parent in parents):
        loader.check_pickle_allowed()
    return [loads(parent.result, parent.serializer, what=f"result of job {parent.id}")
            for parent in parents]
