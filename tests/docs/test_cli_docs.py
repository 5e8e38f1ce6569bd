"""docs/cli.md stays true: its shell blocks run as one script, and it names every
command and option the parser has."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from support.cli import shell_env
from support.db import sql
from support.helpers import REPO_ROOT

from gigq_flow.cli import build_parser

DOC = REPO_ROOT / "docs" / "cli.md"


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)


def test_the_shell_blocks_run_as_one_script(tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    env = shell_env(tmp_path)
    script = "set -euo pipefail\n" + "\n".join(shell_blocks(DOC.read_text(encoding="utf-8")))
    result = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    assert "every job completed" in result.stdout
    # the shell recipe read the id and the status from GigQ's lines
    assert "Job completed successfully!" in result.stdout
    assert "Result:\n  path: fish.jpg\n  width: 100\n" in result.stdout
    # the worker ids came from $GIGQ_WORKER_ID, then from the flag over it
    workers = {row[0] for row in sql(work / "photos.db", "SELECT worker_id FROM jobs")}
    assert {"photos-env", "photos-flag"} <= workers
    for picture in ("gigq_flow_demo.svg", "pipeline.svg", "pipeline.png"):
        assert (work / picture).stat().st_size > 0
    # incremental runs: the second rerun reused every step of the first
    reasons = json.loads((work / "why.json").read_text())
    first = {reason.removeprefix("cached (from run ").removesuffix(")")
             for reason in reasons.values()}
    assert len(reasons) == 8 and len(first) == 1, reasons
    assert "8 completed (8 cached)" in result.stdout
    rerun = json.loads((work / "rerun.json").read_text())
    assert rerun["succeeded"] and rerun["cached"] == 0 and rerun["cache"] is False
    assert len(json.loads((work / "cache.json").read_text())) == 3
    assert "Cleared 0 cache entries not used for 7d." in result.stdout
    assert '"cleared": 8' in result.stdout
    # logs: --follow streamed the counting step, the failure came with its traceback
    assert "step 4 of 5\nWARNING noisy: counted to 5\n" in result.stdout
    assert "dividing 1 by 0\nTraceback (most recent call last):" in result.stdout
    assert "exit status 1: the attempt failed" in result.stdout
    assert "\n    ZeroDivisionError: division by zero\n| " in result.stdout  # under its row


def test_every_command_and_option_is_documented():
    text = DOC.read_text(encoding="utf-8")
    missing = []
    for name, parser in _commands(build_parser()):
        if f"gigq-flow {name}" not in text and f"`{name}`" not in text:
            missing.append(name)
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{name} {option}")
    assert not missing, missing


def _commands(parser, prefix=""):
    for action in parser._actions:
        if isinstance(action.choices, dict):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _commands(sub, prefix=f"{prefix}{name} ")
