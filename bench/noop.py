"""The job every system runs: a module-level no-op that workers in any process can import."""


def noop() -> None:
    """Do nothing, so that a benchmark measures the queue and not the job."""
