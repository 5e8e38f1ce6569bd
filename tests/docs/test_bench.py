"""The benchmark scripts run end to end at a tiny size and report every system.

Their figures are not checked here (timed tests on a shared machine are noise); what is
checked is that the evidence behind BENCHMARKS.md can still be produced.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import REPO_ROOT

BENCH = REPO_ROOT / "bench"
SYSTEMS = ("gigq_flow", "gigq", "huey", "raw sqlite")

pytest.importorskip("gigq")
pytest.importorskip("huey")


def run_script(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=BENCH, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_run_reports_every_system_and_a_verdict_per_measured_target(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    stdout = run_script("run.py", "--jobs", "40", "--only", "single", "processes",
                        "--json", str(out))
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"submit, one by one", "run, 1 worker in-process",
                            "run, 1 worker process", "run, 4 worker processes"}
    for rates in results.values():
        assert set(rates) == set(SYSTEMS)
        assert all(rate > 0 for rate in rates.values())
    verdicts = re.findall(r"^(.+): (\d+\.\d\d)x, (met|NOT met)$", stdout, re.MULTILINE)
    assert [what for what, _, _ in verdicts] == [
        "1-worker run rate at least 5x gigq's",
        "1-worker run rate at least half the raw loop's",
        "4 worker processes not slower than 1",
    ]


def test_process_scaling_summarizes_paired_trials_of_both_loops() -> None:
    stdout = run_script("process_scaling.py", "--trials", "2", "--jobs", "40")
    assert "4 processes / 1, 40 no-op jobs, 2 paired trials" in stdout
    for name in ("gigq_flow", "raw sqlite"):
        line = re.search(rf"^  {name} +median (\d+\.\d\d)x, .* (\d) of 2 trials", stdout,
                         re.MULTILINE)
        assert line is not None, stdout
        assert float(line.group(1)) > 0


def test_process_scaling_runs_jobs_that_compute_on_gigq_flow_alone() -> None:
    stdout = run_script("process_scaling.py", "--trials", "2", "--jobs", "40", "--job", "spin",
                        "--job-ms", "0.5")
    assert "4 processes / 1, 40 spin jobs of 0.5 ms, 2 paired trials" in stdout
    assert re.search(r"^  gigq_flow +median \d+\.\d\dx", stdout, re.MULTILINE), stdout
    assert "raw sqlite" not in stdout


def test_process_scaling_refuses_a_single_trial() -> None:
    done = subprocess.run([sys.executable, "process_scaling.py", "--trials", "1"], cwd=BENCH,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--trials must be at least 2" in done.stderr


def test_import_time_reports_both_entry_points_without_heavy_packages() -> None:
    stdout = run_script("import_time.py", "--runs", "1")
    found = re.findall(r"^  (.+?)\s+([\d.]+) ms  heavy packages: (.+)$", stdout, re.M)
    assert [label for label, _, _ in found] == [
        "import gigq_flow", "gigq-flow --help (import gigq_flow.cli)"]
    assert all(float(ms) > 0 for _, ms, _ in found)
    assert found[0][2] == "none"  # import gigq_flow loads no optional package
    assert "networkx" not in found[1][2] and "graphviz" not in found[1][2]
