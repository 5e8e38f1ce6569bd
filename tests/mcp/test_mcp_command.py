"""The ``gigq-flow mcp`` command: its options, the SDK loaded only when it runs (and
named with the install command when missing), and its end when the client leaves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.cli import cli_env, module_command

from gigq_flow.cli import build_parser, main
from gigq_flow.cli.common import UsageError
from gigq_flow.cli.mcp import settings_from
from gigq_flow.mcp import server


def test_importing_the_package_and_the_cli_never_loads_the_sdk():
    code = ("import sys, gigq_flow, gigq_flow.cli, gigq_flow.mcp.catalog\n"
            "gigq_flow.cli.build_parser().format_help()\n"
            "print(__import__('json').dumps(sorted(m for m in sys.modules\n"
            "      if m == 'mcp' or m.startswith('mcp.'))))")
    done = subprocess.run([sys.executable, "-c", code], env=cli_env(), capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == []


def test_the_command_is_listed_and_takes_the_worker_options(capsys):
    assert main(["--help"]) == 0
    assert "mcp" in capsys.readouterr().out
    assert main(["mcp", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--allow-module" in help_text and "--allow-pickle" in help_text
    assert "gigq-flow[mcp]" in help_text and "GIGQ_DB_PATH" in help_text


@pytest.mark.parametrize(("argv", "db", "allowed", "pickle"), [
    (["mcp"], None, None, False),
    (["--db", "jobs.db", "mcp"], "jobs.db", None, False),
    (["mcp", "--db", "jobs.db", "--allow-module", "a", "--allow-module", "b.c",
      "--allow-pickle"], "jobs.db", ("a", "b.c"), True),
])
def test_only_a_typed_db_counts_as_the_commands_choice(monkeypatch, argv, db, allowed, pickle):
    monkeypatch.setenv("GIGQ_FLOW_DB", "from-env.db")  # the --db default: not a choice
    settings = settings_from(build_parser().parse_args(argv))
    assert (settings.db, settings.allowed_modules, settings.allow_pickle) == (db, allowed, pickle)


def test_without_the_sdk_the_command_says_what_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mcp", None)  # import mcp raises ImportError
    assert main(["--db", str(tmp_path / "q.db"), "mcp"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "pip install 'gigq-flow[mcp]'" in error
    assert not (tmp_path / "q.db").exists()


@pytest.mark.parametrize("version", ["1.19.2", "2.0.0"])
def test_an_sdk_outside_the_supported_range_is_named(monkeypatch, version):
    monkeypatch.setattr(server.metadata, "version", lambda name: version)
    with pytest.raises(UsageError, match=r"needs mcp>=1\.20,<2, found mcp " + version):
        server.require_sdk()


def test_the_server_ends_cleanly_when_the_client_closes_stdin(tmp_path: Path):
    done = subprocess.run([*module_command(), "mcp"], cwd=tmp_path, env=cli_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []  # no queue opened, no file created
