"""Steps on processes: a child process of the worker runs one step at a time.

Each worker thread of a ``Worker(executor="processes")`` owns one :class:`StepProcess`,
started on its first job and reused for the next ones. The worker claims, keys and
records in its own process, as on threads; the child only calls the function, captures
what it prints and logs, and encodes its result. Because the step has a process of its
own, a timeout or a cancel ends it for real (SIGTERM, then SIGKILL after
``STOP_GRACE``), and a step that crashes (a segfault, ``os._exit``, the OOM killer) ends
only its attempt: the next job starts a new child.

Children are started with ``subprocess`` (no ``fork`` of a threaded process, no
re-import of the parent's ``__main__``) and talk over a socket pair; a child whose
worker disappears exits by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Pipe
from typing import Any, NamedTuple

from . import shipping
from .current import Attempt, CurrentJob, Running
from .errors import SerializationError
from .loader import CodeRef, import_function
from .output import Capturing, Output, describe_error, step_traceback
from .output import install as install_output_routing
from .serialization import dumps

logger = logging.getLogger(__name__)

STOP_GRACE = 2.0
"""Seconds a stopped step's process has between SIGTERM and SIGKILL."""
CLOSE_WAIT = 2.0
"""Seconds an idle child has to exit when its worker stops, before it is killed."""
PARENT_CHECK_INTERVAL = 0.5
"""Seconds between a child's checks that its worker still lives."""
OUTPUT_SEND_INTERVAL = 0.5
"""Seconds between two sends of a running step's output to its worker."""
CHILD_COMMAND = "from gigq_flow.step_process import child_main; child_main({fd})"


class Call(NamedTuple):
    """A step as its child process receives it."""

    job: CurrentJob
    code: CodeRef
    params: dict[str, Any]
    serializer: str
    output_limit: int


class Outcome(NamedTuple):
    """How an attempt's call ended: its encoded result, or its error (with the
    traceback of an exception) and whether a retry may help."""

    result: str | bytes | None = None
    error: str | None = None
    traceback: str | None = None
    retry: bool = True


def call_step(func: Callable, params: dict[str, Any], serializer: str, output: Output,
              attempt: Attempt) -> Outcome:
    """Call ``func`` on this thread with its output captured; encode its result."""
    try:
        with Capturing(output), Running(attempt):
            result = func(**params)
    except Exception as exc:
        return Outcome(error=describe_error(exc), traceback=step_traceback(exc))
    try:
        return Outcome(result=None if result is None else dumps(result, serializer))
    except SerializationError as exc:
        return Outcome(error=f"cannot store the result: {exc}", retry=False)


def describe_exit(returncode: int | None) -> str:
    """Why a step's process ended, from its return code (negative: a signal)."""
    if returncode is None:
        return "the step's process stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        why = " (out of memory, or killed from outside)" if -returncode == signal.SIGKILL else ""
        return f"the step's process was killed by signal {name} ({-returncode}){why}"
    return f"the step's process exited with code {returncode}"


