"""Maps in a workflow's status (``workflow status`` and the MCP status tool): a map's row
carries its items' progress (``map ×120: 37 done, 2 failed, ...``) and its items are
grouped under it; by default only the items that failed for good are listed (their
errors and ids are what one acts on), ``--items`` lists them all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..job_status import FINAL_FAILURES, JobStatus
from ..snapshot import JobState, RunSnapshot

ITEM_ORDER = (JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.PENDING, JobStatus.FAILED,
              JobStatus.TIMEOUT, JobStatus.CANCELLED, JobStatus.UPSTREAM_FAILED)
"""The order of the counts in a map's progress note."""
WORDS = {JobStatus.COMPLETED: "done"}


def map_progress(job: JobState, items: Sequence[JobState]) -> str:
    """``map ×N: 37 done, 2 failed`` from the items' statuses; ``map: not expanded yet``
    before the parent's list arrived."""
    if job.map_size is None:
        return "map" if job.status.is_terminal else "map: not expanded yet"
    counts = Counter(item.status for item in items)
    parts = [f"{counts[status]} {WORDS.get(status, status.value)}" for status in ITEM_ORDER
             if counts[status]]
    return f"map ×{job.map_size}" + (f": {', '.join(parts)}" if parts else "")


def item_shown(item: JobState, all_items: bool) -> bool:
    return all_items or item.status in FINAL_FAILURES


def grouped(snapshot: RunSnapshot, *, all_items: bool = False) -> list[tuple[JobState, bool]]:
    """The jobs to show, each with whether it is an item under its map: every job that
    is no item, in submission order, each map followed by its items shown (all with
    ``all_items``, else those that failed for good), in input order."""
    items = snapshot.items_of
    ids = {job.id for job in snapshot.jobs}
    rows: list[tuple[JobState, bool]] = []
    for job in snapshot.jobs:
        if job.map_of is not None and job.map_of in ids:
            continue
        rows.append((job, False))
        rows += [(item, True) for item in items.get(job.id, ()) if item_shown(item, all_items)]
    return rows


def maps_json(snapshot: RunSnapshot) -> list[dict[str, Any]]:
    """Each map of the run: ``id``, ``name``, ``item_param``, ``size`` (None until
    expanded), ``counts`` of its items per status (those with any) and ``progress``,
    the note ``workflow status`` prints."""
    items = snapshot.items_of
    maps = []
    for job in snapshot.jobs:
        if job.is_map:
            mine = items.get(job.id, ())
            counts = Counter(item.status.value for item in mine)
            maps.append({"id": job.id, "name": job.name, "item_param": job.map_param,
                         "size": job.map_size, "status": job.status.value,
                         "counts": {status.value: counts[status.value] for status in ITEM_ORDER
                                    if counts[status.value]},
                         "progress": map_progress(job, mine)})
    return maps


def map_fields(job: JobState) -> dict[str, Any]:
    """A job's map and tag fields in the JSON of a status."""
    return {"item_param": job.map_param, "map_size": job.map_size, "map_of": job.map_of,
            "map_index": job.map_index, "tags": list(job.tags)}
