"""gigq_flow.fingerprint: the digests that decide whether a cached step result is reused.

Step code is written to real module files, imported, edited and imported again (under a
new module name, or in a subprocess), as a user edits a file or a notebook cell between
two runs. A change to what a step runs must change its digest (never a stale hit);
comments, line positions, module names, processes and PYTHONHASHSEED must not.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import subprocess_env
from support.modules import ModuleWriter

from gigq_flow import fingerprint
from gigq_flow.errors import ConfigurationError, SerializationError
from gigq_flow.fingerprint import (
    DIGEST_BYTES,
    code_fingerprint,
    digest,
    params_digest,
    result_digest,
)

STEP = """\
LIMIT = 10
UNUSED = "not read by any function"

def step(x, scale=2, *, offset=1):
    total = middle(x) * scale + offset
    return [total + i for i in range(LIMIT) if i % 2]

def middle(x):
    return deepest(x) + 1

def deepest(x):
    return x * 3
"""


@pytest.fixture
def write_module(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    writer = ModuleWriter(tmp_path)
    yield writer
    writer.forget()


def step_digest(writer: ModuleWriter, label: str, source: str, name: str = "step") -> str:
    return code_fingerprint(getattr(writer.load(label, source), name)).digest


def run_python(cwd: Path, args: list[str], seed: str) -> str:
    """A fresh interpreter run with ``args`` in ``cwd`` and PYTHONHASHSEED=``seed``;
    its stdout."""
    env = subprocess_env({"PYTHONHASHSEED": seed, "PYTHONDONTWRITEBYTECODE": "1"})
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# digest ----------------------------------------------------------------------------


def test_digest_length_prefixes_each_part():
    assert digest("ab", "c") != digest("a", "bc")
    assert digest("a", "") != digest("a")
    assert digest("ab", "c") == digest("ab", "c")
    assert len(digest("x")) == 2 * DIGEST_BYTES
    assert digest("é") == digest("é".encode())  # a str is hashed as its UTF-8 bytes


# the function's own code -----------------------------------------------------------


def test_the_same_code_in_two_modules_has_one_digest(write_module):
    first = step_digest(write_module, "a", STEP)
    assert step_digest(write_module, "b", STEP) == first
    assert code_fingerprint(write_module.load("c", STEP).step) == fingerprint.CodeFingerprint(
        first, ())


def test_comments_blank_lines_and_line_positions_do_not_change_it(write_module):
    moved = '"""A docstring of the module."""\n\n# a comment\n\n\n' + STEP.replace(
        "    total = middle(x) * scale + offset",
        "    # the comment of a line\n\n    total = middle(x) * scale + offset  # why")
    assert step_digest(write_module, "moved", moved) == step_digest(write_module, "base", STEP)


@pytest.mark.parametrize(("old", "new"), [
    ("return x * 3", "return x * 4"),  # two calls deep
    ("return deepest(x) + 1", "return deepest(x) - 1"),  # one call deep
    ("middle(x) * scale", "middle(x) / scale"),  # the step itself
    ("if i % 2]", "if i % 3]"),  # inside a comprehension (a nested code object)
    ("scale=2", "scale=3"),  # a default
    ("offset=1", "offset=1.0"),  # a keyword-only default, equal but of another type
    ("LIMIT = 10", "LIMIT = 11"),  # a module constant the step reads
], ids=["helper-two-deep", "helper", "body", "comprehension", "default", "kwdefault",
        "constant"])
def test_a_change_to_what_runs_changes_it(write_module, old, new):
    assert old in STEP
    before = step_digest(write_module, "before", STEP)
    assert step_digest(write_module, "after", STEP.replace(old, new)) != before


def test_an_unreferenced_constant_does_not_change_it(write_module):
    edited = STEP.replace('UNUSED = "not read by any function"', "UNUSED = 12345")
    assert step_digest(write_module, "after", edited) == step_digest(write_module, "base", STEP)


def test_the_code_that_runs_counts_not_the_file_rewritten_after_import(write_module):
    module = write_module.load("loaded", STEP)
    before = code_fingerprint(module.step).digest
    Path(module.__file__).write_text(STEP.replace("return x * 3", "return x * 4"))
    assert code_fingerprint(module.step).digest == before


def test_a_constant_rebound_at_run_time_changes_it(write_module):
    module = write_module.load("live", STEP)
    before = code_fingerprint(module.step).digest
    module.LIMIT = 11  # as re-running a notebook cell that assigns it does
    assert code_fingerprint(module.step).digest != before
    module.LIMIT = 10
    assert code_fingerprint(module.step).digest == before


# helpers in other modules, classes, recursion ---------------------------------------

OTHER = """\
def helper(x):
    return x + {value}