class StepProcess:
    """One child process that runs steps for one worker thread."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._known: set[str] = set()  # digests of the code the child has

    @property
    def pid(self) -> int | None:
        """The child's process id, or None before the first step."""
        return None if self._process is None else self._process.pid

    def start(self) -> set[str]:
        """Start the child unless it runs; the digests of the shipped code it holds (to be
        completed by the code of the next call)."""
        if self._process is None or self._process.poll() is not None:
            if self._process is not None:
                self._reap()
            self._spawn()
        return self._known

    def run(self, call: Call, output: Output) -> Outcome:
        """Run ``call`` in the child started by ``start()`` and wait for its outcome; its
        output is written to ``output`` as it comes. A child that dies ends the attempt
        with its exit."""
        conn = self._conn
        if conn is None:
            return Outcome(error="the step's process was not started")
        try:
            conn.send(call)
            while True:
                message = conn.recv()
                if message[0] == "output":
                    output.write(message[1])
                    continue
                _, text, outcome = message
                if text:
                    output.write(text)
                return Outcome(*outcome)
        except (EOFError, OSError):
            return Outcome(error=describe_exit(self._reap()))

    def stop(self) -> None:
        """End the step running now: SIGTERM, then SIGKILL after STOP_GRACE."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        killer = threading.Timer(STOP_GRACE, _kill_if_running, args=(process,))
        killer.daemon = True
        killer.start()

    def close(self) -> None:
        """Let an idle child exit (kill it after CLOSE_WAIT); a running one is stopped."""
        process, conn = self._process, self._conn
        if process is None or conn is None:
            return
        try:
            conn.send(None)
        except OSError:
            pass
        try:
            process.wait(CLOSE_WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        conn.close()
        self._process = self._conn = None

    def _spawn(self) -> None:
        parent_end, child_end = Pipe()
        fd = child_end.fileno()
        self._process = subprocess.Popen(
            [sys.executable, "-c", CHILD_COMMAND.format(fd=fd)], pass_fds=(fd,),
            close_fds=True, stdin=subprocess.DEVNULL,  # a step never reads its worker's input
        )
        child_end.close()
        parent_end.send((list(sys.path), os.getpid()))
        self._conn, self._known = parent_end, set()

    def _reap(self) -> int | None:
        """Wait for the dead (or dying) child; its return code. The next step starts a new
        child."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        try:
            return process.wait(STOP_GRACE + 1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None


class ThreadSteps:
    """A worker's step processes: one for each thread that asks, closed together."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[StepProcess] = []
        self._lock = threading.Lock()

    def mine(self) -> StepProcess:
        """The calling thread's step process (made on first use, reused after)."""
        step = getattr(self._local, "step", None)
        if step is None:
            step = self._local.step = StepProcess()
            with self._lock:
                self._all.append(step)
        return step

    def pids(self) -> list[int]:
        """The pids of their children now."""
        with self._lock:
            return [step.pid for step in self._all if step.pid is not None]

    def close_all(self) -> None:
        """Close every one at once: each waits up to CLOSE_WAIT for its child."""
        with self._lock:
            steps, self._all = self._all, []
        closing = [threading.Thread(target=step.close, daemon=True) for step in steps]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()


def _kill_if_running(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()


# -- the child's side ------------------------------------------------------------------------
def child_main(fd: int) -> None:
    """Run the calls the worker sends over ``fd`` until it sends None or goes away."""
    conn = Connection(fd)
    sys_path, parent = conn.recv()
    sys.path[:] = sys_path
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    install_output_routing()
    _Child(conn).serve()


class _Child:
    """The child's end: runs calls one at a time; one thread sends the running step's
    output every OUTPUT_SEND_INTERVAL (and the step's flushes send it at once)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sending = threading.Lock()  # one message at a time, pieces in order
        self.output: Output | None = None  # the running step's
        self.functions: dict[str, Callable] = {}  # shipped code, by digest

    def serve(self) -> None:
        threading.Thread(target=self._send_output, daemon=True).start()
        while True:
            try:
                call = self.conn.recv()
            except (EOFError, OSError):
                return
            if call is None:
                return
            self._run(call)

    def _run(self, call: Call) -> None:
        try:
            func = self._function(call.code)
        except Exception as exc:  # deterministic: retrying cannot help
            self._send("outcome", "",
                       tuple(Outcome(error=f"cannot start job: {describe_error(exc)}",
                                     retry=False)))
            return
        output = Output(call.output_limit)
        output.on_flush = self.send_pending
        self.output = output
        outcome = call_step(func, call.params, call.serializer, output, Attempt(call.job))
        with self.sending:
            self.output = None
            self.conn.send(("outcome", output.take(), tuple(outcome)))

    def _function(self, code: CodeRef) -> Callable:
        kind, name, data = code
        if kind == "path":
            module_name, _, function_name = name.partition(":")
            return import_function(module_name, function_name)
        if data is not None:
            self.functions[name] = shipping.load(data)
        return self.functions[name]

    def send_pending(self) -> None:
        """Send what the running step wrote since the last send."""
        with self.sending:
            if self.output is not None:
                text = self.output.take()
                if text:
                    self.conn.send(("output", text))

    def _send(self, *message: Any) -> None:
        with self.sending:
            self.conn.send(message)

    def _send_output(self) -> None:
        while True:
            time.sleep(OUTPUT_SEND_INTERVAL)
            self.send_pending()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_INTERVAL)
    os._exit(1)
