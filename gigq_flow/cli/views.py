"""The text views of GigQ's commands: the lines of ``status``, the tables of ``list`` and
``stats``.

Their words and their order are GigQ 0.5.1's, on a terminal and in a pipe alike, so
that scripts written for ``gigq`` read them (``grep -oP 'Status: \\K.*'``); tables are
drawn as GigQ draws them (``+---+`` rules, ``|`` between cells), and a terminal also shows
each status in its colour. What gigq_flow adds comes after GigQ's lines: the function,
priority, workflow, dependencies, description and unreadable fields after GigQ's fields,
extra columns after GigQ's columns, the ``upstream_failed`` count among the statuses.
``--json`` is the complete record.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment, SegmentLines
from rich.table import Table
from rich.text import Text

from .common import console, status_word

NO_TIME = "-"
TRACEBACK_INDENT = "    "
"""Before each line of an attempt's traceback under its row of ``--show-executions``."""


def format_time(value: str | None) -> str:
    """A stored timestamp as ``YYYY-MM-DD HH:MM:SS``; ``-`` when unset; any other text
    as it is (GigQ's rendering)."""
    if not value:
        return NO_TIME
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        return str(value)


def field(label: str, value: str | Text) -> Text:
    """One ``Label: value`` line."""
    return Text.assemble(f"{label}: ", value)


def table(*columns: str) -> Table:
    """A table drawn as GigQ draws its tables: ``+---+`` rules above and below the
    header and below the last row, ``|`` around every cell."""
    grid = Table(*columns, box=box.ASCII2, show_edge=True, pad_edge=True, padding=(0, 1),
                 header_style="bold")
    for column in grid.columns:
        column.overflow = "fold"
    return grid


def listing(values: Any) -> str:
    return ", ".join(map(str, values)) if isinstance(values, list) else str(values or "")


def _indented(value: Any) -> list[Text]:
    """A dict as one ``  key: value`` line per key, anything else as one indented line
    (values as Python prints them, as GigQ does)."""
    if isinstance(value, dict):
        return [Text(f"  {key}: {item}") for key, item in value.items()]
    return [Text(f"  {value}")]


def _map_line(info: dict[str, Any]) -> str:
    """A map's size and item parameter, or an item's place in its map."""
    if info.get("map_of"):
        return f"item {info['map_index']} of map {info['map_of']}"
    if info.get("map_param"):
        size = info.get("map_size")
        items = "not expanded yet" if size is None else f"{size} item(s)"
        return f"{items}, each called with {info['map_param']}=<element>"
    return ""


def job_view(info: dict[str, Any], *, params: bool = False, result: bool = False,
             executions: bool = False) -> list[RenderableType]:
    """``status``: GigQ's fields, gigq_flow's, then the sections asked for."""
    lines: list[RenderableType] = [
        field("Job", f"{info['name']} ({info['id']})"),
        field("Status", status_word(info["status"])),
        field("Created", format_time(info["created_at"])),
        field("Updated", format_time(info["updated_at"])),
        field("Started", format_time(info["started_at"])),
        field("Completed", format_time(info["completed_at"])),
        field("Attempts", f"{info['attempts'] or 0} / {info['max_attempts']}"),
    ]
    optional = [
        ("Worker", info["worker_id"]),
        ("Error", info["error"]),
        ("Function", f"{info['function_module']}.{info['function_name']}"),
        ("Priority", str(info["priority"])),
        ("Workflow", info.get("workflow_id")),
        ("Depends on", listing(info["dependencies"])),
        ("Tags", listing(info.get("tags") or [])),
        ("Map", _map_line(info)),
        ("Description", info["description"]),
        ("Unreadable", "; ".join(info.get("decode_errors", ()))),
    ]
    lines += [field(label, str(value)) for label, value in optional if value]
    if params and info["params"]:
        lines += [Text(""), Text("Parameters:"), *_indented(info["params"])]
    if result and info["result"] is not None:
        lines += [Text(""), Text("Result:"), *_indented(info["result"])]
    if executions:
        lines += [Text(""), Text("Executions:" if info["executions"] else
                                 "Executions: none yet")]
        if info["executions"]:
            lines.append(executions_view(info["executions"]))
    return lines


