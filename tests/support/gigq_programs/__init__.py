"""Programs from GigQ 0.5.1's user guide, copied as written with ``gigq`` changed to
``gigq_flow`` in imports and to ``gigq-flow`` in commands; nothing else is edited (the
unsorted imports and the unused ``os`` are GigQ's). ``tests/docs/test_gigq_programs.py``
runs each one in a scratch directory. GigQ is MIT-licensed, Copyright (c) 2025 GigQ
Authors.

From docs/user-guide/workers.md:

- ``worker_thread.py``: "Starting a Worker", a worker in a daemon thread;
- ``worker_script.py`` and ``run_three_workers.sh``: "Running Multiple Workers";
- ``background_service.py``: "Example: Background Processing Service".

From docs/user-guide/cli.md and docs/api/cli.md, "Using with Shell Scripts" and "Using
the CLI in Scripts": ``shell_recipe.sh`` (the default database) and
``shell_recipe_db.sh`` (``--db jobs.db``).

From docs/user-guide/scheduling.md: ``tasks.py``, the task of "Pattern 1: System Cron +
CLI" (its crontab line and worker command are in the test).
"""
