"""``ParentResults`` (what a job with dependencies receives as ``parent_results``) and
the grouping of values by task name that it and ``WorkflowRun.results()`` share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def group_by_name(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """name -> value; a name shared by several entries maps to the list of their values,
    in the order given."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


class ParentResults(dict):
    """Parent job id -> result, in dependency order (GigQ's shape), plus ``by_name``.

    ``by_name`` maps each parent's task name to its result; a name shared by several
    parents maps to the list of their results, in dependency order.
    """

    def __init__(self, entries: list[tuple[str, str | None, Any]]) -> None:
        super().__init__((job_id, result) for job_id, _, result in entries)
        self.by_name: dict[str, Any] = group_by_name(
            (name, result) for _, name, result in entries if name is not None
        )
