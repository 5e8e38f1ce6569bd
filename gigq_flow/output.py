"""A step's own output: what it prints to ``sys.stdout`` and ``sys.stderr``, the log
records it makes and the traceback of its failure, kept per attempt while other threads'
output goes where it went.

:func:`install` puts a router on ``sys.stdout`` and ``sys.stderr`` and a log record
factory in place, once per process (loggers, handlers and ``logging.basicConfig`` stay
the user's). A thread that runs a step holds an :class:`Output` (:class:`Capturing`):
the router sends that thread's writes to it and passes every other thread's writes to
the stream it wraps; the factory keeps the thread's log records as they are made
(``LEVEL logger: message``, with the traceback of ``logger.exception``), and what a
handler writes to ``sys.stdout``/``sys.stderr`` for that thread is dropped, the record
being kept already. Writes to file descriptor 1 or 2 that bypass ``sys.stdout`` (C
extensions, subprocesses) are not captured.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, TextIO

DEFAULT_OUTPUT_LIMIT = 1024 * 1024
"""Characters kept per attempt by default; what follows is cut, and the cut is marked."""
CUT_MARK = "\n[output cut at {limit:,} characters: the step wrote more]\n"
RECORD_FORMAT = logging.Formatter("%(levelname)s %(name)s: %(message)s")

LOGGING_GLOBALS = vars(logging)
"""The namespace of the logging module's code: a write from there is a handler's."""

_current = threading.local()
_install_lock = threading.Lock()
_previous_factory: Any = logging.getLogRecordFactory()


class Output:
    """The output of one attempt: text in the order it was written, at most ``limit``
    characters, taken away in pieces by ``take()`` (to be stored).

    One thread writes (the step's); another may take at the same time (the worker's
    heartbeat): the pieces wait in a deque, whose appends and pops need no lock."""

    def __init__(self, limit: int = DEFAULT_OUTPUT_LIMIT) -> None:
        self.limit = limit
        self.size = 0
        self.cut = False
        self.pending: deque[str] = deque()
        self.after_record = False
        """A log record was kept and no other write came since: a write may be a
        handler's copy of it."""
        self.storing = threading.Lock()
        """Held while a piece is taken and stored, so that pieces are stored in order."""
        self.on_flush: Callable[[], None] | None = None
        """Called when the step flushes ``sys.stdout`` or ``sys.stderr`` (a step's process
        then sends what it wrote: a crash right after loses nothing flushed)."""

    def write(self, text: str) -> int:
        written = len(text)
        if self.size + written <= self.limit:
            self.size += written
            self.pending.append(text)
        elif not self.cut:
            room = self.limit - self.size
            self.size, self.cut = self.limit, True
            self.pending.append(text[:room] + CUT_MARK.format(limit=self.limit))
        return written

    def take(self) -> str:
        """The text written since the last ``take()``."""
        pending = self.pending
        return "".join([pending.popleft() for _ in range(len(pending))])


class Router:
    """Stands in for ``sys.stdout`` or ``sys.stderr``: the writes of a thread that runs a
    step go to its Output, all others to the stream it wraps."""

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        output = getattr(_current, "output", None)
        if output is None:
            return self.wrapped.write(text)
        if output.after_record:  # a handler may be writing its copy of a kept record
            if sys._getframe(1).f_globals is LOGGING_GLOBALS:
                return len(text)
            output.after_record = False
        size = output.size + len(text)
        if size > output.limit:
            return output.write(text)
        output.size = size  # Output.write's common case, inline: a print is two writes
        output.pending.append(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        output = getattr(_current, "output", None)
        if output is None:
            self.wrapped.flush()
        elif output.on_flush is not None:
            output.on_flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def keep_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """The log record factory: a record made in a thread that runs a step is also kept
    in its Output."""
    record: logging.LogRecord = _previous_factory(*args, **kwargs)
    output = getattr(_current, "output", None)
    if output is not None:
        output.write(RECORD_FORMAT.format(record) + "\n")
        output.after_record = True
    return record


def install() -> None:
    """Route ``sys.stdout``, ``sys.stderr`` and log records (again if something replaced
    them since)."""
    global _previous_factory
    with _install_lock:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None and not isinstance(stream, Router):
                setattr(sys, name, Router(stream))
        if logging.getLogRecordFactory() is not keep_record:
            _previous_factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(keep_record)


class Capturing:
    """``with Capturing(output):`` sends this thread's output to ``output``."""

    __slots__ = ("output",)

    def __init__(self, output: Output) -> None:
        self.output = output

    def __enter__(self) -> Output:
        _current.output = self.output
        return self.output

    def __exit__(self, *exc: object) -> None:
        _current.output = None


def describe_error(exc: BaseException) -> str:
    """The one line GigQ stores as a failed job's ``error``."""
    return f"{type(exc).__name__}: {exc}"


def step_traceback(exc: BaseException) -> str:
    """The traceback of an exception a step raised, from the step's own frame on."""
    tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else None))
