"""The Model Context Protocol server of ``gigq-flow mcp``: AI agents submit jobs and
workflows, follow them and read their results through tools.

- :mod:`.common`: the response shapes, argument checks, which queue a call uses;
- :mod:`.tools`: GigQ's job tools, plain functions returning dicts;
- :mod:`.workflow_tools`: submitting workflows, their status and results, cancelling them;
- :mod:`.worker_tool`: running ready jobs inside the server for a bounded time;
- :mod:`.catalog`: every tool's name, description and argument schema, and the dispatch;
- :mod:`.server`: the wiring to the ``mcp`` SDK, the only module that imports it (on
  call: ``import gigq_flow`` and ``gigq-flow --help`` never load the SDK).
"""
