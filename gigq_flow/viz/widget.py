"""The live panel: an ipywidgets view of a run that a background thread keeps current.

It reads the run's status snapshots (``WorkflowRun.snapshot()``, then only the jobs
written since the last), never in-memory worker state, so it follows workers in other
processes and opens on old runs from another kernel. The graph is laid out once; a
refresh restyles only the nodes and rows whose state changed (a map: :mod:`.maps`).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from datetime import datetime
from typing import Any, Protocol

import ipywidgets as widgets

from ..checks import check_number
from ..errors import JobNotFoundError
from ..job_status import JobStatus
from ..snapshot import Attempt, JobState, RunSnapshot
from .dot import to_digraph
from .jobtable import JobTable
from .livesvg import LiveSvg
from .maps import map_summary, maps_over
from .render import render
from .stepout import PANEL_CLASS, PICK_ATTRIBUTE, PICK_CLASS, output_html
from .styles import DEFAULT_RANKDIR, StyleOverrides, get_styles
from .summary import RunSummary
from .view import (
    GROUP_THRESHOLD,
    GraphView,
    build_view,
    group_node,
    job_node,
    map_node,
)

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.5
"""Seconds between refreshes of the background thread."""
MAX_GRAPH_NODES = 2000
"""Above this many nodes (after grouping) the panel leaves its graph out."""
STOP_TIMEOUT = 5.0
OUTPUT_READ_INTERVAL = 1.0
"""Seconds between reads of a running selected step's output: the worker stores it
about once a second, so reading it more often would read the same text."""


class LiveRun(Protocol):
    """What the panel reads of a run (``WorkflowRun`` is one)."""

    id: str
    name: str

    def snapshot(self, since: RunSnapshot | None = None) -> RunSnapshot:
        """The run's state now; with ``since``, read from what changed since it (the
        jobs that did in ``changes``)."""
        ...

    def attempts(self) -> list[Attempt]: ...

    def logs(self, step: str) -> str:
        """What the job ``step`` (an id) printed and logged in its latest attempt, then
        its traceback if that attempt failed."""
        ...

    def cancel(self) -> int:
        """End every unfinished step of the run, running ones included; how many."""
        ...

    def close(self) -> None:
        """Close the calling thread's connection to the queue."""
        ...


