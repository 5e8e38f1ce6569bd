"""Run the real ``gigq-flow`` command in subprocesses, as a user or a script would, and
check what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.helpers import subprocess_env

COMMAND_TIMEOUT = 60


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
    return subprocess.run(
        [*(command or module_command()), *map(str, args)], cwd=cwd, env=env or cli_env(),
        capture_output=True, text=True, timeout=timeout,
    )


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
