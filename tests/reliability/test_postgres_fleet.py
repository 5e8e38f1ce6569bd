"""A fleet of worker hosts on one PostgreSQL queue: a 2,000-job DAG runs to the end, each
job completed once, though one host is SIGKILLed mid-run.

Each host is a ``gigq-flow --db postgresql://... worker`` process. Run as root where
``ip netns``, ``unshare`` and ``socat`` work, each host gets a network namespace and a
host name of its own and reaches the database through a veth pair and a relay, as a
separate machine would; elsewhere the hosts are plain processes of this machine (the
test prints which).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from urllib.parse import urlsplit, urlunsplit

import pytest
from support import jobs
from support.db import sql
from support.helpers import subprocess_env, wait_until

from gigq_flow import JobQueue, Workflow

HOSTS = 4
THREADS_PER_HOST = 2
LAYERS, WIDTH = 40, 50  # 2,000 jobs
FAST, SLOW = 0.01, 0.6  # seconds; every SLOW_EVERY-th job is slow, so kills catch one
SLOW_EVERY = 40
LEASE_TIMEOUT = 1.5
RUN_DEADLINE = 240.0


def build_dag(seed: int = 8) -> tuple[Workflow, dict[str, list[str]]]:
    """LAYERS layers of WIDTH jobs, each job after 1 to 3 jobs of the layer before."""
    rng = random.Random(seed)
    workflow = Workflow("fleet")
    parents: dict[str, list[str]] = {}
    previous: list = []
    for layer in range(LAYERS):
        current = []
        for i in range(WIDTH):
            index = layer * WIDTH + i
            deps = rng.sample(previous, rng.randint(1, 3)) if previous else []
            slow = index % SLOW_EVERY == SLOW_EVERY // 2
            job = workflow.add_task(jobs.sleep_for, {"seconds": SLOW if slow else FAST},
                                    depends_on=deps, name=f"{'slow' if slow else 'job'}-{index}",
                                    max_attempts=3)
            parents[job.id] = [dep.id for dep in deps]
            current.append(job)
        previous = current
    return workflow, parents


# -- hosts -------------------------------------------------------------------------------------
SET_HOSTNAME_AND_RUN = """
import socket, sys
from gigq_flow.cli import main
socket.sethostname(sys.argv[1])
sys.exit(main(sys.argv[2:]))
"""


def namespaces_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    if not all(shutil.which(tool) for tool in ("ip", "socat", "unshare")):
        return "ip, socat or unshare missing"
    probe = f"gqf-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "ip netns add refused"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Hosts:
    """Worker hosts on one queue; ``netns=True`` puts each in a network namespace."""

    def __init__(self, url: str, env: dict[str, str], log_dir, netns: bool) -> None:
        self.url, self.env, self.log_dir, self.netns = url, env, log_dir, netns
        self.tag = uuid.uuid4().hex[:6]
        self.procs: dict[str, subprocess.Popen] = {}
        self.relays: list[subprocess.Popen] = []
        self.namespaces: list[str] = []

    def _run(self, *command: str) -> None:
        subprocess.run(command, check=True, capture_output=True)

    def _network(self, index: int) -> tuple[list[str], str]:
        """A namespace with a veth to this machine and a relay to the server: the command
        prefix and the URL the host uses."""
        ns = f"gqf-{self.tag}-{index}"
        outside, inside = f"gq{self.tag}{index}h", f"gq{self.tag}{index}n"
        gateway, address = f"10.213.{index}.1", f"10.213.{index}.2"
        self._run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        self._run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        self._run("ip", "link", "set", inside, "netns", ns)
        self._run("ip", "addr", "add", f"{gateway}/30", "dev", outside)
        self._run("ip", "link", "set", outside, "up")
        self._run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/30", "dev", inside)
        self._run("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        self._run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        server = urlsplit(self.url)
        relay = subprocess.Popen(
            ["socat", f"TCP-LISTEN:15432,bind={gateway},fork,reuseaddr",
             f"TCP:{server.hostname}:{server.port or 5432}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.relays.append(relay)
        userinfo = server.netloc.rsplit("@", 1)[0] + "@" if "@" in server.netloc else ""
        url = urlunsplit(server._replace(netloc=f"{userinfo}{gateway}:15432"))
        return ["ip", "netns", "exec", ns, "unshare", "--uts", "--"], url

    def start(self, index: int) -> str:
        name = f"host-{index}"
        if self.netns:
            prefix, url = self._network(index)
            python = [sys.executable, "-c", SET_HOSTNAME_AND_RUN, name]
        else:
            prefix, url, python = [], self.url, [sys.executable, "-m", "gigq_flow"]
        command = [*prefix, *python, "--db", url, "-q", "worker",
                   "--worker-id", name, "--concurrency", str(THREADS_PER_HOST),
                   "--lease-timeout", str(LEASE_TIMEOUT), "--polling-interval", "1",
                   "--grace-period", "5"]
        with open(self.log_dir / f"{name}.err", "w") as err:
            self.procs[name] = subprocess.Popen(command, env=self.env,
                                                stdout=subprocess.DEVNULL, stderr=err)
        return name

    def errors(self, name: str) -> str:
        return (self.log_dir / f"{name}.err").read_text()

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for relay in self.relays:
            relay.kill()
            relay.wait()
        for ns in self.namespaces:  # deleting the namespace deletes its veth pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def hosts(postgres_url, tmp_path):
    reason = namespaces_unavailable()
    print(f"fleet hosts: {'plain processes (' + reason + ')' if reason else 'network namespaces'}")
    fleet = Hosts(postgres_url, subprocess_env(), tmp_path, netns=reason is None)
    yield fleet
    fleet.close()


def running_slow_job_host(url: str) -> str | None:
    rows = sql(url, "SELECT worker_id FROM jobs WHERE status = 'running' AND name LIKE 'slow-%' "
                    "AND worker_id LIKE 'host-%' ORDER BY started_at DESC")
    return rows[0][0].rsplit("-", 1)[0] if rows else None  # host-2-1 -> host-2


def test_fleet_runs_a_2000_job_dag_once_each_through_a_sigkill(postgres_url, hosts):
    queue = JobQueue(postgres_url)
    workflow, parents = build_dag()
    run = workflow.submit(queue)
    assert len(parents) == LAYERS * WIDTH == 2000

    names = [hosts.start(i) for i in range(HOSTS)]
    wait_until(lambda: queue.stats()["completed"] >= 300, timeout=120, interval=0.05)
    victim = wait_until(lambda: running_slow_job_host(postgres_url), timeout=60, interval=0.005)
    hosts.procs[victim].send_signal(signal.SIGKILL)  # mid-job: no chance to release anything
    killed_at = time.time()
    hosts.procs[victim].wait(10)

    assert run.wait(timeout=RUN_DEADLINE), f"unfinished: {run.snapshot().summary()}"
    survivors = [name for name in names if name != victim]
    for name in survivors:
        assert hosts.procs[name].poll() is None, hosts.errors(name)
        assert "Traceback" not in hosts.errors(name), hosts.errors(name)

    # Every job completed, exactly once, and never before its parents.
    assert queue.stats()["completed"] == 2000
    jobs = {row[0]: row for row in sql(
        postgres_url, "SELECT id, status, started_at, completed_at, attempts FROM jobs")}
    assert {row[1] for row in jobs.values()} == {"completed"}
    executions = sql(postgres_url, "SELECT job_id, worker_id, status, completed_at "
                                   "FROM job_executions")
    completed = Counter(job for job, _, status, _ in executions if status == "completed")
    assert set(completed) == set(jobs) and set(completed.values()) == {1}
    for job_id, deps in parents.items():
        for parent in deps:
            assert jobs[job_id][2] >= jobs[parent][3], "a job started before its parent ended"

    # The only other attempts are the killed host's, reclaimed once its lease ran out.
    others = [(job, worker, status) for job, worker, status, _ in executions
              if status != "completed"]
    assert others, "the kill caught no running job"
    assert all(status == "lost" and worker.startswith(f"{victim}-")
               for _, worker, status in others), others
    assert len(others) <= THREADS_PER_HOST
    for job_id, _, _ in others:
        assert jobs[job_id][4] == 2  # attempts: the lost one and the one that completed

    # Every host took part; the survivors did the killed host's work after the kill.
    by_host: dict[str, int] = defaultdict(int)
    for _, worker, status, _ in executions:
        if status == "completed":
            by_host[worker.rsplit("-", 1)[0]] += 1
    assert set(by_host) == set(names), by_host
    reclaimed = [row for row in executions if row[0] in {job for job, _, _ in others}
                 and row[2] == "completed"]
    assert all(row[1].rsplit("-", 1)[0] in survivors for row in reclaimed)
    workers = {row["id"]: row for row in queue.list_workers()}
    assert workers[victim]["state"] == "dead"
    assert all(workers[name]["state"] == "alive" for name in survivors)
    if hosts.netns:  # each worker saw a machine of its own
        assert {name: workers[name]["host"] for name in names} == {name: name for name in names}
    print(f"killed {victim} at {killed_at:.3f}; completed per host: {dict(by_host)}")
