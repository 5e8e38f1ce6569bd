"""visualize(): DOT and SVG of a run in every status, stable output, labels, tooltips."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import jobs
from support.helpers import subprocess_env
from support.viz import (
    EXPECTED,
    shape_of,
    svg_nodes,
    texts_of,
    tooltip_of,
)

from gigq_flow import Workflow
from gigq_flow.viz import build_view, get_styles, reset_styles, set_style, to_dot

pytestmark = pytest.mark.contract


@pytest.fixture(autouse=True)
def _default_styles():
    yield
    reset_styles()


def test_svg_of_a_run_in_every_status_has_its_colours_labels_and_tooltips(every_status):
    styles = get_styles()
    nodes = svg_nodes(every_status.run.visualize().svg())
    for name, status in EXPECTED.items():
        group = nodes[f"job-{every_status.jobs[name].id}"]
        style = styles[status]
        shape = shape_of(group)
        assert (shape.get("fill"), shape.get("stroke")) == (style.fill, style.border), name
        if style.dasharray:
            assert shape.get("stroke-dasharray") == style.dasharray, name
        else:
            assert shape.get("stroke-dasharray") is None, name
        assert texts_of(group)[0] == name
    # the failed job's tooltip is the first line of its error, its label its duration
    failed = nodes[f"job-{every_status.jobs['transform'].id}"]
    assert tooltip_of(failed) == "RuntimeError: boom: bad row"
    assert texts_of(failed)[1].endswith(" s")
    timed_out = nodes[f"job-{every_status.jobs['slow'].id}"]
    assert "timed out" in tooltip_of(timed_out)
    upstream = nodes[f"job-{every_status.jobs['load'].id}"]
    assert "transform" in tooltip_of(upstream)
    # attempts show only above one; a running job shows no (moving) duration
    assert texts_of(nodes[f"job-{every_status.jobs['retry'].id}"])[1].endswith("2 attempts")
    assert texts_of(nodes[f"job-{every_status.jobs['extract'].id}"])[1].endswith(" s")
    assert texts_of(nodes[f"job-{every_status.jobs['hold'].id}"]) == ["hold"]
    assert texts_of(nodes[f"job-{every_status.jobs['after'].id}"]) == ["after"]


def test_states_differ_by_border_or_shape_not_only_by_colour():
    looks = {(s.border_style, round(s.penwidth), s.shape) for s in get_styles().values()}
    assert len(looks) == len(get_styles())


def test_dot_is_stable_for_the_same_state(every_status):
    first = every_status.run.visualize(legend=True).source
    again = every_status.run.visualize(legend=True).source
    assert first == again
    reopened = every_status.queue.get_workflow(every_status.run.id).visualize(legend=True)
    assert reopened.source == first
    # nodes in submission order, edges after them in order
    lines = [line.strip() for line in first.splitlines()]
    keys = [line.split()[0] for line in lines if line.startswith("j") and "->" not in line]
    assert keys == [f"j{i}" for i in range(len(EXPECTED))]


def test_dot_is_the_same_in_another_process(every_status, db_path):
    every_status.release()
    every_status.run.wait(timeout=20)
    here = every_status.run.visualize().source
    code = (
        "import sys; from gigq_flow import JobQueue; "
        f"sys.stdout.write(JobQueue({str(db_path)!r}).get_workflow({every_status.run.id!r})"
        ".visualize().source)"
    )
    for seed in ("1", "2"):
        env = {**subprocess_env(), "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60, check=True).stdout
        assert out == here


def test_structure_before_submission_then_status_after(queue):
    wf = Workflow("two-steps")
    a = wf.add_task(jobs.identity, {"value": 1}, name="first")
    wf.add_task(jobs.identity, name="second", depends_on=[a])
    before = wf.visualize()
    assert "not submitted" in before.summary
    nodes = svg_nodes(before.svg())
    assert shape_of(nodes[f"job-{a.id}"]).get("fill") == "#ffffff"
    assert tooltip_of(nodes[f"job-{a.id}"]) == "support.jobs.identity"
    wf.submit(queue)
    after = svg_nodes(wf.visualize().svg())
    assert shape_of(after[f"job-{a.id}"]).get("fill") == get_styles()["pending"].fill


def test_options_rankdir_legend_and_overridden_styles(queue):
    wf = Workflow("opts")
    a = wf.add_task(jobs.identity, name="a")
    wf.add_task(jobs.identity, name="b", depends_on=[a])
    run = wf.submit(queue)
    picture = run.visualize(rankdir="LR", legend=True, styles={"pending": {"fill": "#123456"}})
    assert "rankdir=LR" in picture.source
    nodes = svg_nodes(picture.svg())
    assert shape_of(nodes[f"job-{a.id}"]).get("fill") == "#123456"
    assert {f"legend-{s}" for s in EXPECTED.values()} <= set(nodes)
    # process-wide override, used by every view until reset
    set_style("pending", fill="#abcdef", border_style="dotted")
    assert shape_of(svg_nodes(run.visualize().svg())[f"job-{a.id}"]).get("fill") == "#abcdef"
    reset_styles()
    assert shape_of(svg_nodes(run.visualize().svg())[f"job-{a.id}"]).get("fill") == "#f2f2f2"


def test_bad_options_name_the_fix(queue):
    from gigq_flow.errors import ConfigurationError

    wf = Workflow("bad")
    wf.add_task(jobs.identity, name="a")
    with pytest.raises(ConfigurationError, match="rankdir"):
        wf.visualize(rankdir="UP")
    with pytest.raises(ConfigurationError, match="unknown status"):
        wf.visualize(styles={"done": {"fill": "#000000"}})
    with pytest.raises(ConfigurationError, match="unknown style field"):
        wf.visualize(styles={"failed": {"colour": "#000000"}})
    with pytest.raises(ConfigurationError, match="shape"):
        set_style("failed", shape="blob")


def test_save_infers_the_format_and_visualize_writes_files(queue, tmp_path):
    wf = Workflow("files")
    a = wf.add_task(jobs.identity, name="a")
    wf.add_task(jobs.identity, name="b", depends_on=[a])
    run = wf.submit(queue)
    picture = run.visualize()
    magic = {"svg": b"<?xml", "png": b"\x89PNG", "pdf": b"%PDF"}
    for fmt, head in magic.items():
        written = picture.save(tmp_path / f"dag.{fmt}")
        assert written == str(tmp_path / f"dag.{fmt}")
        assert (tmp_path / f"dag.{fmt}").read_bytes().startswith(head)
    assert picture.save(tmp_path / "dag.dot") and "digraph" in (tmp_path / "dag.dot").read_text()
    assert "flowchart" in (tmp_path / picture.save(tmp_path / "dag.mmd")).read_text()
    run.visualize(filename=str(tmp_path / "auto"), format="png")
    assert (tmp_path / "auto.png").read_bytes().startswith(b"\x89PNG")
    run.visualize(filename=str(tmp_path / "inferred.pdf"))
    assert (tmp_path / "inferred.pdf").read_bytes().startswith(b"%PDF")
    from gigq_flow.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"\.svg, \.png or \.pdf"):
        picture.save(tmp_path / "dag.jpeg")


def test_picture_wraps_a_digraph(queue):
    import graphviz

    wf = Workflow("wrap")
    wf.add_task(jobs.identity, name="a")
    picture = wf.visualize()
    assert isinstance(picture.digraph, graphviz.Digraph)
    assert picture.name == picture.digraph.name  # attributes pass through
    assert str(picture) == picture.source == picture.to_dot()


def test_build_view_is_independent_of_input_order(every_status):
    snapshot = every_status.run.snapshot()
    view = build_view(None, snapshot)
    assert to_dot(view) == to_dot(build_view(None, snapshot))
    assert [node.name for node in view.nodes] == list(EXPECTED)


def test_importing_gigq_flow_imports_no_heavy_module():
    code = ("import sys, gigq_flow, gigq_flow.viz; "
            "heavy = {'graphviz', 'pygraphviz', 'ipywidgets'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out == "[]"


def test_unicode_and_quotes_in_names_survive(queue, tmp_path):
    wf = Workflow('quotes "and" \\ back')
    a = wf.add_task(jobs.identity, name='load "raw" <x> \\n')
    wf.add_task(jobs.identity, name="résumé ✓", depends_on=[a])
    run = wf.submit(queue)
    nodes = svg_nodes(run.visualize().svg())
    assert texts_of(nodes[f"job-{a.id}"])[0] == 'load "raw" <x> \\n'
    assert 'load #quot;raw#quot; &lt;x&gt;' in run.visualize().to_mermaid()
    assert os.path.getsize(run.visualize().save(tmp_path / "q.png")) > 0
