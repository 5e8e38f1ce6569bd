"""Python modules that a test writes, imports and rewrites: step code edited between two
imports, as a user edits a file or a notebook cell between two runs.

:class:`ModuleWriter` (the ``write_module`` fixture of the tests that use it) writes
sources into the test's ``tmp_path`` under module names unique to the test, imports
them, and removes them from ``sys.modules`` at the end. The directory must be on
``sys.path`` and bytecode must not be written (a file rewritten within the same second
with the same size would be read back from its stale ``.pyc``): the fixture arranges
both with ``monkeypatch``.
"""

from __future__ import annotations

import importlib
import re
import sys
import textwrap
from pathlib import Path
from types import ModuleType


class ModuleWriter:
    """Writes ``<prefix>_<label>.py`` files into ``directory`` and imports them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.prefix = "fp_" + re.sub(r"\W", "_", directory.name)
        self.names: list[str] = []

    def name(self, label: str) -> str:
        """The module name of ``label``: unique to this test."""
        return f"{self.prefix}_{label}"

    def write(self, label: str, source: str) -> str:
        """Write ``source`` (dedented) as the module of ``label``, dropping any copy of it
        already imported; returns its module name."""
        name = self.name(label)
        (self.directory / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        sys.modules.pop(name, None)
        if name not in self.names:
            self.names.append(name)
        importlib.invalidate_caches()
        return name

    def load(self, label: str, source: str) -> ModuleType:
        """Write ``source`` as the module of ``label`` and import it."""
        return importlib.import_module(self.write(label, source))

    def forget(self) -> None:
        """Remove every module written so far from ``sys.modules``."""
        for name in self.names:
            sys.modules.pop(name, None)
        self.names.clear()
