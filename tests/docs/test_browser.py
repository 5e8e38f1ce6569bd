"""The live panel as a person sees it: notebooks/01_quickstart.ipynb served by Voilà and
opened in a real Chromium driven by Playwright.

Voilà runs the notebook in a fresh ipykernel and shows its outputs, widgets included, in
the browser. ``--progressive_rendering=True`` makes it show each cell's outputs as the
cell runs (by default it sends the page only once every cell has run, when the run would
already be over). The test follows the panel while the notebook's background workers
run the pipeline and checks what is on screen: the progress moves through intermediate
states, the bar reaches its end, every graph node is painted in the completed colour of
:mod:`gigq_flow.viz.styles`, the table lists every job, and the notebook's own
assertion cells ran without an error. Screenshots go to tests/artifacts/.

Chromium comes from Debian's packages (``apt-get install chromium``; .ci/run installs
it); Playwright drives it through ``executable_path``, so ``playwright install`` is not
needed. Without Chromium the test skips and says so.

A second check opens tests/docs/pages/step_output.ipynb (two steps: one printing a line
every quarter second, one failing) and selects steps with the mouse: a click on the
failed step's row shows its traceback under the table, a click on the running step's
node in the graph shows its output, which grows while the step runs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support.helpers import REPO_ROOT
from support.processes import alive, descendants

from gigq_flow.viz.styles import get_styles

NOTEBOOK = REPO_ROOT / "notebooks" / "01_quickstart.ipynb"
STEP_OUTPUT_PAGE = REPO_ROOT / "tests" / "docs" / "pages" / "step_output.ipynb"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
JOBS = ["load_orders", "total_north", "total_south", "total_east", "total_west", "report"]
SERVER_START_TIMEOUT = 20.0
PANEL_TIMEOUT = 30.0
"""From page load to the panel on screen: kernel start plus the cells before the run."""
RUN_TIMEOUT = 30.0
"""From the panel on screen to every job shown completed (the run takes about 4 s)."""
POLL_SECONDS = 0.1
LAST_OUTPUT = "Every assertion in this notebook held."
"""What the notebook's last cell prints (Voilà goes on after a failed cell, and shows
"There was an error when executing cell [n]" in its place)."""

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"Chromium is not installed at {CHROMIUM}: the browser check "
                              "needs Debian's chromium package (apt-get install -y chromium; "
                              ".ci/run installs it)"),
    pytest.mark.timeout(120),
]

# One read of the panel, as rendered in the page (None until it is on screen).
READ_PANEL = r"""
() => {
  const graph = document.querySelector('.gigq-flow-graph');
  if (!graph) return null;
  const panel = graph.closest('.widget-vbox');
  const bar = panel.querySelector('.widget-hprogress .progress-bar');
  const texts = Array.from(panel.querySelectorAll('.widget-html-content'),
                           (e) => e.textContent.trim());
  const nodes = Array.from(graph.querySelectorAll('g.node'), (g) => {
    const shape = g.querySelector('polygon, ellipse, rect');
    return {
      label: Array.from(g.querySelectorAll('text'), (t) => t.textContent).join(' '),
      cls: g.getAttribute('class'),
      fill: shape ? getComputedStyle(shape).fill : null,
    };
  });
  const rows = Array.from(panel.querySelectorAll('table.gigq-flow-jobs tbody tr'), (tr) => ({
    name: tr.cells[0].textContent.trim(),
    status: tr.dataset.status,
    shown: tr.cells[1].textContent.trim(),
  }));
  return {
    progress: texts.find((t) => /^\d+ \/ \d+ finished$/.test(t)) || null,
    width: bar ? bar.style.width : null,
    barClass: bar ? bar.className : null,
    nodes, rows,
  };
}
"""


def rgb(colour: str) -> str:
    """``#c7ebd9`` -> ``rgb(199, 235, 217)``, as the browser's computed style gives it."""
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"voila exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"voila did not listen on port {port} within {SERVER_START_TIMEOUT} s:\n"
                f"{log.read_text()[-3000:]}")


@pytest.fixture
def voila_url(tmp_path: Path):
    """The quickstart notebook served by Voilà on a free localhost port."""
    with served(NOTEBOOK, tmp_path) as url:
        yield url


