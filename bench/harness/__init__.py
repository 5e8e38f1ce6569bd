"""What the benchmark scripts in ``bench/`` share; none of it runs on its own.

- ``jobs``:               the job functions the systems run (no-op, nap, spin, crunch,
                          numbered, print_lines),
                          importable by module and name in every worker process.
- ``postgres_jobs``:      the PostgreSQL benchmark's no-op, which notes its completion time,
                          and procrastinate's app with it as its task.
- ``systems``:            the systems under test (gigq_flow, gigq, huey, a raw SQLite loop).
- ``workflow_systems``:   the systems with workflows (gigq_flow, gigq).
- ``workflow_scenarios``: the workflow scenarios of ``run.py`` and their report.
- ``kernel_dag``:         the kernel-dag scenarios of ``run.py`` (gigq_flow beside Dask and
                          Prefect) and their report; ``kernel_dag_systems`` their runs,
                          each in a fresh spawned process.
- ``layered``:            the layered DAG of the incremental-run benchmarks.
- ``tempdirs``:           a fresh temporary directory, and a system opened in it.
- ``processes``:          worker processes that start together, timed to the last completion.
- ``machine``:            the machine a run measured on, for the report's first line.

The scripts import it as ``harness`` (their own folder is first on ``sys.path``), and the
worker processes they spawn inherit that path, so jobs stored as ``harness.jobs.noop``
import there too.
"""
