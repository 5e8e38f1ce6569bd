"""What the visualization tests share: a run with a job in every status, a workflow run
twice with the cache, and readers of the SVG graphviz draws and of the live panel."""

from __future__ import annotations

import html
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gigq_flow import Job, JobQueue, Worker, Workflow, WorkflowRun
from support import jobs
from support.helpers import wait_until

SVG = "{http://www.w3.org/2000/svg}"

EXPECTED = {
    "extract": "completed", "transform": "failed", "load": "upstream_failed",
    "retry": "completed", "slow": "timeout", "skipped": "cancelled",
    "hold": "running", "after": "pending",
}


@dataclass
class EveryStatus:
    """A run with a job in each of the seven statuses, held there until ``release()``."""

    queue: JobQueue
    workflow: Workflow
    run: Any
    worker: Worker
    key: str
    jobs: dict[str, Job] = field(default_factory=dict)

    def statuses(self) -> dict[str, str]:
        return {job.name: job.status.value for job in self.run.snapshot().jobs}

    def release(self) -> None:
        jobs.event(f"{self.key}-hold:release").set()
        jobs.event(f"{self.key}-slow:release").set()

    def finish(self) -> None:
        self.release()
        self.run.wait(timeout=20)
        self.worker.stop(wait=True, timeout=10)


def every_status_run(queue: JobQueue, make_worker: Callable[..., Worker]) -> EveryStatus:
    """Submit, cancel one job, start 4 worker threads, wait until all 7 statuses show.
    The worker comes from ``make_worker`` (the fixture), so that it is stopped at the end
    of the test even when the run never reaches every status."""
    key = f"viz-{uuid.uuid4().hex[:8]}"
    wf = Workflow("every-status")
    made = {}
    made["extract"] = wf.add_task(jobs.identity, {"value": 1}, name="extract")
    made["transform"] = wf.add_task(jobs.fail, {"message": "boom: bad row\nsecond line"},
                                    name="transform", max_attempts=1,
                                    depends_on=[made["extract"]])
    made["load"] = wf.add_task(jobs.identity, name="load", depends_on=[made["transform"]])
    made["retry"] = wf.add_task(jobs.flaky, {"key": key}, name="retry", max_attempts=2)
    made["slow"] = wf.add_task(jobs.block_until_released, {"key": f"{key}-slow"},
                               name="slow", timeout=0.5, max_attempts=1)
    made["skipped"] = wf.add_task(jobs.identity, name="skipped")
    made["hold"] = wf.add_task(jobs.block_until_released, {"key": f"{key}-hold"}, name="hold")
    made["after"] = wf.add_task(jobs.identity, name="after", depends_on=[made["hold"]])
    run = wf.submit(queue)
    assert queue.cancel(made["skipped"].id)
    worker = make_worker(queue.db_path, worker_id="vizw", concurrency=4, polling_interval=0.05)
    worker.start_background()
    state = EveryStatus(queue, wf, run, worker, key, made)
    wait_until(lambda: state.statuses() == EXPECTED, what=f"every status ({state.statuses()})")
    return state


def svg_nodes(svg: str) -> dict[str, ET.Element]:
    """SVG id -> <g> element of every node."""
    root = ET.fromstring(svg)
    return {g.get("id"): g for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "")}


def shape_of(group: ET.Element) -> ET.Element:
    """The first filled shape of a node group (graphviz nests it in <a> with a tooltip)."""
    for element in group.iter():
        if element.tag in (f"{SVG}polygon", f"{SVG}ellipse", f"{SVG}path") \
                and element.get("fill") not in (None, "none"):
            return element
    raise AssertionError("node has no filled shape")


def texts_of(group: ET.Element) -> list[str]:
    return [t.text or "" for t in group.iter(f"{SVG}text")]


def tooltip_of(group: ET.Element) -> str:
    for element in group.iter(f"{SVG}a"):
        title = element.get("{http://www.w3.org/1999/xlink}title")
        if title:
            return title
    title = group.find(f"{SVG}title")
    return title.text if title is not None else ""


# -- incremental runs -----------------------------------------------------------------------
REUSED = ("extract", "side")
"""The steps of :func:`etl` that its second run reuses."""
RAN = ("transform", "load")
"""The steps of :func:`etl` that its second run runs again."""


def etl(factor: int) -> tuple[Workflow, dict[str, Job]]:
    """extract -> transform(factor) -> load, and extract -> side. Changing ``factor``
    changes transform's params: with the cache, extract and side are reused, transform
    runs, and load runs because its parent's result changed."""
    wf = Workflow("etl")
    made = {"extract": wf.add_task(jobs.identity, {"value": 1}, name="extract")}
    made["transform"] = wf.add_task(jobs.identity, {"value": factor}, name="transform",
                                    depends_on=[made["extract"]])
    made["load"] = wf.add_task(jobs.identity, {"value": 3}, name="load",
                               depends_on=[made["transform"]])
    made["side"] = wf.add_task(jobs.identity, {"value": 4}, name="side",
                               depends_on=[made["extract"]])
    return wf, made


@dataclass
class Incremental:
    """The runs of :func:`incremental_runs`: the first ran every step, the second reused
    :data:`REUSED` from it."""

    first: WorkflowRun
    second: WorkflowRun
    first_jobs: dict[str, Job]
    second_jobs: dict[str, Job]

    def source(self, name: str) -> str:
        """The job of the first run whose result the second run's ``name`` reused."""
        return self.first_jobs[name].id


def incremental_runs(queue: JobQueue) -> Incremental:
    """:func:`etl` run twice with ``cache=True`` on worker threads; the second run changes
    transform's params."""
    wf, first_jobs = etl(2)
    first = wf.run(queue, cache=True, progress=False, workers=2)
    wf2, second_jobs = etl(5)
    second = wf2.run(queue, cache=True, progress=False, workers=2)
    assert first.done and second.done
    return Incremental(first, second, first_jobs, second_jobs)


def node_count(dot: str) -> int:
    """How many nodes a DOT source draws (a job's ``j<i>``, a group's ``g<i>``)."""
    return len(re.findall(r"^\s+[gj]\d+ \[", dot, re.MULTILINE))


# -- the live panel -------------------------------------------------------------------------
def count_in(panel: Any, key: str) -> int:
    """The number on the panel's chip of a status (or of ``cached``)."""
    return int(re.search(r"<b>(\d+)</b>", panel.count_labels[key].value).group(1))


def table_rows(panel: Any) -> list[dict[str, str]]:
    """The table as dicts of column -> cell text (tags stripped, entities decoded)."""
    body = panel.table.value.split("<tbody>")[1].split("</tbody>")[0]
    rows = []
    for row in re.findall(r"<tr [^>]*>(.*?)</tr>", body, re.DOTALL):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell))
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        rows.append(dict(zip(("name", "status", "attempts", "started", "duration", "worker",
                              "error"), cells, strict=True)))
    return rows


def panel_svg_nodes(panel: Any) -> dict[str, ET.Element]:
    """SVG id -> <g> element of every node of the panel's graph."""
    return svg_nodes(panel.graph_view.value.split(">", 1)[1].rsplit("</div>", 1)[0])