@pytest.fixture
def step_output_url(tmp_path: Path):
    """The step-output page served by Voilà on a free localhost port."""
    with served(STEP_OUTPUT_PAGE, tmp_path) as url:
        yield url


@contextmanager
def served(notebook: Path, tmp_path: Path) -> Iterator[str]:
    """``notebook`` served by Voilà; stopped, its kernel included, at the end."""
    pytest.importorskip("voila", reason="voila is not installed (pip install -e '.[dev]')")
    port = free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the notebook's queue file goes there
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "voila", str(notebook.relative_to(REPO_ROOT)),
             "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
             "--progressive_rendering=True"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server, log)
        yield f"http://127.0.0.1:{port}/"
        spawned = descendants(server.pid)  # the notebook's kernel
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail(f"voila did not stop on SIGTERM:\n{log.read_text()[-3000:]}")
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in spawned if alive(pid)], "voila left its kernel running"


def test_the_live_panel_in_chromium(voila_url: str):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    completed_fill = rgb(get_styles()["completed"].fill)
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            try:
                reads = follow_the_panel(page, voila_url)
                final = reads[-1]
                # the notebook's later cells (results and their assertions) ran, without error
                page.wait_for_function(
                    f"() => document.body.innerText.includes({LAST_OUTPUT!r})", timeout=30_000)
                body = page.inner_text("body")
            finally:
                page.set_viewport_size({"width": 1280, "height": 4000})  # the whole notebook
                page.wait_for_timeout(300)
                page.screenshot(path=str(ARTIFACTS / "browser_quickstart.png"), full_page=True)
            panel = page.locator(".widget-vbox", has=page.locator(".gigq-flow-graph")).first
            panel.screenshot(path=str(ARTIFACTS / "browser_quickstart_panel.png"))
        finally:
            browser.close()

    # live: the panel was on screen before the run ended and moved through the middle
    progress = [finished_of(read) for read in reads]
    assert progress == sorted(progress), progress
    assert progress[0] < len(JOBS), f"the panel appeared only once the run was over: {progress}"
    assert any(0 < done < len(JOBS) for done in progress), f"no intermediate state: {progress}"
    widths = [read["width"] for read in reads]
    assert len(set(widths)) >= 3, f"the progress bar did not move live: {widths}"
    # the end: full bar in the success style
    assert final["progress"] == f"{len(JOBS)} / {len(JOBS)} finished"
    assert final["width"] == "100%" and "progress-bar-success" in final["barClass"], final
    # the graph: every job a node painted in the completed colour
    labels = sorted(node["label"] for node in final["nodes"])
    assert labels == sorted(JOBS), labels
    for node in final["nodes"]:
        assert "completed" in node["cls"].split(), node
        assert node["fill"] == completed_fill, (node, completed_fill)
    assert not any("finished" in node["label"] for node in final["nodes"])
    # the table: every job, completed
    assert [row["name"] for row in final["rows"]] == JOBS
    assert all(row["status"] == "completed" and row["shown"].endswith("completed")
               for row in final["rows"]), final["rows"]
    assert "Traceback" not in body and "There was an error" not in body
    print(f"browser check: {time.monotonic() - started:.1f} s; progress seen {progress}")


def follow_the_panel(page, url: str) -> list[dict]:
    """Distinct reads of the panel from its appearance until every job is completed."""
    page.goto(url, wait_until="commit", timeout=SERVER_START_TIMEOUT * 1000)
    deadline = time.monotonic() + PANEL_TIMEOUT
    read = None
    while read is None or read["progress"] is None:
        if time.monotonic() > deadline:
            pytest.fail(f"the panel did not appear within {PANEL_TIMEOUT} s:\n"
                        f"{page.inner_text('body')[-2000:]}")
        page.wait_for_timeout(POLL_SECONDS * 1000)
        read = page.evaluate(READ_PANEL)
    reads = [read]
    midway = False
    deadline = time.monotonic() + RUN_TIMEOUT
    while not (read["progress"] == f"{len(JOBS)} / {len(JOBS)} finished"
               and read["width"] == "100%" and len(read["rows"]) == len(JOBS)
               and all(node["fill"] for node in read["nodes"])
               and all(row["status"] == "completed" for row in read["rows"])):
        if time.monotonic() > deadline:
            pytest.fail(f"the panel did not reach the end within {RUN_TIMEOUT} s; "
                        f"last read: {read}")
        page.wait_for_timeout(POLL_SECONDS * 1000)
        read = page.evaluate(READ_PANEL)
        if read != reads[-1]:
            reads.append(read)
            if not midway and 0 < finished_of(read) < len(JOBS):
                midway = True  # what a person sees while the run goes on
                panel = page.locator(".widget-vbox", has=page.locator(".gigq-flow-graph"))
                panel.first.screenshot(path=str(ARTIFACTS / "browser_quickstart_midway.png"))
    return reads


