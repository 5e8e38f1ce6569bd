"""Renderers (system dot, else pygraphviz in-process) and displays that never raise."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import jobs
from support.helpers import subprocess_env

from gigq_flow import Workflow
from gigq_flow.errors import RendererNotFoundError
from gigq_flow.viz import render as render_module
from gigq_flow.viz.render import choose_renderer, render

pytestmark = pytest.mark.contract

SIMPLE = 'digraph { a [id="node-a"]; a -> b }'


@pytest.fixture
def no_dot_on_path(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


@pytest.fixture
def no_pygraphviz(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygraphviz", None)  # import raises ImportError


@pytest.fixture
def run(queue):
    wf = Workflow("display")
    a = wf.add_task(jobs.identity, name="a")
    wf.add_task(jobs.identity, name="b", depends_on=[a])
    return wf.submit(queue)


def test_pygraphviz_renders_every_format_when_dot_is_not_on_path(no_dot_on_path):
    assert choose_renderer() == "pygraphviz"
    assert b'id="node&#45;a"' in render(SIMPLE, "svg")
    assert render(SIMPLE, "png").startswith(b"\x89PNG")
    assert render(SIMPLE, "pdf").startswith(b"%PDF")


def test_a_run_renders_without_system_graphviz(no_dot_on_path, run, tmp_path):
    path = run.visualize().save(tmp_path / "run.png")
    assert Path(path).read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("dot") is None, reason="no system Graphviz `dot` on PATH here")
def test_system_dot_is_preferred_and_works():
    assert choose_renderer() == "dot"
    assert b"<svg" in render(SIMPLE, "svg", renderer="dot")


def test_a_dot_on_path_is_called_with_the_format_and_engine(monkeypatch, tmp_path):
    """A stand-in `dot` records its arguments and stdin, so the subprocess path is tested
    on machines without Graphviz too."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.txt"
    fake = bindir / "dot"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{log}"\n'
        f'cat >> "{log}"\n'
        "printf '<svg>fake</svg>'\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    assert choose_renderer() == "dot"
    assert render(SIMPLE, "svg") == b"<svg>fake</svg>"
    called = log.read_text()
    assert called.splitlines()[0] == "-Kdot -Tsvg"
    assert "a -> b" in called


def test_a_failing_system_dot_falls_back_to_pygraphviz(monkeypatch, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "dot"
    fake.write_text("#!/bin/sh\necho 'Format: \"png\" not recognized' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(bindir))
    assert render(SIMPLE, "png").startswith(b"\x89PNG")
    with pytest.raises(render_module.RenderError, match="not recognized"):
        render(SIMPLE, "png", renderer="dot")


def test_no_renderer_at_all_says_what_to_install(no_dot_on_path, no_pygraphviz, run, tmp_path):
    with pytest.raises(RendererNotFoundError, match=r"pip install 'pygraphviz>=2.0'") as info:
        run.visualize().save(tmp_path / "x.svg")
    assert "apt install graphviz" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    # DOT and Mermaid need no renderer
    picture = run.visualize()
    assert picture.to_dot().startswith("digraph")
    assert picture.to_mermaid().startswith("%%")
    picture.save(tmp_path / "x.dot")


def test_display_never_raises_without_a_renderer(no_dot_on_path, no_pygraphviz, run):
    for obj in (run, run.visualize()):
        bundle = obj._repr_mimebundle_()
        assert set(bundle) == {"text/plain"}
        assert "1 pending" in bundle["text/plain"] or "2 pending" in bundle["text/plain"]
        assert "pip install" in bundle["text/plain"]


def test_display_never_raises_with_a_broken_renderer(monkeypatch, run, queue):
    def broken(*args, **kwargs):
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(render_module, "render", broken)
    wf = Workflow("not-submitted")
    wf.add_task(jobs.identity, name="a")
    for obj in (run, run.visualize(), wf, wf.visualize()):
        bundle = obj._repr_mimebundle_()
        assert set(bundle) == {"text/plain"}
        assert "renderer exploded" in bundle["text/plain"]


def test_display_never_raises_when_the_queue_is_unreadable(monkeypatch, run):
    def unreadable():
        raise OSError("disk gone")

    monkeypatch.setattr(run, "snapshot", unreadable)
    bundle = run._repr_mimebundle_()
    assert set(bundle) == {"text/plain"} and "disk gone" in bundle["text/plain"]


def test_display_shows_svg_and_a_status_summary(run):
    bundle = run._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")
    assert bundle["text/plain"].startswith("workflow 'display'")
    assert "2 pending" in bundle["text/plain"]
    png = run.visualize(format="png")._repr_mimebundle_()
    assert set(png) == {"image/png", "text/plain"}


def test_workflow_display_before_and_after_submission(queue):
    wf = Workflow("shown")
    wf.add_task(jobs.identity, name="a")
    assert "image/svg+xml" in wf._repr_mimebundle_()
    assert "not submitted" in wf._repr_mimebundle_()["text/plain"]
    wf.submit(queue)
    assert "1 pending" in wf._repr_mimebundle_()["text/plain"]


def test_first_in_process_render_writes_no_fontconfig_noise_to_stderr(tmp_path):
    """pygraphviz's bundled fontconfig warns about newer system config files on its first
    text layout; a notebook would show that in red under the cell."""
    env = {**subprocess_env(), "PATH": str(tmp_path)}
    code = ("from gigq_flow.viz.render import render; "
            "assert render('digraph { a -> b }', 'png').startswith(b'\\x89PNG')")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert "Fontconfig" not in done.stderr