def execution_cells(execution: dict[str, Any]) -> list[Text]:
    return [Text(execution["id"]), Text(format_time(execution["started_at"])),
            Text(format_time(execution["completed_at"])), status_word(execution["status"]),
            Text(execution["worker_id"] or ""), Text(execution["error"] or "")]


def executions_table(executions: list[dict[str, Any]]) -> Table:
    """GigQ's columns (ID, Started, Completed, Status), then Worker and Error."""
    rows = table("ID", "Started", "Completed", "Status", "Worker", "Error")
    for execution in executions:
        rows.add_row(*execution_cells(execution))
    return rows


def executions_view(executions: list[dict[str, Any]]) -> Table | ExecutionsView:
    """GigQ's table; when an attempt has a traceback, the same table with the traceback
    indented under the attempt's row."""
    if not any(execution.get("traceback") for execution in executions):
        return executions_table(executions)
    return ExecutionsView(executions)


class ExecutionsView:
    """The executions table cut after each row that has a traceback, the traceback's
    lines in between: the table's lines stay as GigQ draws them."""

    def __init__(self, executions: list[dict[str, Any]]) -> None:
        self.executions = executions
        self.table = executions_table(executions)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.parts(console, options)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def parts(self, console: Console,
              options: ConsoleOptions | None = None) -> list[RenderableType]:
        """Runs of the table's lines (SegmentLines) and tracebacks (Text), in order."""
        options = options or console.options
        drawn = console.render_lines(self.table, options, pad=False)
        rules = [i for i, line in enumerate(drawn) if Segment.get_line_length(line)
                 and "".join(segment.text for segment in line).startswith("+")]
        top = "".join(segment.text for segment in drawn[rules[0]])
        widths = [len(cell) - 2 for cell in top.strip("+").split("+")]  # padding 1 a side
        parts: list[RenderableType] = []
        start, end = 0, rules[1] + 1  # the top rule, the header and the rule below it
        for execution in self.executions:
            end += max(len(console.render_lines(
                cell, options.update(width=max(1, width), overflow="fold", no_wrap=False),
                pad=False)) for cell, width in zip(execution_cells(execution), widths,
                                                   strict=True))
            if execution.get("traceback"):
                parts.append(SegmentLines(drawn[start:end], new_lines=True))
                parts.append(Text("\n".join(TRACEBACK_INDENT + line for line in
                                            execution["traceback"].splitlines())))
                start = end
        parts.append(SegmentLines(drawn[start:], new_lines=True))
        return parts


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    """``list``: GigQ's columns (ID, Name, Status, Priority, Created, Updated), then
    Attempts."""
    rows = table("ID", "Name", "Status", "Priority", "Created", "Updated", "Attempts")
    for job in jobs:
        rows.add_row(job["id"], job["name"], status_word(job["status"]), str(job["priority"]),
                     format_time(job["created_at"]), format_time(job["updated_at"]),
                     f"{job['attempts'] or 0}/{job['max_attempts']}")
    return rows


def stats_table(counts: dict[str, int]) -> Table:
    """``stats``: a row per status, in the order of ``JobStatus`` (GigQ's six, then
    ``upstream_failed``), then ``total``."""
    rows = table("Status", "Count")
    for status, count in counts.items():
        rows.add_row(status_word(status) if status != "total" else "total", str(count))
    return rows


def show(items: Iterable[RenderableType]) -> None:
    """Print a view: lines never wrap (a script reads each whole); tables fit the
    terminal, and in a pipe keep one line per row however wide, as GigQ's do."""
    out = console()
    views = list(items)
    if not out.is_terminal:
        unbounded = out.options.update_width(10**6)
        widest = [Measurement.get(out, unbounded, view).maximum for view in views
                  if isinstance(view, (Table, ExecutionsView))]
        out.width = max([out.width, *widest])
    for view in views:
        parts = view.parts(out) if isinstance(view, ExecutionsView) else [view]
        for part in parts:
            out.print(part, soft_wrap=isinstance(part, Text))