def finished_of(read: dict) -> int:
    match = re.match(r"(\d+) / (\d+) finished", read["progress"] or "")
    assert match, read
    return int(match.group(1))


# The panel's output area and the rows' statuses, as rendered in the page.
READ_OUTPUT = r"""
() => {
  const rows = Object.fromEntries(Array.from(
    document.querySelectorAll('table.gigq-flow-jobs tbody tr'),
    (tr) => [tr.cells[0].textContent.trim(), {status: tr.dataset.status,
      error: tr.cells[6].textContent.trim(), selected: tr.getAttribute('aria-selected')}]));
  const pre = document.querySelector('pre.gigq-flow-output');
  return {rows, output: pre ? pre.textContent : null,
          outputStatus: pre ? pre.dataset.status : null};
}
"""


def test_selecting_a_step_shows_its_output_in_chromium(step_output_url: str):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    ARTIFACTS.mkdir(exist_ok=True)
    started = time.monotonic()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(step_output_url, wait_until="commit",
                      timeout=SERVER_START_TIMEOUT * 1000)
            # the failed step: a click on its row shows its traceback
            wait_for(page, lambda read: read["rows"].get("breaker", {}).get("status")
                     == "failed", "the breaker step to fail", PANEL_TIMEOUT)
            page.locator("table.gigq-flow-jobs tbody tr", has_text="breaker").first \
                .locator("td").first.click()
            # the output and the row's selection reach the page in separate updates
            failed = wait_for(page, lambda read: "Traceback" in (read["output"] or "")
                              and read["rows"]["breaker"]["selected"] == "true",
                              "the traceback of the failed step, its row selected", 10)
            assert failed["rows"]["breaker"]["error"] == "ValueError: broken on purpose"
            assert failed["rows"]["breaker"]["selected"] == "true"
            assert failed["output"].startswith("about to break\n"), failed["output"]
            assert failed["output"].rstrip().endswith("ValueError: broken on purpose")
            assert failed["outputStatus"] == "failed"
            page.locator(".widget-vbox", has=page.locator(".gigq-flow-graph")).first \
                .screenshot(path=str(ARTIFACTS / "browser_step_output_failed.png"))
            # the running step: a click on its node shows its output, which grows
            page.locator(".gigq-flow-graph g.node", has_text="talker").first.click()
            first = wait_for(page, lambda read: read["outputStatus"] == "running"
                             and "line 0" in (read["output"] or ""),
                             "the running step's first lines", 10)
            grown = wait_for(page, lambda read: read["outputStatus"] == "running" and
                             lines(read["output"]) > lines(first["output"]),
                             "the running step's output to grow", 10)
            assert grown["output"].startswith(first["output"])
            assert grown["rows"]["talker"]["selected"] == "true"
            assert grown["rows"]["breaker"]["selected"] is None
            page.locator(".widget-vbox", has=page.locator(".gigq-flow-graph")).first \
                .screenshot(path=str(ARTIFACTS / "browser_step_output_running.png"))
        finally:
            browser.close()
    print(f"step output check: {time.monotonic() - started:.1f} s; "
          f"{lines(first['output'])} then {lines(grown['output'])} lines")


def lines(text: str | None) -> int:
    return len((text or "").splitlines())


def wait_for(page, predicate, what: str, timeout: float) -> dict:
    """The first read of the page's panel for which ``predicate`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        read = page.evaluate(READ_OUTPUT)
        if predicate(read):
            return read
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s; last read: {read}")
        page.wait_for_timeout(POLL_SECONDS * 1000)
