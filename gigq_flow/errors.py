"""One exception tree for everything gigq_flow raises on purpose.

Each error subclasses the built-in a caller would already catch (``ValueError``,
``TypeError``, ``KeyError``), so code written against GigQ keeps working.
"""

from __future__ import annotations


class GigqFlowError(Exception):
    """Root of every error raised by gigq_flow."""


class DatabaseError(GigqFlowError):
    """The queue file cannot be opened or used; the message names the path and the cause."""


class SchemaVersionError(DatabaseError):
    """The file was written by a newer gigq_flow than this one."""


class DestinationNotEmptyError(DatabaseError):
    """A queue copy would overwrite a destination that already holds rows."""


class ConfigurationError(GigqFlowError, ValueError):
    """An option has a value that cannot work (e.g. ``concurrency=0``)."""


class SerializationError(GigqFlowError, TypeError):
    """A value cannot be encoded or decoded by the chosen serializer."""


class TaskDefinitionError(GigqFlowError, TypeError):
    """A function cannot become a job (lambda, closure, method, async, ...)."""


class NotAllowedError(GigqFlowError, PermissionError):
    """A worker refused a job: its function is outside the allow-list, or its payload is
    pickled and the worker does not accept pickle."""


class NotFoundError(GigqFlowError, KeyError):
    """Something asked for by id or name is not in the queue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class JobNotFoundError(NotFoundError):
    """No job with the given id exists in the queue."""


class WorkflowNotFoundError(NotFoundError):
    """No workflow with the given id exists in the queue."""


class WorkflowError(GigqFlowError, ValueError):
    """A workflow cannot be submitted as it stands."""


class CycleError(WorkflowError):
    """The dependencies form a cycle; ``cycle`` holds the task names in order."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        path = " -> ".join([*cycle, cycle[0]])
        super().__init__(f"dependency cycle: {path}; remove one of these dependencies")


class UnknownDependencyError(WorkflowError):
    """A dependency is neither a job of the workflow nor a job already in the queue."""


class SelfDependencyError(WorkflowError):
    """A job lists itself as a dependency."""


class DuplicateJobError(WorkflowError):
    """The same Job was added to a workflow twice."""


class RenderError(GigqFlowError, RuntimeError):
    """A picture could not be rendered; the message says why and what to install."""


class RendererNotFoundError(RenderError):
    """No Graphviz renderer is available for the requested format."""


class JobCancelled(GigqFlowError):
    """Raised in a running step by ``check_cancelled()`` once its attempt was cancelled or
    timed out: the step should stop; its outcome is discarded."""
