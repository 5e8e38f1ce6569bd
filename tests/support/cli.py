"""Run the ``gigq-flow`` command, as a user or a script would, and check what it prints.

:func:`run_cli` and :func:`cli` run the command's ``main`` in this process by default, as
a fresh process would see it: the command's environment and working directory, its own
stdout and stderr, an uncaught exception printed as a traceback with status 1, and
afterwards this process's path, modules, logging and connections as they were. With
``$GIGQ_FLOW_TEST_CLI`` set to ``subprocess`` (the ``cli_subprocesses`` fixture, for a test
that needs the real process: ``__main__``, ``$PYTHONPATH``, the process's id; or for the
whole suite), every command is a real subprocess, as is a ``command`` naming another
program (the console script). Long-running commands (:func:`start_cli`) are processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import gigq_flow
from support.helpers import REPO_ROOT, subprocess_env

COMMAND_TIMEOUT = 60
MODE_ENV = "GIGQ_FLOW_TEST_CLI"
"""``subprocess``: every command a test runs is a real process."""


DEFAULT_VARIABLES = ("GIGQ_FLOW_DB", "GIGQ_DB", "GIGQ_WORKER_ID", "GIGQ_POLLING_INTERVAL")
"""The variables the command reads as defaults under its flags."""


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a command: ``support.jobs`` importable, no colours, unbuffered,
    none of the command's default variables from this process's environment."""
    env = subprocess_env()
    for name in DEFAULT_VARIABLES:
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def shell_env(directory: Path, **extra: str) -> dict[str, str]:
    """:func:`cli_env` for shell scripts: ``gigq-flow`` and ``python`` on PATH run this
    checkout's command and this interpreter (through ``exec``, so "$!" of a background
    command is the process itself). The wrappers go in ``directory/bin``."""
    bin_dir = directory / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, command in (("gigq-flow", f'"{sys.executable}" -m gigq_flow'),
                          ("python", f'"{sys.executable}"')):
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        wrapper.chmod(0o755)
    return cli_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **extra)


def module_command() -> list[str]:
    return [sys.executable, "-m", "gigq_flow"]


def script_command() -> list[str] | None:
    """The installed console script next to this interpreter, if there is one."""
    script = Path(sys.executable).parent / "gigq-flow"
    return [str(script)] if script.exists() else None


def run_cli(
    *args: Any, cwd: Path, command: list[str] | None = None, env: dict[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """The command's status and output; in this process unless ``command`` names another
    program or ``$GIGQ_FLOW_TEST_CLI`` says ``subprocess``."""
    argv = [str(arg) for arg in args]
    if command is None and os.environ.get(MODE_ENV) != "subprocess":
        return run_in_process(argv, cwd=cwd, env=env or cli_env())
    return subprocess.run(
        [*(command or module_command()), *argv], cwd=cwd, env=env or cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


def run_in_process(argv: list[str], *, cwd: Path, env: dict[str, str]
                   ) -> subprocess.CompletedProcess[str]:
    """``gigq_flow.cli.main(argv)`` with ``env`` as the environment (a pipe's 80 columns
    unless it says otherwise), ``cwd`` as the working directory and its own stdout and
    stderr; then the environment, directory, ``sys.path``, the modules imported from
    outside this checkout and the installed packages (the working directory's), the
    loggers' handlers and this thread's connections are put back as they were."""
    from gigq_flow.cli import main

    saved_env, saved_cwd, saved_path = dict(os.environ), os.getcwd(), list(sys.path)
    saved_modules = set(sys.modules)
    loggers = [logging.getLogger(), logging.getLogger("gigq_flow")]
    saved_loggers = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update({"COLUMNS": "80", "LINES": "24", **env})
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # what the interpreter prints for an uncaught exception
                traceback.print_exc()
                status = 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            if not _installed(getattr(sys.modules[name], "__file__", None)):
                del sys.modules[name]
        for logger, level, handlers in saved_loggers:
            logger.setLevel(level)
            logger.handlers[:] = handlers
        gigq_flow.close_connections()
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


def _installed(path: str | None) -> bool:
    """A module file of this checkout or of the interpreter's installation (kept once
    imported, as any test would import it), not one of a test's directories."""
    if path is None:
        return True
    prefixes = {str(REPO_ROOT), sys.prefix, sys.base_prefix, sys.exec_prefix}
    return any(os.path.abspath(path).startswith(prefix + os.sep) for prefix in prefixes)


def cli(db: Path | str, *args: Any, cwd: Path | None = None,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``gigq-flow --db DB *args``, run in ``cwd``: by default the directory of the queue
    file ``db`` (a postgresql:// URL needs ``cwd``)."""
    return run_cli("--db", db, *args, cwd=cwd or Path(db).parent, **kwargs)


def start_cli(*args: Any, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*module_command(), *map(str, args)], cwd=cwd, env=env or cli_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a command that must succeed."""
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def drain_by_command(db: Path | str, *, cwd: Path | None = None) -> int:
    """Run ``gigq-flow worker --once`` until no job is ready; returns how many ran."""
    ran = 0
    while ok(cli(db, "worker", "--once", cwd=cwd)).strip() == "Processed one job.":
        ran += 1
    return ran


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def submitted_id(result: subprocess.CompletedProcess[str]) -> str:
    out = ok(result).strip()
    assert out.startswith("Job submitted: "), out
    return out.removeprefix("Job submitted: ")


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit status 2, exactly one ``gigq-flow: error:`` line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    return assert_one_error_line(result, *fragments)


def assert_one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gigq-flow: error: "), lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == "", result.stdout
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def stop(process: subprocess.Popen[str], timeout: float = 15.0) -> tuple[int, str, str]:
    """SIGTERM a command, wait for it, return (status, stdout, stderr)."""
    if process.poll() is None:
        process.terminate()
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the command ignored SIGTERM for {timeout} s: {err}") from None
    return process.returncode, out, err