class RunPanel(widgets.VBox):
    """A live view of a run: progress (finished of total), a count per status in its
    colour (and of the completed jobs that reused an earlier result, once there is one),
    the DAG coloured by status, a table of jobs and, once a step is selected (a click on
    its row or its node, or ``select()``), the selected step's output. The "Cancel run"
    button (``cancel_button``) ends every unfinished step (``run.cancel()``), running
    ones included; it is disabled once the run is done.

    A daemon thread refreshes it every ``interval`` seconds, makes a last refresh
    and stops once every job is terminal; ``refresh()`` refreshes by hand, ``stop()``
    stops the thread, ``start()`` restarts it, ``close()`` stops and removes the panel.
    Errors while refreshing show in the panel and the thread keeps trying.
    ``graph=False`` leaves out the picture; ``rankdir``, ``styles`` and
    ``group_threshold`` shape it as in ``visualize()``.

    A map is one node and one table row, with its items' progress. Selecting the map
    (a click on its row or node, or ``select("square")``) lists its items under its row
    (at most :data:`~.jobtable.MAP_ROWS_SHOWN`, the failed ones first) and shows its
    items per status and the errors of its failed items in the output area; selecting
    an item (``select("square[3]")``) shows that item's output.

    The output area under the table shows what the selected step printed and logged
    in its latest attempt, then its traceback once it failed. While the step runs the
    thread reads its output again at most every :data:`OUTPUT_READ_INTERVAL` seconds;
    it reads nothing of the steps that are not selected.
    """

    def __init__(
        self,
        run: LiveRun,
        *,
        interval: float = DEFAULT_INTERVAL,
        graph: bool = True,
        table: bool = True,
        rankdir: str = DEFAULT_RANKDIR,
        styles: StyleOverrides | None = None,
        group_threshold: int | None = GROUP_THRESHOLD,
        renderer: str = "auto",
        autostart: bool = True,
    ) -> None:
        self.run = run
        self.interval = float(check_number("interval", interval, inclusive=False,
                                           kind="a number of seconds"))
        self.styles = get_styles(styles)
        self.rankdir = rankdir
        self.group_threshold = group_threshold
        self.renderer = renderer
        self.refreshes = 0
        """How many refreshes have completed."""
        self.last_refresh: datetime | None = None
        self.last_error: str | None = None
        self.snapshot: RunSnapshot | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._states: dict[str, JobState] = {}
        self._running: set[str] = set()
        self._table = JobTable(self.styles, self.run.attempts)
        self._over: dict[str, str] = {}
        """map id -> the name of the job it maps over (read at the first refresh)."""
        self._view: GraphView | None = None
        self._live: LiveSvg | None = None
        self._members: dict[str, tuple[str, ...]] = {}
        self._labels: dict[str, str] = {}
        self._selected: str | None = None
        self._output_read = 0.0
        self.output_text = ""
        """The selected step's output (and traceback) as last read; "" when none is."""
        self._cancelling = False
        self._cancel_note = ""

        self.header = widgets.HTML(
            value=f'<b>{html.escape(run.name)}</b> <span style="color:#888">{run.id}</span>')
        self.cancel_button = widgets.Button(
            description="Cancel run", icon="stop", button_style="danger",
            tooltip="End every unfinished step of this run, running ones included",
            layout=widgets.Layout(width="auto", margin="0 0 0 12px"))
        self.cancel_button.on_click(self._on_cancel)
        self._summary = RunSummary(self.styles)
        self.progress = self._summary.progress
        self.progress_text = self._summary.progress_text
        self.count_labels = self._summary.count_labels
        self.graph_view = widgets.HTML(layout=widgets.Layout(display="" if graph else "none"))
        self.table = widgets.HTML(layout=widgets.Layout(display="" if table else "none"))
        self.output = widgets.HTML(layout=widgets.Layout(display="none"))
        """The selected step's output area (hidden while no step is selected)."""
        self._pick = widgets.Text(layout=widgets.Layout(display="none"))
        self._pick.add_class(PICK_CLASS)
        self._pick.observe(self._on_pick, names="value")
        self.error_box = widgets.HTML(layout=widgets.Layout(display="none"))
        self.status_line = widgets.HTML()
        self._show_graph = graph
        self._show_table = table
        super().__init__(children=[
            widgets.HBox([self.header, self.cancel_button],
                         layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.progress, self.progress_text]),
            widgets.HBox(list(self.count_labels.values()),
                         layout=widgets.Layout(flex_flow="row wrap")),
            self.error_box, self.graph_view, self.table, self.output, self._pick,
            self.status_line,
        ])
        self.add_class(PANEL_CLASS)
        self._safe_refresh()
        if autostart and not self.done:
            self.start()

    # -- state --------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once a refresh has seen every job terminal."""
        return self.snapshot is not None and self.snapshot.done

    @property
    def counts(self) -> dict[str, int]:
        """Jobs per status at the last refresh."""
        return dict(self.snapshot.counts) if self.snapshot else {}

    @property
    def cached(self) -> int:
        """Completed jobs that reused an earlier result, at the last refresh."""
        return self.snapshot.cached if self.snapshot is not None else 0

    @property
    def running(self) -> bool:
        """True while the background thread is refreshing."""
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start (or restart) the background refresh."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"gigq-flow-panel-{self.run.id[:8]}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = STOP_TIMEOUT) -> None:
        """Stop the background refresh (the panel stays on screen)."""
        if not hasattr(self, "_stop"):  # closed while half-built (ipywidgets' __del__)
            return
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def close(self) -> None:
        """Stop refreshing and close the panel and its widgets."""
        self.stop()
        if hasattr(self, "_stop"):
            for child in self._descendants():
                child.close()
        super().close()

    def _descendants(self) -> list[widgets.Widget]:
        found: list[widgets.Widget] = []
        stack = list(self.children)
        while stack:
            widget = stack.pop()
            found.append(widget)
            stack.extend(getattr(widget, "children", ()))
        return found

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                if self._safe_refresh():
                    break
        finally:
            try:
                self.run.close()  # this thread's connection
            except Exception:
                logger.debug("closing the panel thread's connection failed", exc_info=True)
            self._set_status_line()

    def _safe_refresh(self) -> bool:
        try:
            return self.refresh()
        except Exception:  # shown in the panel by refresh(); the thread keeps going
            logger.debug("panel refresh failed", exc_info=True)
            return False

    # -- one refresh --------------------------------------------------------------------
    def refresh(self) -> bool:
        """Read the run now and update what changed; True when every job is terminal.

        An error is shown in the panel, then raised.
        """
        with self._lock:
            try:
                done = self._refresh()
            except Exception as exc:
                self._show_error(exc)
                raise
            if self.last_error is not None:
                self.last_error = None
                self.error_box.value = ""
                self.error_box.layout.display = "none"
            self.refreshes += 1
            self.last_refresh = datetime.now()
            self.cancel_button.disabled = done or self._cancelling
            self._set_status_line()
            return done

    def _refresh(self) -> bool:
        last = self.snapshot
        snapshot = self.run.snapshot() if last is None else self.run.snapshot(since=last)
        previous, running = self._states, self._running
        if last is not None and snapshot.changes is not None:  # only what changed was read
            changed = list(snapshot.changes)
            self._states = {**previous, **{job.id: job for job in changed}} if changed \
                else previous
            self._running = (running - {job.id for job in changed}) | {
                job.id for job in changed if job.status is JobStatus.RUNNING}
        else:  # read whole
            changed = [job for job in snapshot.jobs if previous.get(job.id) != job]
            self._states = {job.id: job for job in snapshot.jobs}
            self._running = {job.id for job in snapshot.jobs if job.status is JobStatus.RUNNING}
        first = last is None
        if first:
            self._over = maps_over(snapshot)
        try:
            if changed or first:
                self._summary.update(snapshot)
                if self._show_graph:
                    self._update_graph(snapshot, changed)
            if self._show_table and (changed or self._running or first):
                self._update_table(snapshot, {job.id for job in changed} | self._running)
            selected = self._selected
            if selected is not None and (
                    any(selected in (job.id, job.map_of) for job in changed) or (
                    selected in self._running
                    and time.monotonic() - self._output_read >= OUTPUT_READ_INTERVAL)):
                self._show_output(self._states[selected], snapshot)
        except BaseException:
            self._states, self._running = previous, running  # the next refresh redoes these
            raise
        self.snapshot = snapshot
        return snapshot.done

    # -- graph --------------------------------------------------------------------------
    def _update_graph(self, snapshot: RunSnapshot, changed: list[JobState]) -> None:
        if self._view is None:
            self._layout(snapshot)
            return
        if self._live is None:
            return
        node_of_job = self._view.node_of_job
        # an item, even one expanded after the layout, is drawn by its map's node
        drawn = (job.map_of if job.map_of is not None and job.map_of in node_of_job
                 else job.id for job in changed)
        keys = {node_of_job[job_id] for job_id in drawn if job_id in node_of_job}
        nodes = [self._node(key, snapshot) for key in sorted(keys)]
        if self._live.update(nodes):
            self.graph_view.value = self._wrap_svg(self._live.svg())

    def _layout(self, snapshot: RunSnapshot) -> None:
        view = build_view(None, snapshot, rankdir=self.rankdir, compact=True,
                          group_threshold=self.group_threshold)
        self._view = view
        self._members = {node.key: node.job_ids for node in view.nodes}
        self._labels = {node.key: node.name for node in view.nodes}
        if not view.nodes or len(view.nodes) > MAX_GRAPH_NODES:
            self.graph_view.value = (
                "<i>no jobs to draw</i>" if not view.nodes else
                f"<i>graph left out: {len(view.nodes)} nodes; draw parts of it with "
                "run.visualize(around=job, hops=k)</i>")
            return
        try:
            svg = render(to_digraph(view, layout_only=True).source, "svg",
                         renderer=self.renderer).decode("utf-8")
            live = LiveSvg(svg, self.styles)
        except Exception as exc:
            self._live = None
            self.graph_view.value = (
                f'<div style="color:#8a1c12">cannot draw the graph: {html.escape(str(exc))}</div>')
            return
        live.update(view.nodes)
        self._live = live
        self.graph_view.value = self._wrap_svg(live.svg())

    def _node(self, key: str, snapshot: RunSnapshot) -> Any:
        members = self._members[key]
        first = self._states[members[0]]
        if key.startswith("g"):
            return group_node(key, self._labels[key], members, self._states, True)
        if first.is_map:
            return map_node(key, first.id, first.name, first,
                            snapshot.items_of.get(first.id, ()), self._over.get(first.id))
        return job_node(key, first.id, first.name, "", first, True)

    @staticmethod
    def _wrap_svg(svg: str) -> str:
        return (f'<div class="gigq-flow-graph" style="max-height:520px;overflow:auto"'
                f"{PICK_ATTRIBUTE}>{svg}</div>")

    # -- the selected step's output -----------------------------------------------------
    @property
    def selected(self) -> str | None:
        """The id of the step whose output the panel shows, or None."""
        return self._selected

    def select(self, step: Any) -> None:
        """Show the output of ``step`` (a Job, a job id or the name of one task of this run)
        under the table, kept current while it runs; None hides the output area.

        JobNotFoundError (a KeyError) when the run has no such step, or more than one of
        that name.
        """
        with self._lock:
            job_id = None if step is None else self._resolve(step)
            previous, self._selected = self._selected, job_id
            if job_id is None:
                self.output_text = ""
                self.output.value = ""
                self.output.layout.display = "none"
            else:
                self._show_output(self._states[job_id], self.snapshot)
            if self.snapshot is not None and previous != job_id and self._show_table:
                self._update_table(self.snapshot, set())
            if self._pick.value != (job_id or ""):
                self._pick.value = job_id or ""

    def _resolve(self, step: Any) -> str:
        job_id = getattr(step, "id", step)
        if isinstance(job_id, str) and job_id in self._states:
            return job_id
        named = [job.id for job in self._states.values() if job.name == step]
        if len(named) == 1:
            return named[0]
        if named:
            raise JobNotFoundError(f"{len(named)} steps of {self.run.name!r} are named "
                                   f"{step!r}; select one by its id: {', '.join(named)}")
        raise JobNotFoundError(f"{step!r} is not a step of {self.run.name!r}; select a Job, "
                               "a job id or a task name of this run")

    def _show_output(self, job: JobState, snapshot: RunSnapshot | None) -> None:
        self._output_read = time.monotonic()
        if job.is_map:  # a map prints nothing: its items' progress and failures
            items = snapshot.items_of.get(job.id, ()) if snapshot is not None else ()
            text = map_summary(job, items, self._over.get(job.id))
        else:
            text = self.run.logs(job.id) if job.attempts else ""
        self.output_text = text
        self.output.value = output_html(job, text)
        self.output.layout.display = ""

    def _on_pick(self, change: dict[str, Any]) -> None:
        """A click in the page selected a step (its id came through the hidden box)."""
        job_id = change["new"] or None
        if job_id == self._selected:
            return
        try:
            self.select(job_id)
        except Exception as exc:  # a comm callback: show it rather than lose it
            logger.debug("selecting %r failed", job_id, exc_info=True)
            with self._lock:
                self._show_error(exc, "selecting a step")

    # -- cancelling ---------------------------------------------------------------------
    def _on_cancel(self, _button: widgets.Button) -> None:
        """The "Cancel run" button: end every unfinished step, then refresh. A failure
        shows in the panel (and stays in the status line); nothing reaches the notebook."""
        with self._lock:
            if self._cancelling or self.done:
                return
            self._cancelling = True
            self.cancel_button.disabled = True
        try:
            count = self.run.cancel()
        except Exception as exc:
            logger.debug("cancelling run %s failed", self.run.id, exc_info=True)
            with self._lock:
                self._show_error(exc, "cancelling the run")
                self._cancel_note = f"cancel failed: {self.last_error}"
        else:
            self._cancel_note = f"cancelled {count} step{'' if count == 1 else 's'}"
            self._cancelling = False
            self._safe_refresh()
        with self._lock:  # also when cancel() or the refresh failed
            self._cancelling = False
            self.cancel_button.disabled = self.done
            self._set_status_line()

    # -- table --------------------------------------------------------------------------
    def _update_table(self, snapshot: RunSnapshot, dirty: set[str]) -> None:
        value = self._table.html(snapshot, dirty, self._selected)
        if value != self.table.value:
            self.table.value = value

    # -- status line and errors ---------------------------------------------------------
    def _show_error(self, exc: BaseException, doing: str = "refresh") -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        when = datetime.now().strftime("%H:%M:%S")
        retry = (f"; retrying every {self.interval:g} s"
                 if self.running and doing == "refresh" else "")
        self.error_box.value = (
            f'<div class="gigq-flow-error" style="color:#8a1c12;background:#fdecea;'
            f'padding:4px 8px">{doing} failed at {when}: {html.escape(self.last_error)}{retry}'
            "</div>")
        self.error_box.layout.display = ""

    def _set_status_line(self) -> None:
        when = self.last_refresh.strftime("%H:%M:%S") if self.last_refresh else "never"
        if self.done:
            state = "finished"
        elif self.running and not self._stop.is_set():
            state = f"refreshing every {self.interval:g} s"
        else:
            state = "not refreshing (call refresh() or start())"
        note = f" · {html.escape(self._cancel_note)}" if self._cancel_note else ""
        self.status_line.value = (
            f'<span style="color:#666;font-size:11px">last update {when} · {state}{note}'
            "</span>")

    def __repr__(self) -> str:
        summary = self.snapshot.summary() if self.snapshot else self.run.id
        return f"<RunPanel {summary}>"

