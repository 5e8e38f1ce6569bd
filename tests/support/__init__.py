"""What the test modules share, one module per role.

- :mod:`support.jobs`: the module-level functions test jobs run (workers import them by
  module and name, so job rows say ``support.jobs.<name>``);
- :mod:`support.helpers`: paths, ``drain``, ``wait_until``, ``subprocess_env``;
- :mod:`support.db`: reading and writing queue databases directly; the PostgreSQL test
  server;
- :mod:`support.processes`: worker subprocesses (``WorkerPool``) and /proc;
- :mod:`support.cli`: running the ``gigq-flow`` command;
- :mod:`support.mcp_client`: a real MCP session with ``gigq-flow mcp`` (the SDK's client);
- :mod:`support.viz`: a run in every status, and readers of the SVG pictures;
- :mod:`support.modules`: modules a test writes, imports and rewrites (step code
  edited between runs);
- :mod:`support.workflows`: running workflows on worker threads and reading their
  statuses.

``tests/`` is on ``sys.path`` of the test process (``pythonpath`` in pyproject.toml) and
on ``PYTHONPATH`` of every subprocess the tests start (``support.helpers.subprocess_env``).
"""
