"""docs/visualization.md: its Python blocks, run in order as one script, work."""

from __future__ import annotations

import re
import subprocess
import sys

from support.helpers import REPO_ROOT, subprocess_env

DOC = REPO_ROOT / "docs" / "visualization.md"


def test_the_examples_in_the_visualization_guide_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) >= 5
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for name, head in (("etl-structure.svg", b"<?xml"), ("etl-run.png", b"\x89PNG"),
                       ("etl-run.pdf", b"%PDF"), ("etl-timeline.svg", b"<?xml"),
                       ("etl-workers.png", b"\x89PNG"), ("etl-cached.svg", b"<?xml"),
                       ("parse-items.svg", b"<?xml")):
        assert (tmp_path / name).read_bytes().startswith(head), name
    assert "flowchart LR" in done.stdout
    assert "5 of 5" not in done.stdout  # the live run has 2 jobs
    assert "2 of 2 2" in done.stdout
    assert "4 False" in done.stdout  # the finished etl run: 4 completed, no thread
    assert "3/3 finished; 3 completed (1 cached)" in done.stdout  # the incremental rerun
    assert "j0[\"extract<br/>cached\"]:::cached" in done.stdout
    assert "= cached " in done.stdout  # the text views list the cached look
    # a step's output in the panel: its print and log record, then a failed step's traceback
    assert "reading 3 rows\nWARNING etl: row 3 looks odd\n" in done.stdout
    assert "ZeroDivisionError: division by zero" in done.stdout
    # the panel's Cancel run button ends a running run, then is disabled
    assert "2 cancelled; button disabled: True" in done.stdout
    # a map: one node with its items' progress, its items listed and shown when selected
    assert "True\nTrue\n" in done.stdout
    assert "a map over the list of list_files: 12 items\n" in done.stdout
    assert "ValueError: cannot parse part-3.csv\n" in done.stdout
