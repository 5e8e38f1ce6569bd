"""What a worker agrees to run: the module allow-list, pickle refusal, private files.

Write access to the queue is the power to run code on its workers. A job names a
module and a function; ``allowed_modules`` bounds which modules a worker imports, and
pickled payloads (which run code when decoded) need ``allow_pickle=True``. New queue
files are readable by their owner only.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import uuid

import pytest
from support import jobs
from support.cli import cli
from support.helpers import subprocess_env

from gigq_flow import Job, JobQueue, Worker
from gigq_flow.codec import to_new_job
from gigq_flow.errors import ConfigurationError

pytestmark = pytest.mark.contract


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module that records its import in a file; returns (module name, marker path)."""
    name = f"relmarker_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / f"{name}.imported"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import os
        with open({str(marker)!r}, "a") as f:
            f.write(str(os.getpid()) + "\\n")

        def run(a, b):
            return a + b
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, marker
    sys.modules.pop(name, None)


def submit_as(queue: JobQueue, module: str, function: str, *, priority: int = 0,
              **params) -> str:
    """Submit a job naming ``module.function`` without importing it here."""
    job = to_new_job(Job("foreign", jobs.add, params=params, priority=priority))
    queue.store.submit([dataclasses.replace(job, function_module=module, function_name=function)])
    return job.id


# -- allow-list ------------------------------------------------------------------------------
@pytest.mark.parametrize("allowed", [["support.jobs"], ["support.jobs", "gigq_flow"], []],
                         ids=["one", "two", "none"])
def test_job_outside_the_allow_list_fails_before_any_import(queue, db_path, marker_module,
                                                            allowed):
    module, marker = marker_module
    refused = submit_as(queue, module, "run", a=1, b=2)
    allowed_job = queue.submit(Job("allowed", jobs.add, params={"a": 2, "b": 3}))
    worker = Worker(db_path, allowed_modules=allowed)
    try:
        assert worker.process_one()
        assert worker.process_one()  # it keeps going
    finally:
        worker.close()

    status = queue.get_status(refused)
    assert (status["status"], status["attempts"]) == ("failed", 1)  # no retry: it cannot help
    error = status["error"]
    assert "NotAllowedError" in error
    assert f"{module}.run is outside this worker's allowed modules" in error
    assert "allowed_modules" in error  # names the fix
    assert not marker.exists()  # nothing imported ...
    assert module not in sys.modules

    if allowed:
        assert queue.get_status(allowed_job)["status"] == "completed"
        assert queue.get_result(allowed_job) == 5
    else:
        assert queue.get_status(allowed_job)["status"] == "failed"


def test_allowed_module_is_imported_and_run(queue, db_path, marker_module):
    """The control case: the marker module does record its import."""
    module, marker = marker_module
    job_id = submit_as(queue, module, "run", a=1, b=2)
    worker = Worker(db_path, allowed_modules=[module])
    try:
        assert worker.process_one()
    finally:
        worker.close()
    assert queue.get_result(job_id) == 3
    assert marker.read_text().split() == [str(os.getpid())]


@pytest.mark.parametrize("module", ["support.jobs_evil", "support.job", "tests.support.jobs",
                                    "os"])
def test_allow_list_matches_whole_module_names(queue, db_path, module):
    job_id = submit_as(queue, module, "system", command="true")
    worker = Worker(db_path, allowed_modules=["support.jobs"])
    try:
        assert worker.process_one()
    finally:
        worker.close()
    assert "NotAllowedError" in queue.get_status(job_id)["error"]


def test_allow_list_admits_submodules(queue, db_path):
    job_id = submit_as(queue, "gigq_flow.serialization", "dumps", value=[1])
    worker = Worker(db_path, allowed_modules=["gigq_flow"])
    try:
        assert worker.process_one()
    finally:
        worker.close()
    assert queue.get_result(job_id) == "[1]"


def test_allow_list_covers_imported_names(queue, db_path, tmp_path):
    secret, stolen = tmp_path / "secret", tmp_path / "stolen"
    secret.write_text("s3cret")
    job_id = submit_as(queue, "support.jobs", "copyfile", src=str(secret), dst=str(stolen))
    worker = Worker(db_path, allowed_modules=["support.jobs"])
    try:
        assert worker.process_one()
    finally:
        worker.close()
    assert not stolen.exists()
    assert "NotAllowedError" in queue.get_status(job_id)["error"]


