"""Large DAGs: group nodes with counts per status, around/hops neighbourhoods, Mermaid."""

from __future__ import annotations

import time

import pytest
from support.jobs import fail, identity
from support.viz import svg_nodes, texts_of, tooltip_of

from gigq_flow import Worker, Workflow
from gigq_flow.errors import ConfigurationError, JobNotFoundError
from gigq_flow.viz import get_styles
from gigq_flow.viz.view import GROUP_THRESHOLD

pytestmark = pytest.mark.contract


def fan(n: int, *, failing: int = 0) -> tuple[Workflow, dict]:
    """start -> n x fetch -> merge; the first ``failing`` fetches fail."""
    wf = Workflow("fan")
    start = wf.add_task(identity, name="start")
    fetches = [
        wf.add_task(fail if i < failing else identity, name="fetch",
                    depends_on=[start], max_attempts=1)
        for i in range(n)
    ]
    merge = wf.add_task(identity, name="merge", depends_on=fetches)
    return wf, {"start": start, "fetches": fetches, "merge": merge}


def chain(names: list[str]) -> tuple[Workflow, dict]:
    wf = Workflow("chain")
    jobs: dict = {}
    previous = None
    for name in names:
        jobs[name] = wf.add_task(identity, name=name,
                                 depends_on=[previous] if previous else None)
        previous = jobs[name]
    return wf, jobs


def test_many_instances_collapse_into_a_group_with_counts(queue):
    wf, jobs = fan(GROUP_THRESHOLD + 20, failing=3)
    structure = wf.visualize().source
    assert structure.count("fetch ×120") == 1
    run = wf.submit(queue)
    with Worker(queue.db_path, concurrency=4, polling_interval=0.05):
        assert run.wait(timeout=60)
    picture = run.visualize()
    dot = picture.source
    assert "fetch ×120\\n117 completed · 3 failed" in dot
    assert dot.count("->") == 2  # start -> group -> merge
    nodes = svg_nodes(picture.svg())
    group = next(g for key, g in nodes.items() if key.startswith("group-"))
    assert texts_of(group) == ["fetch ×120", "117 completed · 3 failed"]
    assert "first error: RuntimeError: planned failure" in tooltip_of(group)
    # the group is striped in each status's colour, bordered in the most telling one
    styles = get_styles()
    assert f'fillcolor="{styles["completed"].fill};0.975:{styles["failed"].fill};0.025"' in dot
    fills = {p.get("fill") for p in group.iter() if p.get("fill")}
    assert {styles["completed"].fill, styles["failed"].fill} <= fills
    # merge was never run
    assert f'id="job-{jobs["merge"].id}"' in dot and "upstream_failed" in picture.summary


def test_grouping_threshold_can_be_changed_or_disabled():
    wf, _ = fan(10)
    assert "×10" not in wf.visualize().source
    assert "fetch ×10" in wf.visualize(group_threshold=5).source
    wf2, _ = fan(GROUP_THRESHOLD + 5)
    assert "×" not in wf2.visualize(group_threshold=None).source
    with pytest.raises(ConfigurationError, match="group_threshold"):
        wf.visualize(group_threshold=-1)


def test_around_draws_a_neighbourhood(queue):
    wf, jobs = chain(["a", "b", "c", "d", "e"])
    one = wf.visualize(around=jobs["c"], hops=1)
    names = {node.split("label=")[1].split()[0] for node in one.source.splitlines()
             if "label=" in node and "->" not in node and node.strip().startswith("j")}
    assert names == {"b", "c", "d"}
    assert "around c, 1 hops" in one.source
    two = wf.visualize(around="c", hops=2).source
    assert all(f'id="job-{jobs[n].id}"' in two for n in "abcde")
    zero = wf.visualize(around=jobs["a"].id, hops=0).source
    assert zero.count('id="job-') == 1
    run = wf.submit(queue)
    assert run.visualize(around="e", hops=1).source.count('id="job-') == 2
    with pytest.raises(JobNotFoundError):
        wf.visualize(around="nope")
    with pytest.raises(ConfigurationError, match="hops"):
        wf.visualize(around="c", hops=-1)


def test_around_a_name_shared_by_many_jobs_asks_for_the_job():
    wf, jobs = fan(3)
    with pytest.raises(ConfigurationError, match="3 jobs are named 'fetch'"):
        wf.visualize(around="fetch")
    assert wf.visualize(around=jobs["fetches"][0], hops=1).source.count('id="job-') == 3


def test_to_mermaid_has_nodes_edges_and_status_classes(queue):
    wf, _ = chain(["extract", "load"])
    text = wf.visualize().to_mermaid()
    assert text.splitlines()[1] == "flowchart TB"
    assert '    j0["extract"]:::not_submitted' in text
    assert "    j0 --> j1" in text
    run = wf.submit(queue)
    with Worker(queue.db_path, polling_interval=0.05):
        assert run.wait(timeout=20)
    mermaid = run.visualize(rankdir="LR").to_mermaid()
    assert "flowchart LR" in mermaid
    assert ":::completed" in mermaid
    completed = get_styles()["completed"]
    assert f"classDef completed fill:{completed.fill},stroke:{completed.border}" in mermaid
    assert "<br/>" in mermaid  # the duration line


def test_a_thousand_job_workflow_renders_in_a_few_seconds():
    wf = Workflow("thousand")
    layer: list = []
    for depth in range(10):
        layer = [
            wf.add_task(identity, name=f"step{depth}_{i}",
                        depends_on=[layer[i], layer[(i + 1) % 100]] if layer else None)
            for i in range(100)
        ]
    start = time.perf_counter()
    svg = wf.visualize(group_threshold=None).svg()
    elapsed = time.perf_counter() - start
    assert svg.count('class="node"') == 1000
    assert elapsed < 10, f"1,000-job render took {elapsed:.1f} s"