def other_helper(x):
    return x
"""


def test_a_helper_in_another_module_is_not_followed(write_module):
    """The specified rule: only the step's module and __main__ are followed; the code of
    other modules is keyed by cache_version."""
    other = write_module.write("other", OTHER.format(value=1))
    step = f"from {other} import helper\n\ndef step(x):\n    return helper(x)\n"
    first = write_module.load("step1", step)
    write_module.write("other", OTHER.format(value=2))
    second = write_module.load("step2", step)
    assert (first.step(0), second.step(0)) == (1, 2)  # the edit is in the code that runs
    assert code_fingerprint(second.step).digest == code_fingerprint(first.step).digest


def test_binding_another_modules_function_to_the_name_changes_it(write_module):
    other = write_module.write("other", OTHER.format(value=1))
    body = "\n\ndef step(x):\n    return helper(x)\n"
    plain = step_digest(write_module, "plain", f"from {other} import helper" + body)
    rebound = step_digest(write_module, "rebound",
                          f"from {other} import other_helper as helper" + body)
    assert rebound != plain


CLASSY = """\
import functools

class Base:
    def shared(self):
        return 1

class Counter(Base):
    START = 0

    def __init__(self):
        self.count = self.START

    def bump(self):
        return self.count + 1

    @staticmethod
    def unit():
        return 1

    @classmethod
    def make(cls):
        return cls()

    @property
    def doubled(self):
        return self.count * 2

    @functools.cached_property
    def cached(self):
        return self.count * 3

def step():
    counter = Counter.make()
    return counter.bump() + counter.unit() + counter.doubled + counter.shared()
"""


@pytest.mark.parametrize(("old", "new"), [
    ("return self.count + 1", "return self.count + 2"),
    ("self.count = self.START", "self.count = self.START + 1"),
    ("return 1\n\n    @classmethod", "return 2\n\n    @classmethod"),
    ("return cls()", "return cls() or None"),
    ("return self.count * 2", "return self.count * 5"),
    ("return self.count * 3", "return self.count * 4"),
    ("START = 0", "START = 7"),
    ("def shared(self):\n        return 1", "def shared(self):\n        return 9"),
], ids=["method", "init", "staticmethod", "classmethod", "property", "cached_property",
        "class-constant", "base-class"])
def test_editing_a_class_the_step_uses_changes_it(write_module, old, new):
    assert old in CLASSY
    before = step_digest(write_module, "before", CLASSY)
    assert step_digest(write_module, "after", CLASSY.replace(old, new)) != before


def test_an_object_of_a_class_of_the_module_brings_its_class(write_module):
    source = CLASSY.replace("def step():", "COUNTER = Counter()\n\ndef step():").replace(
        "counter = Counter.make()", "counter = COUNTER")
    before = step_digest(write_module, "before", source)
    edited = source.replace("return self.count + 1", "return self.count + 2")
    assert step_digest(write_module, "after", edited) != before


ENUM = """\
from enum import Enum

class Mode(Enum):
    FAST = 1
    SLOW = 2

def step():
    return Mode.FAST.value
"""


def test_the_value_of_an_enum_member_is_part_of_its_class(write_module):
    before = step_digest(write_module, "before", ENUM)
    assert step_digest(write_module, "after", ENUM.replace("FAST = 1", "FAST = 3")) != before


RECURSIVE = """\
def factorial(n):
    return 1 if n <= 1 else n * factorial(n - 1)

