"""The user guide in docs/ stays true: its Python blocks run, and its links lead somewhere.

For the README and each ``docs/*.md`` file, the ```` ```python ```` blocks are joined, in
order, into one script that runs in an empty temporary directory; it must exit 0. A block
fenced as ```` ```python file=NAME ```` is written to ``NAME`` in that directory instead
(a module that worker processes import, say), and is shown to readers as any Python
block. Blocks that cannot run by themselves are fenced as ``text`` or ``bash`` and
covered by an example in examples/ instead.

A page that says another ``tests/docs/test_*docs.py`` runs it, or whose file name
appears in another test module (``docs/visualization.md`` in ``test_viz_docs.py``,
``docs/cli.md`` in ``test_cli_docs.py``), is run there, with assertions of its own, and
not here: no page runs twice.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.db import postgres_unavailable
from support.helpers import REPO_ROOT, TESTS_DIR, subprocess_env

DOCS = REPO_ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
SCRIPT_TIMEOUT = 180
GUIDE = ("index.md", "caching.md", "output.md", "workers.md", "workflows.md",
         "visualization.md", "cli.md", "mcp.md", "reliability.md", "scaling-out.md",
         "migrating-from-gigq.md", "performance.md")
"""The pages the guide's table of contents must link."""

FENCE = re.compile(r"^```python([^\n]*)\n(.*?)^```\s*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def python_blocks(page: Path) -> tuple[list[str], dict[str, str]]:
    """The script blocks of a page, in order, and its ``file=NAME`` blocks by name."""
    script, files = [], {}
    for info, body in FENCE.findall(page.read_text(encoding="utf-8")):
        name = re.search(r"\bfile=(\S+)", info)
        if name:
            files[name.group(1)] = body
        else:
            script.append(body)
    return script, files


def runner_elsewhere(page: Path) -> str | None:
    """The other test module that runs this page, as a path under ``tests/``: the
    ``test_*docs.py`` the page says runs it, or a test module that names the page."""
    this = Path(__file__).resolve()
    for named in re.findall(r"\btests/((?:\w+/)*test_\w+\.py)", page.read_text(encoding="utf-8")):
        if TESTS_DIR / named != this and named.endswith("docs.py"):
            return named
    for module in sorted(TESTS_DIR.rglob("test_*.py")):
        if module != this and page.name in module.read_text(encoding="utf-8"):
            return module.relative_to(TESTS_DIR).as_posix()
    return None


@pytest.mark.parametrize("page", [REPO_ROOT / "README.md", *PAGES], ids=lambda page: page.name)
def test_the_python_blocks_of_the_page_run(page: Path, tmp_path: Path):
    script, files = python_blocks(page)
    if not script:
        pytest.skip(f"{page.name} has no Python blocks")
    elsewhere = runner_elsewhere(page)
    if elsewhere:
        assert (TESTS_DIR / elsewhere).exists(), (
            f"docs/{page.name} says tests/{elsewhere} runs it, and there is no such file")
        pytest.skip(f"{page.name} is run by {elsewhere}")
    source = "\n".join(script)
    if "postgresql://" in source and postgres_unavailable():
        pytest.skip(postgres_unavailable())
    for name, body in files.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    path = tmp_path / f"{page.stem}_guide.py"
    path.write_text(source, encoding="utf-8")
    done = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, check=False)
    assert done.returncode == 0, (
        f"the Python blocks of docs/{page.name} failed (script: {path}):\n"
        f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    assert "Traceback" not in done.stderr, done.stderr[-4000:]


def test_the_guide_links_every_page_and_the_readme_links_the_guide():
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = {target.split("#")[0] for target in LINK.findall(index)}
    missing = [name for name in GUIDE if name != "index.md" and name not in linked]
    assert not missing, f"docs/index.md does not link {missing}"
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.md" in readme
    assert "pip install -e \".[dev]\"" in readme and "pytest" in readme


@pytest.mark.parametrize("page", [REPO_ROOT / "README.md", *PAGES],
                         ids=lambda page: page.name)
def test_relative_links_lead_to_files_and_headings_that_exist(page: Path):
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    for heading in re.findall(r"^#+\s+(.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found
