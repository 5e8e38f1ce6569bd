"""Reused ("cached") steps of incremental runs in every picture and in the live panel:
drawn in their own style, labelled "completed · cached" with the job whose result they
took, counted in group nodes, in the legend once a run has one, marked on the timeline,
and in the panel's table, chips and graph. The runs are real: ``Workflow.run(queue,
cache=True)`` twice on worker threads of this process, on a SQLite file (see
support.viz.incremental_runs): what is drawn comes from the run's snapshot, whichever
backend filled it."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from support import jobs
from support.viz import (
    RAN,
    REUSED,
    count_in,
    etl,
    incremental_runs,
    panel_svg_nodes,
    shape_of,
    svg_nodes,
    table_rows,
    texts_of,
    tooltip_of,
)

from gigq_flow import Worker, Workflow
from gigq_flow.errors import ConfigurationError
from gigq_flow.job_status import JobStatus
from gigq_flow.snapshot import Attempt, JobState, RunSnapshot
from gigq_flow.viz import (
    CACHED,
    DEFAULT_STYLES,
    build_view,
    get_styles,
    reset_styles,
    set_style,
    style_for,
    to_dot,
    to_mermaid,
)
from gigq_flow.viz.styles import STRUCTURE_STYLE
from gigq_flow.viz.timeline import timeline_dot
from gigq_flow.viz.view import GROUP_THRESHOLD


@pytest.fixture(autouse=True)
def _default_styles():
    yield
    reset_styles()


@pytest.fixture
def runs(queue):
    return incremental_runs(queue)


def dot_line(dot: str, key: str) -> str:
    """The DOT statement of node ``key``."""
    return next(line for line in dot.splitlines() if line.startswith(f"\t{key} ["))


def short(job_id: str) -> str:
    return job_id[:8]


# -- the runs the tests draw ----------------------------------------------------------------
def test_the_second_run_reused_exactly_the_unchanged_steps(runs):
    states = {job.name: job for job in runs.second.snapshot().jobs}
    assert {name for name, job in states.items() if job.cached} == set(REUSED)
    for name in REUSED:
        assert states[name].cached_from == runs.source(name)
    assert not any(job.cached for job in runs.first.snapshot().jobs)


# -- the picture: DOT, SVG, Mermaid, legend ---------------------------------------------------
def test_reused_steps_draw_in_the_cached_style_and_say_so(runs):
    styles = get_styles()
    cached, completed = styles[CACHED], styles[JobStatus.COMPLETED]
    view = build_view(None, runs.second.snapshot())
    nodes = {node.name: node for node in view.nodes}
    dot = to_dot(view)
    for name in REUSED:
        node = nodes[name]
        assert node.look is CACHED and node.status is JobStatus.COMPLETED and node.cached == 1
        assert node.lines == (name, "cached")
        assert node.tooltip == f"{name}: completed · cached from job {short(runs.source(name))}"
        line = dot_line(dot, node.key)
        assert f'fillcolor="{cached.fill}"' in line and 'style="filled,dashed"' in line, line
    for name in RAN:
        node = nodes[name]
        assert node.look is JobStatus.COMPLETED and node.cached == 0
        assert node.tooltip == f"{name}: completed"
        line = dot_line(dot, node.key)
        assert f'fillcolor="{completed.fill}"' in line and "cached" not in line, line

    svg = svg_nodes(runs.second.visualize().svg())
    for name in REUSED:
        group = svg[f"job-{runs.second_jobs[name].id}"]
        shape = shape_of(group)
        assert (shape.get("fill"), shape.get("stroke"), shape.get("stroke-dasharray")) == (
            cached.fill, cached.border, cached.dasharray)
        assert texts_of(group) == [name, "cached"]
        assert tooltip_of(group) == (
            f"{name}: completed · cached from job {short(runs.source(name))}")
    for name in RAN:
        group = svg[f"job-{runs.second_jobs[name].id}"]
        shape = shape_of(group)
        assert (shape.get("fill"), shape.get("stroke-dasharray")) == (completed.fill, None)
        assert texts_of(group)[1].endswith(" s")
        assert tooltip_of(group) == f"{name}: completed"
    # a run that reused nothing draws exactly as before: no trace of the cache
    assert "cached" not in runs.first.visualize(legend=True).source


def test_the_legend_shows_cached_once_a_run_has_reused_a_result(runs):
    cached = get_styles()[CACHED]
    with_reuse = svg_nodes(runs.second.visualize(legend=True).svg())
    legend = [key for key in with_reuse if key.startswith("legend-")]
    assert legend == ["legend-pending", "legend-running", "legend-completed", "legend-cached",
                      "legend-failed", "legend-cancelled", "legend-timeout",
                      "legend-upstream_failed"]
    entry = with_reuse["legend-cached"]
    assert texts_of(entry) == ["cached"]
    assert (shape_of(entry).get("fill"), shape_of(entry).get("stroke-dasharray")) == (
        cached.fill, cached.dasharray)
    sideways = runs.second.visualize(legend=True, rankdir="LR").source
    assert sideways.index("legend_cached [") < sideways.index("legend_completed [")
    without = svg_nodes(runs.first.visualize(legend=True).svg())
    assert "legend-completed" in without and "legend-cached" not in without


def test_mermaid_gives_reused_steps_their_own_class(runs):
    cached = get_styles()[CACHED]
    mermaid = runs.second.visualize().to_mermaid()
    for name in REUSED:
        assert re.search(rf'\["{name}<br/>cached"\]:::cached$', mermaid, re.MULTILINE), mermaid
    for name in RAN:
        assert re.search(rf'\["{name}<br/>[\d.]+ s"\]:::completed$', mermaid, re.MULTILINE)
    assert (f"classDef cached fill:{cached.fill},stroke:{cached.border},stroke-width:2px,"
            f"color:{cached.font},stroke-dasharray:5 2;") in mermaid
    assert "cached" not in to_mermaid(build_view(None, runs.first.snapshot()))


def test_the_cached_style_is_overridden_like_a_status_style(runs):
    snapshot = runs.second.snapshot()
    picture = runs.second.visualize(styles={"cached": {"fill": "#123456"}})
    assert picture.source.count('fillcolor="#123456"') == len(REUSED)
    assert get_styles()[CACHED].fill != "#123456"  # that call only
    set_style("cached", border_style="dotted", symbol="~")
    assert style_for("cached").border_style == "dotted"
    assert style_for(CACHED).symbol == "~"
    assert to_dot(build_view(None, snapshot)).count('style="filled,dotted"') == len(REUSED)
    reset_styles()
    assert get_styles()[CACHED] == DEFAULT_STYLES[CACHED]
    with pytest.raises(ConfigurationError, match="shape of 'cached' must be one of"):
        set_style("cached", shape="blob")
    with pytest.raises(ConfigurationError, match="unknown status 'cache'.*or 'cached'"):
        runs.second.visualize(styles={"cache": {"fill": "#123456"}})
    assert get_styles()[CACHED] == DEFAULT_STYLES[CACHED]  # a refused change changes nothing


def test_groups_count_their_reused_members(queue):
    n = GROUP_THRESHOLD + 20

    def fan(changed: int) -> Workflow:
        """start -> n x fetch -> merge; the first ``changed`` fetches get other params."""
        wf = Workflow("fan")
        start = wf.add_task(jobs.identity, {"value": 0}, name="start")
        fetches = [wf.add_task(jobs.identity, {"value": i + (1000 if i < changed else 0)},
                               name="fetch", depends_on=[start]) for i in range(n)]
        wf.add_task(jobs.identity, name="merge", depends_on=fetches)
        return wf

    styles = get_styles()
    cached, completed = styles[CACHED], styles[JobStatus.COMPLETED]
    first = fan(0).run(queue, cache=True, progress=False)
    assf = first.visualize().source
    assert f"fetch ×{n}\\n{n} completed" in assf and "cached" not in assf

    second = fan(20).run(queue, cache=True, progress=False)
    picture = second.visualize(legend=True)
    dot = picture.source
    assert f"fetch ×{n}\\n{n} completed (100 cached)" in dot
    group = dot_line(dot, "g1")
    # striped: the 20 that ran, then the 100 reused; bordered as completed (they differ)
    assert f'fillcolor="{completed.fill};0.167:{cached.fill};0.833"' in group
    assert 'style=striped' in group and f'color="{completed.border}"' in group
    svg = svg_nodes(picture.svg())
    node = next(g for key, g in svg.items() if key.startswith("group-"))
    assert texts_of(node) == [f"fetch ×{n}", f"{n} completed (100 cached)"]
    assert f"{n} jobs — {n} completed (100 cached)" in tooltip_of(node)
    assert "legend-cached" in svg  # the reused start node and the group's members
    assert second.snapshot().summary().endswith(f"{n + 2} completed (101 cached)")

    third = fan(20).run(queue, cache=True, progress=False)  # nothing changed: all reused
    dot = third.visualize().source
    assert f"fetch ×{n}\\n{n} completed ({n} cached)" in dot
    group = dot_line(dot, "g1")
    assert f'fillcolor="{cached.fill};1.000"' in group
    assert 'style="striped,dashed"' in group and f'penwidth={cached.penwidth:g}' in group
    assert f'fillcolor="{cached.fill}"' in dot_line(dot, f"j{n + 1}")  # merge: reused too


# -- the timeline ----------------------------------------------------------------------------
def test_the_timeline_marks_reused_steps(queue, runs):
    styles = get_styles()
    cached, completed = styles[CACHED], styles[JobStatus.COMPLETED]
    attempts = {attempt.job_id: attempt for attempt in runs.second.attempts()}
    assert len(attempts) == len(runs.second_jobs)  # one attempt each, reused or not
    svg = runs.second.timeline().svg()
    nodes = svg_nodes(svg)
    for name in REUSED:
        # a reused step was claimed and completed at once: a completed attempt of no length
        attempt = attempts[runs.second_jobs[name].id]
        assert attempt.status == "completed" and attempt.end >= attempt.start
        bar = nodes[f"attempt-{attempt.id}"]
        assert bar.get("class").split()[-3:] == ["attempt", "completed", "cached"]
        assert shape_of(bar).get("fill") == cached.fill
        assert f"completed · cached from job {short(runs.source(name))}" in tooltip_of(bar)
        assert texts_of(nodes[f"cached-{attempt.id}"]) == ["cached"]
    for name in RAN:
        attempt = attempts[runs.second_jobs[name].id]
        bar = nodes[f"attempt-{attempt.id}"]
        assert "cached" not in bar.get("class").split()
        assert shape_of(bar).get("fill") == completed.fill
        assert "cached" not in tooltip_of(bar)
        assert f"cached-{attempt.id}" not in nodes
    # rows per worker mix jobs: the bars keep their style, with no word beside them
    by_worker = svg_nodes(runs.second.timeline(by="worker").svg())
    marked = [key for key, g in by_worker.items() if "cached" in g.get("class").split()]
    assert len(marked) == len(REUSED)
    assert not [key for key in by_worker if key.startswith("cached-")]
    # a run that reused every step still draws
    wf, _ = etl(5)
    again = wf.run(queue, cache=True, progress=False)
    every = svg_nodes(again.timeline().svg())
    assert len([key for key in every if key.startswith("cached-")]) == len(runs.second_jobs)
    assert "cached" not in runs.first.timeline().source


def test_only_the_attempt_that_reused_a_result_is_marked():
    """A step that failed, then reused a result on its retry: its first bar stays failed."""
    t0 = datetime(2024, 1, 1, 12, 0, 0)
    state = JobState("j1", "fetch", "m.f", JobStatus.COMPLETED, 2, 2, t0.isoformat(),
                     (t0 + timedelta(seconds=2)).isoformat(), None, None, cached_from="src" * 4)
    snapshot = RunSnapshot("w", "retry", (state,), ())
    attempts = [
        Attempt("e1", "j1", "fetch", 1, "w1", "failed", t0, t0 + timedelta(seconds=1), "boom"),
        Attempt("e2", "j1", "fetch", 2, "w1", "completed", t0 + timedelta(seconds=2),
                t0 + timedelta(seconds=2), ""),
    ]
    dot = timeline_dot(snapshot, attempts)
    first = next(line for line in dot.splitlines() if 'id="attempt-e1"' in line)
    second = next(line for line in dot.splitlines() if 'id="attempt-e2"' in line)
    assert 'class="attempt failed"' in first and "cached" not in first
    assert 'class="attempt completed cached"' in second
    assert "cached from job srcsrcsr" in second
    assert dot.count('label="cached"') == 1


# -- views of hand-built snapshots -----------------------------------------------------------
def _state(job_id: str, name: str, status: str = "completed",
           cached_from: str | None = None) -> JobState:
    return JobState(job_id, name, "m.f", JobStatus(status), 1, 1, "2024-01-01T00:00:00",
                    "2024-01-01T00:00:01", None, None, cached_from)


def test_views_of_hand_built_snapshots():
    snapshot = RunSnapshot("w", "hand", (
        _state("a", "load", cached_from="x" * 36),
        _state("b", "odd", status="pending", cached_from="y" * 36),  # not completed: not cached
        _state("c1", "fetch", cached_from="s1"), _state("c2", "fetch", cached_from="s2"),
        _state("c3", "fetch"), _state("c4", "fetch", status="failed"),
        _state("d1", "parse", cached_from="p1"), _state("d2", "parse", cached_from="p2"),
        _state("d3", "parse", cached_from="p3"),
    ), ())
    view = build_view(None, snapshot, group_threshold=0)
    nodes = {node.name: node for node in view.nodes}
    load, odd, fetch, parse = nodes["load"], nodes["odd"], nodes["fetch"], nodes["parse"]
    assert (load.look, load.lines) == (CACHED, ("load", "cached"))
    assert load.tooltip == "load: completed · cached from job xxxxxxxx"
    assert (odd.look, odd.cached, odd.tooltip) == (JobStatus.PENDING, 0, "odd: pending")
    # a mixed group: bordered by its most telling status, striped by look, counted
    assert fetch.look is JobStatus.FAILED and fetch.cached == 2
    assert fetch.bands() == ((JobStatus.COMPLETED, 1), (CACHED, 2), (JobStatus.FAILED, 1))
    assert fetch.lines[1] == "3 completed (2 cached) · 1 failed"
    assert parse.look is CACHED and parse.lines[1] == "3 completed (3 cached)"
    assert view.cached == 6
    compact = {node.name: node for node in build_view(None, snapshot, compact=True).nodes}
    assert compact["load"].lines == ("load",) and compact["load"].look is CACHED


def test_every_symbol_is_a_latin1_character_every_font_has():
    """A glyph outside Latin-1 (the stopwatch timeout had) shows as a missing-glyph box
    where the font lacks it: in a browser, a terminal or a picture."""
    for key, style in [*DEFAULT_STYLES.items(), ("not submitted", STRUCTURE_STYLE)]:
        symbol = style.symbol
        assert len(symbol) == 1 and symbol.isprintable() and ord(symbol) < 256, (key, symbol)
    symbols = [style.symbol for style in DEFAULT_STYLES.values()]
    assert len(set(symbols)) == len(symbols)


def test_cached_reads_apart_from_completed_and_pending_without_colour():
    def luminance(colour: str) -> float:
        red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * red + 0.7152 * green + 0.0722 * blue

    cached = DEFAULT_STYLES[CACHED]
    completed = DEFAULT_STYLES[JobStatus.COMPLETED]
    pending = DEFAULT_STYLES[JobStatus.PENDING]
    assert cached.border == completed.border and cached.shape == completed.shape  # one family
    assert luminance(cached.fill) > luminance(completed.fill)  # lighter
    assert (cached.border_style, completed.border_style) == ("dashed", "solid")
    assert cached.symbol != completed.symbol
    assert cached.penwidth > pending.penwidth  # the other dashed box: a thinner grey border
    assert CACHED == "cached" and str(CACHED) == "cached" and CACHED.value == "cached"


# -- the live panel --------------------------------------------------------------------------
def test_the_panel_shows_reused_steps(runs):
    pytest.importorskip("ipywidgets")
    styles = get_styles()
    cached, completed = styles[CACHED], styles[JobStatus.COMPLETED]
    panel = runs.second.widget(autostart=False)  # finished: nothing to follow
    try:
        rows = {row["name"]: row for row in table_rows(panel)}
        for name in REUSED:
            assert rows[name]["status"] == f"{cached.symbol} completed · cached"
        for name in RAN:
            assert rows[name]["status"] == f"{completed.symbol} completed"
        marked = dict(re.findall(r'<tr data-job="([^"]+)" data-status="completed" '
                                 r'data-cached="([^"]+)"', panel.table.value))
        assert marked == {runs.second_jobs[name].id: runs.source(name) for name in REUSED}
        # the chips: 4 completed, 2 of them reused, in the cached style
        assert count_in(panel, "completed") == 4 and count_in(panel, "cached") == 2
        assert panel.cached == 2
        chip = panel.count_labels["cached"]
        assert chip.layout.display == "" and cached.fill in chip.value
        assert f"{cached.symbol} cached" in chip.value
        # the graph
        nodes = panel_svg_nodes(panel)
        for name in REUSED:
            group = nodes[f"job-{runs.second_jobs[name].id}"]
            assert group.get("class").split() == ["node", "completed", "cached"]
            shape = shape_of(group)
            assert (shape.get("fill"), shape.get("stroke-dasharray")) == (
                cached.fill, cached.dasharray)
            assert "completed · cached from job" in tooltip_of(group)
        for name in RAN:
            group = nodes[f"job-{runs.second_jobs[name].id}"]
            assert group.get("class").split() == ["node", "completed"]
            assert shape_of(group).get("fill") == completed.fill
    finally:
        panel.close()

    plain = runs.first.widget(autostart=False)
    try:
        assert count_in(plain, "cached") == 0
        assert plain.count_labels["cached"].layout.display == "none"
        assert "cached" not in plain.table.value and "cached" not in plain.graph_view.value
    finally:
        plain.close()

    restyled = runs.second.widget(autostart=False, styles={"cached": {"fill": "#123456"}})
    try:
        nodes = panel_svg_nodes(restyled)
        fills = {shape_of(nodes[f"job-{runs.second_jobs[name].id}"]).get("fill")
                 for name in REUSED}
        assert fills == {"#123456"} and "#123456" in restyled.count_labels["cached"].value
    finally:
        restyled.close()


def test_the_live_panel_restyles_a_step_when_it_is_reused(queue):
    pytest.importorskip("ipywidgets")
    key = f"cached-{uuid.uuid4().hex[:8]}"

    def gated(gate: str) -> tuple[Workflow, dict]:
        wf = Workflow("gated")
        made = {"extract": wf.add_task(jobs.identity, {"value": 1}, name="extract")}
        made["hold"] = wf.add_task(jobs.block_until_released, {"key": gate}, name="hold",
                                   depends_on=[made["extract"]])
        return wf, made

    jobs.event(f"{key}-1:release").set()
    wf, _ = gated(f"{key}-1")
    assert wf.run(queue, cache=True, progress=False).done
    wf, made = gated(f"{key}-2")  # extract is reused; hold's params changed: it runs
    run = wf.submit(queue, cache=True)
    panel = run.widget(autostart=False)  # laid out while every job is pending
    cached = get_styles()[CACHED]
    try:
        assert count_in(panel, "pending") == 2
        assert panel.count_labels["cached"].layout.display == "none"
        with Worker(queue.db_path, polling_interval=0.05):
            assert jobs.event(f"{key}-2:started").wait(20)
            panel.refresh()  # extract reused, hold running
            rows = {row["name"]: row for row in table_rows(panel)}
            assert rows["extract"]["status"] == f"{cached.symbol} completed · cached"
            assert rows["hold"]["status"].endswith(" running")
            nodes = panel_svg_nodes(panel)
            extract = nodes[f"job-{made['extract'].id}"]
            assert extract.get("class").split() == ["node", "completed", "cached"]
            assert shape_of(extract).get("fill") == cached.fill
            assert count_in(panel, "cached") == 1
            assert panel.count_labels["cached"].layout.display == ""
            jobs.event(f"{key}-2:release").set()
            assert run.wait(timeout=20)
        panel.refresh()
        rows = {row["name"]: row for row in table_rows(panel)}
        assert rows["hold"]["status"] == f"{get_styles()['completed'].symbol} completed"
        hold = panel_svg_nodes(panel)[f"job-{made['hold'].id}"]
        assert hold.get("class").split() == ["node", "completed"]
        assert (count_in(panel, "completed"), count_in(panel, "cached")) == (2, 1)
    finally:
        jobs.event(f"{key}-2:release").set()
        panel.close()