def test_allow_list_given_as_a_string_is_refused(db_path):
    with pytest.raises(ConfigurationError, match="list of module names"):
        Worker(db_path, allowed_modules="support.jobs")


# -- pickle ----------------------------------------------------------------------------------
def submit_pickled(queue: JobQueue, marker) -> str:
    """A pickled job whose params, once unpickled, create ``marker``."""
    job = Job("pickled", jobs.identity, params={"value": str(marker)}, serializer="pickle")
    new = to_new_job(job)
    payload = pickle.dumps({"value": jobs.UnpicklingSideEffect(str(marker))})
    queue.store.submit([dataclasses.replace(new, params=payload)])
    return job.id


def test_pickled_job_is_refused_unless_allowed(queue, db_path, tmp_path):
    marker = tmp_path / "unpickled"
    refused = submit_pickled(queue, marker)
    plain = queue.submit(Job("plain", jobs.add, params={"a": 1, "b": 1}))
    worker = Worker(db_path)  # default: allow_pickle=False
    try:
        assert worker.process_one() and worker.process_one()
    finally:
        worker.close()
    status = queue.store.get_job(refused)  # raw row: decoding it here would unpickle it
    assert (status["status"], status["attempts"]) == ("failed", 1)
    assert "NotAllowedError" in status["error"]
    assert "allow_pickle=True" in status["error"]
    assert not marker.exists()  # the payload was never decoded
    assert queue.get_result(plain) == 2  # JSON jobs need nothing

    assert queue.requeue_job(refused)
    trusting = Worker(db_path, allow_pickle=True)
    try:
        assert trusting.process_one()
    finally:
        trusting.close()
    assert marker.exists()  # decoded and run this time
    assert queue.get_status(refused)["status"] == "completed"


# -- file modes ------------------------------------------------------------------------------
MODE_SCRIPT = """
import os, sys
os.umask(int(sys.argv[2], 8))
import gigq_flow
from support import jobs
from support.cli import cli
if sys.argv[3] == "queue":
    q = gigq_flow.JobQueue(sys.argv[1])
    q.submit(gigq_flow.Job("j", jobs.noop))
else:
    w = gigq_flow.Worker(sys.argv[1])
    w.process_one()
for suffix in ("", "-wal", "-shm"):
    path = sys.argv[1] + suffix
    if os.path.exists(path):
        print(suffix or "main", oct(os.stat(path).st_mode & 0o777))
"""


@pytest.mark.parametrize("umask", ["022", "000"])
@pytest.mark.parametrize("opener", ["queue", "worker"])
def test_new_database_files_are_private(tmp_path, umask, opener):
    path = tmp_path / "private.db"
    out = subprocess.run([sys.executable, "-c", MODE_SCRIPT, str(path), umask, opener],
                         env=subprocess_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    modes = dict(line.split() for line in out.stdout.splitlines())
    assert modes["main"] == "0o600"
    assert set(modes.values()) == {"0o600"}  # SQLite gives -wal and -shm the file's mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.db"
    JobQueue(path).close()
    os.chmod(path, 0o640)
    JobQueue(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# -- the same options on the command line --------------------------------------------------------
def test_cli_worker_allow_module_and_pickle(queue, db_path, tmp_path):
    # a real function, outside the allowed module
    outside = submit_as(queue, "gigq_flow.serialization", "dumps", priority=3, value=[1])
    pickled = queue.submit(Job("pickled", jobs.add, params={"a": 2, "b": 2}, priority=2,
                               serializer="pickle"))
    inside = queue.submit(Job("inside", jobs.add, params={"a": 3, "b": 3}, priority=1))
    for _ in range(3):
        out = cli(db_path, "worker", "--once", "--allow-module", "support.jobs", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    assert "NotAllowedError" in queue.get_status(outside)["error"]
    assert "allow_pickle=True" in queue.store.get_job(pickled)["error"]
    assert queue.get_result(inside) == 6

    assert queue.requeue_job(pickled)
    out = cli(db_path, "worker", "--once", "--allow-module", "support.jobs", "--allow-pickle",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert queue.get_result(pickled) == 4


def test_cli_lists_workers(queue, db_path, tmp_path):
    worker = Worker(db_path, worker_id="listed-worker")
    queue.submit(Job("j", jobs.noop))
    try:
        assert worker.process_one()
    finally:
        worker.close()
    out = cli(db_path, "workers", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "listed-worker" in out.stdout
    assert "stopped" in out.stdout
