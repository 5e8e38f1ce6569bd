"""Checks of the values users pass, each raising a ConfigurationError that names the
argument, what it accepts and what it got. ``bool`` is refused where a number is
expected (``True`` is an ``int`` to Python, never a count or a duration here)."""

from __future__ import annotations

from typing import Any

from .errors import ConfigurationError


def check_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """``value``, an ``int`` of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or (minimum is not None and value < minimum):
        accepted = "an int" if minimum is None else f"an int >= {minimum}"
        raise ConfigurationError(f"{name} must be {accepted}, got {value!r}")
    return value


def check_number(name: str, value: Any, *, minimum: float = 0, inclusive: bool = True,
                 kind: str = "a number") -> float:
    """``value``, an ``int`` or ``float`` of at least ``minimum`` (above it unless
    ``inclusive``); ``kind`` names it in the message (e.g. "a number of seconds")."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value >= minimum if inclusive else value > minimum):
        relation = ">=" if inclusive else ">"
        raise ConfigurationError(f"{name} must be {kind} {relation} {minimum:g}, got {value!r}")
    return value
