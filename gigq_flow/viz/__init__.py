"""Pictures and the live panel of workflows.

``styles`` (the state-to-style map) is light and imported eagerly; the rest loads on
first use, so ``import gigq_flow`` never imports graphviz, pygraphviz or ipywidgets.
"""

from __future__ import annotations

import importlib
from typing import Any

from .styles import (
    CACHED,
    DEFAULT_RANKDIR,
    DEFAULT_STYLES,
    RANKDIRS,
    Style,
    get_styles,
    reset_styles,
    set_style,
    style_for,
)

_LAZY = {
    "Picture": "render", "render": "render", "choose_renderer": "render",
    "build_view": "view", "to_dot": "dot", "to_mermaid": "mermaid", "visualize": "draw",
    "RunPanel": "widget", "timeline": "timeline",
}

__all__ = [
    "CACHED", "DEFAULT_RANKDIR", "DEFAULT_STYLES", "RANKDIRS", "Picture", "RunPanel", "Style",
    "build_view", "choose_renderer", "get_styles", "render", "reset_styles", "set_style",
    "style_for", "timeline", "to_dot", "to_mermaid", "visualize",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
