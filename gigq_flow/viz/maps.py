"""A map (``Workflow.map``) as the views show it: one node whose label counts its items
by status (``square ×120`` over ``37 done, 2 failed``), coloured by the map's own
status (running while items run), and the text of its progress and failures.

A map's :class:`Progress` is counted in one pass over its items: the panel counts a
map of ten thousand items on each refresh where one of them changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..job_status import JobStatus
from ..snapshot import JobState, RunSnapshot
from .text import counts_text, first_line

MAP_FAILURES_LISTED = 20
"""The panel's summary of a selected map lists at most this many failed items."""
# After "done", the item states a map's label counts (pending items are the rest).
_SHOWN = (JobStatus.RUNNING, JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.CANCELLED,
          JobStatus.UPSTREAM_FAILED)
_FAILURES = (JobStatus.FAILED, JobStatus.TIMEOUT)


@dataclass(frozen=True)
class Progress:
    """A submitted map's items, counted."""

    counts: dict[JobStatus, int]
    """Items per status."""
    cached: int
    """Completed items that reused an earlier result."""
    size: int | None
    """How many items the map has; None until it expanded."""
    status: JobStatus
    """The map's own status; running while it waits for items that run."""
    error: str
    """The first failed item's error (``square[3]: ValueError: ...``), else the map's
    own (a failed item's error says more than the upstream failure it caused)."""

    @property
    def listed(self) -> tuple[tuple[JobStatus, int], ...]:
        """The non-zero counts in the order of the statuses."""
        return tuple((status, self.counts[status]) for status in JobStatus
                     if self.counts.get(status))

    def text(self) -> str:
        """``37 done (10 cached), 2 failed, 1 running`` (the pending items are the rest)."""
        done = f"{self.counts.get(JobStatus.COMPLETED, 0)} done" + (
            f" ({self.cached} cached)" if self.cached else "")
        return ", ".join([done] + [f"{self.counts[s]} {s.value}" for s in _SHOWN
                                   if self.counts.get(s)])


def progress_of(state: JobState, items: Sequence[JobState]) -> Progress:
    """Count a map's items (one pass)."""
    counts: dict[JobStatus, int] = {}
    cached = 0
    error = ""
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
        if item.cached_from is not None and item.status is JobStatus.COMPLETED:
            cached += 1
        elif not error and item.status in _FAILURES and item.error:
            error = f"{item.name}: {first_line(item.error)}"
    if state.map_size is not None:
        size: int | None = state.map_size
    elif items:
        size = len(items)
    else:  # an empty list completes the map at once, without expanding it
        size = 0 if state.status is JobStatus.COMPLETED else None
    status = state.status
    if status is JobStatus.PENDING and counts.get(JobStatus.RUNNING):
        status = JobStatus.RUNNING
    return Progress(counts, cached, size, status, error or first_line(state.error))


def maps_over(snapshot: RunSnapshot) -> dict[str, str]:
    """Map id -> the name of the job whose list it maps over (its parent that is not
    one of its items)."""
    jobs = {job.id: job for job in snapshot.jobs}
    found: dict[str, list[str]] = {}
    for parent, child in snapshot.edges:
        if child in jobs and jobs[child].is_map and parent in jobs \
                and jobs[parent].map_of != child:
            found.setdefault(child, []).append(jobs[parent].name)
    return {map_id: ", ".join(names) for map_id, names in found.items()}


def head(name: str, size: int | None) -> str:
    """``square ×120``; ``square ×?`` while the number of items is not known."""
    return f"{name} ×{'?' if size is None else size}"


def map_lines(name: str, state: JobState | None, progress: Progress | None,
              over: str | None) -> tuple[str, str]:
    """The two lines of a map's node: its name and size, then its items' progress (or,
    before it expanded, what it maps over)."""
    if state is None or progress is None:
        return head(name, None), f"map over {over}" if over else "map"
    if progress.size is None:
        waiting = state.status is JobStatus.PENDING and over
        return head(name, None), f"waiting for {over}" if waiting else state.status.value
    return head(name, progress.size), progress.text() if progress.size else "no items"


def reserve_lines(name: str, size: int | None) -> tuple[str, str]:
    """Lines as wide as a map's label gets, to lay its node out once (the live panel)."""
    digits = "0" * max(3, len(str(size or 0)))
    return f"{name} ×{digits}", f"{digits} done, {digits} failed, {digits} running"


def map_tooltip(name: str, state: JobState | None, progress: Progress | None,
                over: str | None) -> str:
    """What a map's node says on hover."""
    source = f"{over}'s list" if over else "its parent's list"
    if state is None or progress is None:
        return f"{name}: one job per element of {source}, known once it completes"
    if progress.size is None:
        text = f"{name}: a map over {source}, {state.status.value}"
    else:
        text = (f"{name}: a map of {progress.size} items — "
                f"{counts_text(progress.listed, progress.cached) or 'none'}")
    return first_line(f"{text}; first error: {progress.error}" if progress.error else text)


def map_summary(state: JobState, items: Sequence[JobState], over: str | None) -> str:
    """The panel's text for a selected map: its items per status, then its failed items
    with their errors (select an item to see its output)."""
    progress = progress_of(state, items)
    source = f"the list of {over}" if over else "its parent's list"
    if progress.size is None:
        lines = [f"a map over {source}: not expanded ({state.status.value})"]
    else:
        lines = [f"a map over {source}: {progress.size} items",
                 counts_text(progress.listed, progress.cached) or "no items"]
    if state.error:
        lines.append(f"error: {first_line(state.error)}")
    failed = [item for item in items if item.status in _FAILURES]
    if failed:
        lines.append(f"failed items ({len(failed)}; select one to see its output):")
        lines.extend(f"  {item.name}: {first_line(item.error) or item.status.value}"
                     for item in failed[:MAP_FAILURES_LISTED])
        if len(failed) > MAP_FAILURES_LISTED:
            lines.append(f"  ... and {len(failed) - MAP_FAILURES_LISTED} more")
    return "\n".join(lines)