def is_even(n):
    return True if n == 0 else is_odd(n - 1)

def is_odd(n):
    return False if n == 0 else is_even(n - 1)

def step(n):
    return factorial(n), is_even(n), step if n < 0 else None
"""


def test_recursion_and_mutual_recursion_end_and_count(write_module):
    module = write_module.load("base", RECURSIVE)
    assert code_fingerprint(module.step) == code_fingerprint(module.step)
    assert code_fingerprint(module.is_even) == code_fingerprint(module.is_even)
    edited = step_digest(write_module, "edited",
                         RECURSIVE.replace("is_even(n - 1)", "is_even(n - 1) and True"))
    assert edited != code_fingerprint(module.step).digest


# processes, PYTHONHASHSEED, __main__ -------------------------------------------------

WORDS = """\
TAGS = frozenset({"red", "green", "blue", "cyan", "magenta", "yellow", "black", "white"})

def step(word):
    if word in {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"}:
        return word in {b"x", b"y", b"z", b"w"}
    return (word in TAGS, frozenset({"k1", "k2", "k3"}))
"""


def test_frozenset_constants_give_one_digest_under_every_hash_seed(write_module, tmp_path):
    module = write_module.load("words", WORDS)
    words = next(c for c in module.step.__code__.co_consts if isinstance(c, frozenset)
                 and "alpha" in c)
    code = (f"import json, {module.__name__} as m\n"
            "from gigq_flow.fingerprint import code_fingerprint\n"
            "words = next(c for c in m.step.__code__.co_consts if isinstance(c, frozenset) "
            "and 'alpha' in c)\n"
            "print(json.dumps([code_fingerprint(m.step).digest, list(words)]))")
    runs = [json.loads(run_python(tmp_path, ["-c", code], seed)) for seed in ("1", "2", "3", "4")]
    assert {tuple(order) for _, order in runs} != {tuple(runs[0][1])}  # the orders differ
    assert {found for found, _ in runs} == {code_fingerprint(module.step).digest}
    assert sorted(runs[0][1]) == sorted(words)


MAIN = """\
from gigq_flow.fingerprint import code_fingerprint

LIMIT = 3

def helper(x):
    return x in {"alpha", "beta", "gamma", "delta"} or x == LIMIT

def step(x):
    return helper(x)

print(code_fingerprint(step).digest)
"""


def test_a_function_of_main_has_one_digest_across_processes(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(MAIN)
    first, second = (run_python(tmp_path, [str(script)], seed) for seed in ("1", "2"))
    assert first == second
    script.write_text(MAIN.replace("x == LIMIT", "x != LIMIT"))  # its __main__ helper
    assert run_python(tmp_path, [str(script)], "1") != first


def run_cell(source: str, number: int) -> dict:
    """``source`` run as IPython runs a notebook cell: in ``__main__``'s namespace, compiled
    under a file name of its own, after ``number`` blank lines."""
    namespace = {"__name__": "__main__"}
    exec(compile("\n" * number + source, f"<ipython-input-{number}-0a1b2c>", "exec"),
         namespace)
    return namespace


def test_a_notebook_cell_run_again_has_the_same_digest():
    cell = MAIN.replace("print(code_fingerprint(step).digest)", "")
    first, again = (code_fingerprint(run_cell(cell, n)["step"]).digest for n in (1, 7))
    assert first == again
    edited = run_cell(cell.replace("x == LIMIT", "x != LIMIT"), 1)
    assert code_fingerprint(edited["step"]).digest != first


# callables whose code cannot be read, wrappers ----------------------------------------


def test_a_builtin_is_keyed_by_its_name_and_listed_as_unknown(tmp_path):
    found = code_fingerprint(math.sqrt)
    assert found.unknown == ("math.sqrt",)
    assert found == code_fingerprint(math.sqrt)
    assert found.digest != code_fingerprint(math.cos).digest
    code = "import math; from gigq_flow.fingerprint import code_fingerprint as f; " \
           "print(f(math.sqrt).digest)"
    assert run_python(tmp_path, ["-c", code], "5") == found.digest


class CallableObject:
    def __call__(self) -> int:
        return 1


@pytest.mark.parametrize(("func", "name"), [
    (len, "builtins.len"),
    (functools.partial(math.pow, 2), "functools.partial"),
    (CallableObject(), "test_fingerprint.CallableObject"),
    (CallableObject, "test_fingerprint.CallableObject"),
    (str.join, "builtins.str.join"),
])
def test_other_callables_are_listed_as_unknown_without_raising(func, name):
    assert code_fingerprint(func).unknown == (name,)


def test_a_task_has_the_digest_of_its_function_and_sees_its_helpers(write_module):
    source = ("from gigq_flow import task\n\n@task\ndef step(x):\n    return helper(x)\n\n"
              "def helper(x):\n    return x + 1\n")
    module = write_module.load("task", source)
    assert type(module.step).__name__ == "TaskWrapper"
    assert code_fingerprint(module.step) == code_fingerprint(module.step.__wrapped__)
    edited = step_digest(write_module, "edited", source.replace("x + 1", "x + 2"))
    assert edited != code_fingerprint(module.step).digest


DECORATED = """\
import functools

def retry(times):
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for _ in range(times - 1):
                pass
            return func(*args, **kwargs)
        return wrapper
    return decorate

@retry(3)
def step(x):
    return x
"""


@pytest.mark.parametrize(("old", "new"), [
    ("@retry(3)", "@retry(4)"),  # a value in the wrapper's closure
    ("for _ in range(times - 1):", "for _ in range(times):"),  # the wrapper's code
    ("return x\n", "return -x\n"),  # the wrapped function
])
def test_a_wrapper_function_and_what_it_wraps_are_both_hashed(write_module, old, new):
    before = step_digest(write_module, "before", DECORATED)
    assert step_digest(write_module, "after", DECORATED.replace(old, new)) != before


def test_the_memo_of_code_objects_stays_bounded(monkeypatch):
    monkeypatch.setattr(fingerprint, "MEMO_LIMIT", 5)
    monkeypatch.setattr(fingerprint, "CODE_MEMO", {})
    digests = set()
    for n in range(20):
        namespace: dict = {}
        exec(f"def f():\n    return {n}\n", namespace)
        digests.add(code_fingerprint(namespace["f"]).digest)
        assert len(fingerprint.CODE_MEMO) <= 5
    assert len(digests) == 20


# params and results -------------------------------------------------------------------


def test_params_digest_is_canonical_and_keeps_values_apart():
    assert params_digest({"a": 1, "b": [1, 2]}, "json") == params_digest({"b": [1, 2], "a": 1},
                                                                         "json")
    assert params_digest({"a": 1, "b": 2}, "pickle") == params_digest({"b": 2, "a": 1},
                                                                      "pickle")
    assert params_digest({"a": 1}, "json") != params_digest({"a": 2}, "json")
    assert params_digest({"a": 1}, "json") != params_digest({"a": 1.0}, "json")
    assert params_digest({"a": 1}, "json") != params_digest({"a": 1}, "pickle")
    assert params_digest({"a": float("nan")}, "json") == params_digest({"a": float("nan")},
                                                                       "json")
    assert params_digest({}, "json") == params_digest({}, "pickle")
    assert params_digest({}, "json") != params_digest({"a": None}, "json")


def test_params_digest_refuses_what_it_cannot_encode():
    with pytest.raises(SerializationError, match='serializer="pickle"'):
        params_digest({"a": {1, 2}}, "json")
    with pytest.raises(ConfigurationError, match="json, pickle"):
        params_digest({"a": 1}, "yaml")


def test_result_digest_tags_the_serializer_and_keeps_none_apart():
    assert result_digest(None, "json") != result_digest("null", "json")
    assert result_digest("1", "json") != result_digest(b"1", "pickle")
    assert result_digest("[1]", "json") == result_digest(b"[1]", "json")
    assert result_digest("1", "json") != result_digest("2", "json")
    assert result_digest(None, "json") == result_digest(None, "json")
