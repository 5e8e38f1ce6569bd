"""The benchmark scripts run end to end at a tiny size and report every system.

Their figures are not checked here (timed tests on a shared machine are noise); what is
checked is that the evidence behind BENCHMARKS.md can still be produced.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.db import postgres_server, postgres_unavailable
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


CACHE_TINY = ("cache.py", "--sleep-steps", "40", "--sleep-ms", "1", "--steps", "60",
              "--repeat", "2")
CACHE_VERDICT = re.compile(r"^(.+?): (.+?): (\d+\.\d+)(?: s|x|x the time), (met|NOT met)$",
                           re.MULTILINE)


def test_cache_runs_each_dag_and_checks_what_each_run_reused(tmp_path: Path) -> None:
    out = tmp_path / "cache.json"
    stdout = run_script(*CACHE_TINY, "--pg-steps", "0", "--json", str(out))
    figures = json.loads(out.read_text())
    sleeping, noop = figures["sleeping"], figures["noop"]
    assert sleeping["off"]["cached"] == sleeping["first"]["cached"] == 0
    assert [rerun["cached"] for rerun in sleeping["reruns"]] == [40, 40]
    assert [[trial["cached"] for trial in noop["trials"][which]] for which in
            ("cache=False", "cache=True, none reused", "cache=True, all reused")] == [
        [0, 0], [0, 0], [60, 60]]
    assert all(trial["run"] > 0 for trials in noop["trials"].values() for trial in trials)
    assert figures["postgres"] == {"skipped": "--pg-steps 0"}
    verdicts = CACHE_VERDICT.findall(stdout)
    assert [(dag, target.split(" (")[0]) for dag, target, _, _ in verdicts] == [
        ("40 sleeping 1 ms steps (20 layers of up to 2)",
         "fully reused re-run in a fresh process under 1 s"),
        ("40 sleeping 1 ms steps (20 layers of up to 2)",
         "cache=True with nothing reused at most 10% slower than cache=False"),
        ("60 no-op steps (20 layers of up to 3)",
         "cache=True with nothing reused at most 10% slower than cache=False"),
        ("60 no-op steps (20 layers of up to 3)",
         "fully reused re-run at least as fast as running it"),
    ]
    assert "PostgreSQL: skipped (--pg-steps 0)" in stdout


def test_cache_measures_postgresql_when_a_server_answers() -> None:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, *CACHE_TINY, "--pg-steps", "30", "--url", postgres_server()],
        cwd=BENCH, capture_output=True, text=True, timeout=240)
    assert re.search(r"^PostgreSQL: 30 no-op steps .*: cache=True with nothing reused .*: "
                     r"\d+\.\d+x, (met|NOT met)$", done.stdout, re.MULTILINE), (
        done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr


def test_cache_profile_times_each_phase_of_the_three_runs() -> None:
    stdout = run_script("cache_profile.py", "--steps", "40", "--repeat", "1", "--cprofile", "3")
    rows = {line[:24].strip(): line[24:].split() for line in stdout.splitlines()
            if line.startswith("cache=")}
    assert list(rows) == ["cache=False", "cache=True, none reused", "cache=True, all reused"]
    claim, parents, key, lookup, completion, rest, total = rows["cache=True, all reused"]
    assert all(float(value) > 0 for value in (claim, key, total))
    # Loaded functions: keyed, looked up and reused inside the claim's transaction.
    assert (parents, lookup, completion) == ("-", "-", "-")
    assert float(rows["cache=True, none reused"][4]) > 0  # the cached completion
    assert rows["cache=False"][1:4] == ["-", "-", "-"]  # no key, no lookup
    assert "cProfile of a reused drain, by cumulative:" in stdout


def test_output_measures_both_targets_and_says_what_it_neutralised(tmp_path: Path) -> None:
    out = tmp_path / "output.json"
    stdout = run_script("output.py", "--quick", "--json", str(out))
    figures = json.loads(out.read_text())
    noop = figures["noop"]["trials"]
    assert figures["noop"]["jobs"] == 40
    assert [len(noop[which]) for which in ("capture as shipped", "capture neutralised")] == [2, 2]
    assert all(wall > 0 and cpu > 0 for trials in noop.values() for wall, cpu in trials)
    printing = figures["printing"]
    assert (printing["lines"], printing["width"]) == (100, 60)
    assert all(len(printing["trials"][which]) == 2 and min(printing["trials"][which]) > 0
               for which in ("worker", "direct"))
    assert "gigq_flow.step_process.Capturing replaced by a context manager that does nothing" in (
        figures["neutralised"])
    assert "  neutralised: gigq_flow.step_process.Capturing replaced" in stdout
    verdicts = re.findall(r"^(.+?) \(.+\): (\d+\.\d+)x, (met|NOT met)$", stdout, re.MULTILINE)
    assert [what for what, _, _ in verdicts] == [
        "capturing costs the no-op hot path at most 5%",
        "a step printing 100 lines at most 2x printing to /dev/null",
    ]
    assert all(float(ratio) > 0 for _, ratio, _ in verdicts)


PROCESSES_VERDICTS = [
    "2 CPU-bound steps of 0.05 s on {cores} processes within 1.2 x (steps / cores) x one step",
    "2 CPU-bound steps: processes at least 1.6x faster than threads",
    "20 no-op steps on 4 processes within 2x of ProcessPoolExecutor(4).map (start included "
    "for both)",
]
DASK_VERDICT = ("20 no-op steps on 4 processes at least as fast as Dask LocalCluster "
                "(time / Dask's, start included for both)")


def test_processes_reports_every_system_and_each_target(tmp_path: Path) -> None:
    out = tmp_path / "processes.json"
    stdout = run_script("processes.py", "--cpu-steps", "2", "--cpu-seconds", "0.05",
                        "--steps", "20", "--repeat", "1", "--start-runs", "1", "--json",
                        str(out))
    figures = json.loads(out.read_text())
    dask = importlib.util.find_spec("distributed") is not None
    assert set(figures["cpu"]["trials"]) == {"one step alone", "processes", "threads",
                                            "ProcessPoolExecutor.map (for scale)"}
    systems = {"gigq_flow, processes", "gigq_flow, processes, step in __main__",
               "gigq_flow, threads (for scale)", "ProcessPoolExecutor.map"}
    if dask:
        systems |= {"Dask LocalCluster", "Dask, cluster already started",
                    "Dask, its close (not in any figure)"}
    assert set(figures["noop"]["trials"]) == systems
    assert all(len(values) == 1 and values[0] > 0
               for part in ("cpu", "noop") for values in figures[part]["trials"].values())
    for row in ("one step alone", "processes, Workflow.run(", "threads, Workflow.run(",
                f"ProcessPoolExecutor({os.cpu_count()}).map (for scale)",
                "gigq_flow, processes ", "gigq_flow, processes, step in __main__",
                "gigq_flow, threads (for scale)", "ProcessPoolExecutor(4).map"):
        assert re.search(rf"^  {re.escape(row)}", stdout, re.MULTILINE), (row, stdout)
    verdicts = re.findall(r"^(.+): \d+\.\d\dx, (?:met|NOT met)$", stdout, re.MULTILINE)
    expected = [line.format(cores=os.cpu_count()) for line in PROCESSES_VERDICTS]
    assert verdicts == expected + ([DASK_VERDICT] if dask else [])
    if not dask:
        assert "Dask LocalCluster: skipped (dask[distributed] is not installed" in stdout


KERNEL_DAG_ROWS = ("gigq_flow Workflow.run(workers=4)", "gigq_flow Workflow.run(workers=1)")
DASK_ROWS = ("dask.threaded.get(graph, keys, num_workers=4)",
             "dask.delayed + dask.compute(threads, 4)")
KERNEL_DAG_VERDICTS = [
    "200-step DAG: gigq_flow workers=4 no slower than dask.threaded.get (time / Dask's)",
    "200-step DAG: gigq_flow workers=4 at least 5x faster than dask.delayed",
    "200-step DAG: gigq_flow workers=4 at least 0.95x the rate of workers=1 (median of the "
    "rounds)",
    "1,000 steps at >= 10,000 steps/s",
    "1,000 steps: peak memory <= 150 MB",
    "1,000-step run: visualize() < 1 s",
    "1,000-step run: panel refresh < 100 ms",
]


def test_run_measures_the_kernel_dag_beside_dask_and_the_large_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("dask") is None:
        pytest.skip("dask is not installed: pip install -e \".[bench]\"")
    out = tmp_path / "kernel.json"
    stdout = run_script("run.py", "--only", "kernel-dag", "kernel-dag-large", "--dag-steps",
                        "200", "--dag-rounds", "1", "--prefect-steps", "0", "--large-steps",
                        "1000", "--json", str(out))
    figures = json.loads(out.read_text())
    rows = figures["kernel_dag"]["rows"]
    distributed = importlib.util.find_spec("distributed") is not None
    expected = [*KERNEL_DAG_ROWS, *DASK_ROWS]
    expected += ["distributed LocalCluster(1 x 4 threads)"] if distributed else []
    assert list(rows) == expected
    assert all(seconds > 0 for seconds in rows.values())
    assert figures["kernel_dag"]["rounds"] == 1
    assert len(figures["kernel_dag"]["workers=1 over workers=4, each round"]) == 1
    assert re.search(r"^workers=4's rate over workers=1's, round by round: median \d+\.\d\dx "
                     r"\(from \d+\.\d\d to \d+\.\d\d\); best against best \d+\.\d\dx$",
                     stdout, re.MULTILINE), stdout
    assert ("each run in a fresh process, the systems taking turns; the best of 1 run for "
            "gigq_flow and dask.threaded.get, of 1 for the others") in stdout
    for row in expected:
        assert re.search(rf"^  {re.escape(row)} +\d+\.\d{{3}} +[\d,]+ +\d+\.\d\d$", stdout,
                         re.MULTILINE), (row, stdout)
    assert figures["kernel_dag"]["prefect_rows"] == {}  # Prefect's server takes 15-30 s
    assert "prefect: skipped (--prefect-steps 0)" in stdout
    large = figures["kernel_dag_large"]
    assert large["steps"] == 1000 and large["steps/s"] > 0
    assert large["steps/s"] == max(large["every run's steps/s"])  # the best of the runs
    assert large["peak RSS MB"] >= large["RSS before the build MB"] > 0
    assert all(large[what] > 0 for what in ("visualize()", "widget()", "panel.refresh()"))
    assert re.search(r"^  end to end [\d.]+ s, [\d,]+ steps/s \(every run: [\d,]+\); peak RSS "
                     r"\d+ MB", stdout,
                     re.MULTILINE), stdout
    verdicts = re.findall(r"^(.+): [\d.,]+ ?(?:x|steps/s|MB|s|ms), (?:met|NOT met)$", stdout,
                          re.MULTILINE)
    assert verdicts == KERNEL_DAG_VERDICTS


def test_run_refuses_a_dag_that_is_not_whole_layers() -> None:
    done = subprocess.run([sys.executable, "run.py", "--only", "kernel-dag", "--dag-steps",
                           "120"], cwd=BENCH, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--dag-steps must be a multiple of 50, at least 100 (got 120)" in done.stderr


def test_thread_scaling_pairs_one_thread_against_four() -> None:
    stdout = run_script("thread_scaling.py", "--rounds", "2", "--steps", "100")
    for workers in (1, 4):
        assert re.search(rf"^  workers={workers}: \d+\.\d{{3}} s, \d+\.\d{{3}} s of CPU, \d+ "
                         r"voluntary context switches$", stdout, re.MULTILINE), stdout
    assert re.search(r"^  workers=1's time over workers=4's, median of the pairs: \d+\.\d{3} "
                     r"\(from \d+\.\d\d to \d+\.\d\d\)$", stdout, re.MULTILINE), stdout
    done = subprocess.run([sys.executable, "thread_scaling.py", "--steps", "120"], cwd=BENCH,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "--steps must be a multiple of 50, at least 100 (got 120)" in done.stderr


@pytest.mark.parametrize("loop", ["gigq_flow", "dag", "kernel-dag"])
def test_instructions_runs_each_gigq_flow_loop_as_callgrind_would(loop: str) -> None:
    """The phases that ``instructions.py`` counts under callgrind run on the worker as it
    is (they reach into its loop-thread state), here without valgrind."""
    for phase in ("submit", "drain"):
        run_script("instructions.py", "--phase", phase, loop)
