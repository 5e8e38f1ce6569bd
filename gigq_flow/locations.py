"""Where a queue lives: a SQLite file path or a ``postgresql://`` URL, and how to name it
in messages without its password."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def is_postgres_url(location: Any) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a file path."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@",
                                                                  ":***@", 1)))


def describe_location(location: str | os.PathLike[str]) -> str:
    """The file's absolute path, or the URL without its password, for messages."""
    if is_postgres_url(location):
        return redact(str(location))
    return os.path.abspath(location)
