"""docs/scaling-out.md stays true: its python and bash blocks run in order, in an empty
directory, against a fresh schema of the test server (the page's URL is replaced by it);
a block that starts a worker runs in the background until the end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from support.cli import cli_env
from support.helpers import REPO_ROOT, wait_until

from gigq_flow import JobQueue

DOC = REPO_ROOT / "docs" / "scaling-out.md"
DOC_URL = "postgresql://postgres@127.0.0.1:5432/test?schema=pipelines"
BLOCK_TIMEOUT = 120


def blocks(text: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(python|bash)\n(.*?)^```", text, flags=re.S | re.M)


def test_the_page_uses_one_url_the_test_can_replace():
    text = DOC.read_text(encoding="utf-8")
    urls = set(re.findall(r"postgresql://[^\s\"`]+", "".join(code for _, code in blocks(text))))
    assert urls == {DOC_URL}


def test_the_steps_run_in_order(tmp_path: Path, postgres_url: str):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "gigq-flow"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gigq_flow "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = cli_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    workers: list[subprocess.Popen] = []
    try:
        for kind, code in blocks(DOC.read_text(encoding="utf-8")):
            code = code.replace(DOC_URL, postgres_url)
            if kind == "python" and code.startswith("# pipeline.py"):
                (work / "pipeline.py").write_text(code)
            elif kind == "python":
                result = subprocess.run([sys.executable, "-c", code], cwd=work, env=env,
                                        capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
                assert result.returncode == 0, (code, result.stdout, result.stderr)
            elif re.search(r"^gigq-flow .*\bworker\b", code, flags=re.M):
                workers.append(subprocess.Popen(
                    ["bash", "-c", "set -eu\n" + code], cwd=work, env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                    start_new_session=True))
                wait_until(lambda: any(w["state"] == "alive"
                                       for w in JobQueue(postgres_url).list_workers()), 30)
            else:
                result = subprocess.run(["bash", "-c", "set -euo pipefail\n" + code], cwd=work,
                                        env=env, capture_output=True, text=True,
                                        timeout=BLOCK_TIMEOUT)
                assert result.returncode == 0, (code, result.stdout, result.stderr)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            _, stderr = worker.communicate(timeout=60)
            assert "Traceback" not in stderr, stderr
    assert workers, "the page starts no worker"
    assert (work / "archive.db").stat().st_size > 0
