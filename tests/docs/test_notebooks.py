"""The notebooks in notebooks/ run from top to bottom in a real kernel, and stay true.

Each notebook asserts its key facts in its own cells, so executing it is the test: a
cell that raises (an assertion included) fails it. The kernel is this environment's
ipykernel (jupyter_client runs the ``python3`` kernel with this interpreter), started in
notebooks/ as Jupyter would, with TMPDIR pointing into the test's temporary directory so
that the queue files the notebooks create there are cleaned up with it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from support.helpers import REPO_ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 120
"""Longest a single cell may run (the slowest waits about five seconds)."""
MIN_ASSERTS = 5
"""A notebook that checks fewer facts than this has stopped telling its truth."""


def notebook_id(path: Path) -> str:
    return path.stem


def test_the_seven_notebooks_are_there():
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_failures_and_retries.ipynb",
        "03_workers_outside_the_notebook.ipynb",
        "04_iterating_on_a_pipeline.ipynb",
        "05_cpu_bound_steps_on_processes.ipynb",
        "06_fan_out_at_run_time.ipynb",
        "07_large_dags_in_the_kernel.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_notebook_is_stored_without_outputs_and_asserts_its_facts(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    with_output = [i for i, cell in enumerate(nb.cells)
                   if cell.cell_type == "code" and (cell.outputs or cell.execution_count)]
    assert not with_output, (
        f"{path.name}: cells {with_output} were saved with outputs; clear them "
        "(jupyter nbconvert --clear-output --inplace) before committing")
    asserts = sum(len(re.findall(r"^\s*assert ", cell.source, re.M)) for cell in code)
    assert asserts >= MIN_ASSERTS, f"{path.name} asserts only {asserts} facts"
    assert nb.metadata.kernelspec.name == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=notebook_id)
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    started = time.monotonic()
    failure = None
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as error:
        failure = _plain(str(error))[-4000:]
    if failure is not None:
        pytest.fail(f"{path.name}: a cell raised:\n{failure}", pytrace=False)
    elapsed = time.monotonic() - started
    errors = [output for cell in nb.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, errors
    assert list(tmp_path.glob("gigq-flow-*")), "the notebook kept its queue outside TMPDIR"
    # Worker processes a notebook started are gone with its kernel.
    assert not _processes_mentioning(str(tmp_path)), "a notebook left processes running"
    print(f"{path.name}: {elapsed:.1f} s")


def _plain(text: str) -> str:
    """Without the ANSI colours of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _processes_mentioning(fragment: str, timeout: float = 10.0) -> list[str]:
    """Command lines of live processes that contain ``fragment`` (waits for stragglers)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if fragment in cmdline and state != "Z":
                found.append(cmdline)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
