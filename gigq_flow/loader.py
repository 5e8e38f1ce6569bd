"""Which function a claimed job runs, whether this worker may run it, and the parents'
results it takes.

A job names its function by module and name (GigQ's way), or, for a step shipped by
value (:mod:`.shipping`), by the digest of its code as well. The allow-list and the
pickle rule are checked before anything is imported or unpickled.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import weakref
from collections.abc import Callable, Iterable

from . import shipping
from .errors import NotAllowedError
from .results import ParentResults
from .serialization import loads
from .store import ClaimedJob, ParentResult, Store

CodeRef = tuple[str, str, bytes | None]
"""What a child process needs to find a function: ``("path", "module:name", None)``, or
``("code", digest, code)``, the code sent once (None when the child has it already)."""


def module_allowed(module_name: str, allowed_modules: Iterable[str] | None) -> bool:
    """``module_name`` is one of ``allowed_modules`` or a submodule of one (None: any)."""
    return allowed_modules is None or any(
        module_name == allowed or module_name.startswith(allowed + ".")
        for allowed in allowed_modules
    )


_accepts: weakref.WeakKeyDictionary[Callable, bool] = weakref.WeakKeyDictionary()
"""What ``accepts_parent_results`` found, by function: a signature costs microseconds a
job, and a redefined function is a new key."""


def accepts_parent_results(func: Callable) -> bool:
    """True when ``func`` takes a ``parent_results`` parameter or ``**kwargs``."""
    try:
        return _accepts[func]
    except (KeyError, TypeError):  # TypeError: not weakly referable (a builtin, say)
        pass
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    accepts = any(
        p.name == "parent_results" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters
    )
    try:
        _accepts[func] = accepts
    except TypeError:
        pass
    return accepts


def import_function(module_name: str, function_name: str) -> Callable:
    """``module_name.function_name``, imported (a module being imported by another thread
    is waited for)."""
    module = sys.modules.get(module_name)  # imported already: skip importlib's locks
    if module is None or getattr(module.__spec__, "_initializing", False):
        module = importlib.import_module(module_name)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no function {function_name!r}") from None


class FunctionLoader:
    """A worker's rules for loading functions: ``allowed_modules`` (None: any) and
    ``allow_pickle`` (pickled payloads and code shipped by other processes)."""

    def __init__(self, store: Store, allowed_modules: Iterable[str] | None,
                 allow_pickle: bool) -> None:
        self.store = store
        self.allowed_modules = None if allowed_modules is None else tuple(allowed_modules)
        self.allow_pickle = allow_pickle
        self._unpickled: dict[str, Callable] = {}  # stored code this worker loaded
        self._reshipped: dict[Callable, shipping.Shipped] = {}  # redefined since submitted

    def load(self, claim: ClaimedJob) -> Callable:
        """The job's function. Looked up for every job, not cached: a notebook may
        redefine a function between runs, and a requeued step then runs the new one."""
        module_name, function_name = claim.function_module, claim.function_name
        self.check_allowed(module_name, function_name)
        if claim.serializer == "pickle":
            self.check_pickle_allowed()
        if claim.code_digest is None:
            return self._import(module_name, function_name)
        if "<" not in function_name:  # by name first: this process's current definition
            try:
                func = self._import(module_name, function_name)
            except ImportError:
                pass
            else:  # defined there, not merely imported (the CLI's __main__ imports main)
                if getattr(inspect.unwrap(func), "__module__", None) == module_name:
                    return func
        shipped = shipping.shipped_here(claim.code_digest)  # a closure this process shipped
        return shipped if shipped is not None else self._unpickle(claim)

    def loaded(self, claim: ClaimedJob) -> Callable | None:
        """``load`` when nothing needs importing or unpickling (nothing to wait for),
        else None; None too when this worker may not run it."""
        module = sys.modules.get(claim.function_module)
        if module is None or getattr(module.__spec__, "_initializing", False):
            return None
        if getattr(module, claim.function_name, None) is None and (
                claim.code_digest is None or shipping.shipped_here(claim.code_digest) is None):
            return None
        try:
            return self.load(claim)
        except Exception:
            return None

    def code_ref(self, claim: ClaimedJob, func: Callable, known: set[str]) -> CodeRef:
        """How a child process finds ``func``, the job's function as :meth:`load` found it
        (``known``: the digests the child has; the one sent is added). A function shipped
        by value goes by value, the one this process defines now if it redefined it: the
        child's ``__main__`` is not the one that defined it."""
        if claim.code_digest is None:
            return ("path", f"{claim.function_module}:{claim.function_name}", None)
        digest, code = claim.code_digest, None
        if func is not shipping.shipped_here(digest) and func is not self._unpickled.get(digest):
            current = self._reshipped.get(func) or shipping.ship(func)  # redefined here
            if current is not None:
                self._reshipped[func] = current
                digest, code = current
        if digest in known:
            return ("code", digest, None)
        if code is None:
            code = shipping.shipped_code(digest)
        if code is None:
            self.check_pickle_allowed(shipped=True)
            code = self._stored_code(claim)
        known.add(digest)
        return ("code", digest, code)

    def _import(self, module_name: str, function_name: str) -> Callable:
        func = import_function(module_name, function_name)
        if self.allowed_modules is not None:
            # A name an allowed module merely imports (e.g. shutil.copyfile) is not allowed.
            defined_in = getattr(inspect.unwrap(func), "__module__", None) or module_name
            self.check_allowed(defined_in, function_name)
        return func

    def _unpickle(self, claim: ClaimedJob) -> Callable:
        digest = claim.code_digest
        assert digest is not None
        self.check_pickle_allowed(shipped=True)
        func = self._unpickled.get(digest)
        if func is None:
            func = self._unpickled[digest] = shipping.load(self._stored_code(claim))
        return func

    def _stored_code(self, claim: ClaimedJob) -> bytes:
        code = self.store.step_code(claim.code_digest or "")
        if code is None:
            raise LookupError(f"the code of {claim.function_module}.{claim.function_name} "
                              "is no longer in the queue (cleared); submit the step again")
        return code

    def parents_of(self, claim: ClaimedJob, func: Callable) -> list[ParentResult] | None:
        """The stored results of the job's parents, when its function takes them."""
        wants = claim.pass_parent_results
        if not claim.has_dependencies or wants is False \
                or (wants is None and not accepts_parent_results(func)):
            return None
        return self.store.parent_results(claim.id)

    def parent_results(self, parents: list[ParentResult]) -> ParentResults:
        """The parents' results decoded, as a step's ``parent_results``."""
        if any(parent.serializer == "pickle" for parent in parents):
            self.check_pickle_allowed()
        return ParentResults([
            (parent.id, parent.name,
             loads(parent.result, parent.serializer, what=f"result of parent job {parent.id}"))
            for parent in parents
        ])

    def check_allowed(self, module_name: str, function_name: str) -> None:
        if module_allowed(module_name, self.allowed_modules):
            return
        raise NotAllowedError(
            f"{module_name}.{function_name} is outside this worker's allowed modules "
            f"({', '.join(self.allowed_modules or ()) or 'none'}); add {module_name!r} to "
            "allowed_modules to run it"
        )

    def check_pickle_allowed(self, *, shipped: bool = False) -> None:
        if self.allow_pickle:
            return
        if shipped:
            raise NotAllowedError(
                "the job's function was defined in another process (a notebook, a script's "
                "__main__ or a closure) and is stored by value; unpickling it runs code "
                "chosen by whoever wrote the database, and this worker refuses pickle: "
                "start it with allow_pickle=True (gigq-flow worker --allow-pickle) if you "
                "trust the database file"
            )
        raise NotAllowedError(
            "the job's payload is pickled and this worker refuses pickle (unpickling runs "
            "code chosen by whoever wrote the database); start the worker with "
            "allow_pickle=True if you trust the database file"
        )
