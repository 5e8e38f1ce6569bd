"""``ParentResults``: what a job with dependencies receives as ``parent_results``."""

from __future__ import annotations

from typing import Any


class ParentResults(dict):
    """Parent job id -> result, in dependency order (GigQ's shape), plus ``by_name``.

    ``by_name`` maps each parent's task name to its result; a name shared by several
    parents maps to the list of their results, in dependency order.
    """

    def __init__(self, entries: list[tuple[str, str | None, Any]]) -> None:
        super().__init__((job_id, result) for job_id, _, result in entries)
        grouped: dict[str, list[Any]] = {}
        for _, name, result in entries:
            if name is not None:
                grouped.setdefault(name, []).append(result)
        self.by_name: dict[str, Any] = {
            name: results[0] if len(results) == 1 else results
            for name, results in grouped.items()
        }
