"""Which jobs a large picture draws as one group node: the grouping rule, on names alone.

Past ``group_threshold`` jobs, :func:`group_labels` gives each job the label of the
group node that draws it (None: its own node), coarser level by level until the picture
has at most ``max_nodes`` nodes:

1. jobs sharing a name, when at least :data:`GROUP_MIN_INSTANCES` do (``fetch ×120``);
2. names that differ only by a trailing number (``layer-0``, ``layer-1``, ...): runs of
   consecutive numbers, as few and as wide (1, 2, 5, 10, 20, 50, ... numbers) as it takes
   (``layer-[0-9] ×500``);
3. the jobs still drawn alone, by function (``noop() ×3000``);
4. every job by function.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import count

GROUP_THRESHOLD = 100
"""Above this many jobs in the picture, jobs collapse into groups."""
GROUP_MIN_INSTANCES = 3
"""A name collapses into a group node when at least this many jobs share it."""
GROUP_MAX_NODES = 300
"""A grouped picture draws at most this many nodes (unless its jobs run more functions)."""

_NUMBERED = re.compile(r"^(.*?)(\d+)$", re.DOTALL)


def group_labels(names: Sequence[str], functions: Sequence[str], *,
                 max_nodes: int = GROUP_MAX_NODES) -> list[str | None]:
    """Each job's group label (None: drawn alone), from its name and its function."""
    sizes = dict(Counter(names))
    by_name = {name: name if n >= GROUP_MIN_INSTANCES else None for name, n in sizes.items()}
    if _nodes(by_name, sizes) <= max_nodes:
        return list(map(by_name.__getitem__, names))
    by_name = _by_number(sizes, max_nodes)
    labels = list(map(by_name.__getitem__, names))
    alone = sum(label is None for label in labels)
    if len(set(labels)) - (alone > 0) + alone <= max_nodes:
        return labels
    labels = [label or _function_label(function) for label, function in zip(
        labels, functions, strict=True)]
    if len(set(labels)) <= max_nodes:
        return labels
    return [_function_label(function) for function in functions]


def _nodes(labels: dict[str, str | None], sizes: dict[str, int]) -> int:
    """Nodes drawn: one per label, one per job without one."""
    grouped = {label for label in labels.values() if label is not None}
    return len(grouped) + sum(sizes[name] for name, label in labels.items() if label is None)


def _by_number(sizes: dict[str, int], max_nodes: int) -> dict[str, str | None]:
    """Name -> label: numbered names of one stem in runs of consecutive numbers, the
    narrowest runs that fit ``max_nodes`` (one run a stem if none does)."""
    numbered: dict[str, list[tuple[int, str]]] = {}
    for name in sizes:
        match = _NUMBERED.match(name)
        if match:
            numbered.setdefault(match.group(1), []).append((int(match.group(2)), name))
    families = {stem: sorted(found) for stem, found in numbered.items() if len(found) > 1}
    plain = {name: (name if n >= GROUP_MIN_INSTANCES else None) for name, n in sizes.items()}
    for found in families.values():
        for _, name in found:
            del plain[name]
    fixed = _nodes(plain, sizes)
    widest = max((found[-1][0] + 1 for found in families.values()), default=1)
    for width in _widths():
        runs = {stem: _runs(found, width) for stem, found in families.items()}
        if width >= widest or fixed + sum(len(r) for r in runs.values()) <= max_nodes:
            break
    labels = dict(plain)
    for stem, stem_runs in runs.items():
        for run in stem_runs:
            lo, hi = run[0][1][len(stem):], run[-1][1][len(stem):]
            label: str | None = run[0][1] if len(run) == 1 else f"{stem}[{lo}-{hi}]"
            if len(run) == 1 and sizes[run[0][1]] < GROUP_MIN_INSTANCES:
                label = None
            labels.update((name, label) for _, name in run)
    return labels


def _widths() -> Iterator[int]:
    """1, 2, 5, 10, 20, 50, ..."""
    for power in count():
        for step in (1, 2, 5):
            yield step * 10 ** power


def _runs(found: list[tuple[int, str]], width: int) -> list[list[tuple[int, str]]]:
    """Numbered names (sorted) cut into runs of ``width`` consecutive numbers."""
    runs: dict[int, list[tuple[int, str]]] = {}
    for number, name in found:
        runs.setdefault(number // width, []).append((number, name))
    return list(runs.values())


def _function_label(function: str) -> str:
    """``pkg.mod.noop`` -> ``noop()``."""
    return f"{function.rsplit('.', 1)[-1]}()"
