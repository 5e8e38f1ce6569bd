"""The layered DAG of the incremental-run benchmarks (``bench/cache.py``,
``bench/cache_profile.py``): LAYERS layers, each step after two steps of the layer above,
every step ``jobs.numbered`` with its own index, so that no two steps share a cache key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gigq_flow import Job, Workflow

from .jobs import numbered

LAYERS = 20


@dataclass(frozen=True)
class Shape:
    """A layered DAG: ``steps`` steps in LAYERS layers, each sleeping ``seconds``."""

    steps: int
    seconds: float = 0.0

    @property
    def width(self) -> int:
        return math.ceil(self.steps / LAYERS)

    def describe(self) -> str:
        what = f"sleeping {1000 * self.seconds:g} ms" if self.seconds else "no-op"
        layers = math.ceil(self.steps / self.width)
        return f"{self.steps:,} {what} steps ({layers} layers of up to {self.width})"


def layered(shape: Shape) -> Workflow:
    """``shape.steps`` steps, ``shape.width`` a layer; step i of a layer after steps i and
    i+1 (wrapping) of the layer above."""
    workflow = Workflow(f"layered-{shape.steps}")
    above: list[Job] = []
    layer: list[Job] = []
    for index in range(shape.steps):
        if index % shape.width == 0:
            above, layer = layer, []
        i = len(layer)
        parents = (list(dict.fromkeys([above[i % len(above)], above[(i + 1) % len(above)]]))
                   if above else None)
        layer.append(workflow.add_task(numbered, {"index": index, "seconds": shape.seconds},
                                       depends_on=parents, name=f"step-{index}"))
    return workflow
