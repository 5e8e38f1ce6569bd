"""The machine a run measured on, as the first line of a report and its JSON's "machine"."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version


def describe(versions: dict[str, str]) -> dict[str, str]:
    """CPUs, CPU model and Python, then ``versions`` (what ran, by name), then the load
    average at the start."""
    with open("/proc/cpuinfo") as cpuinfo:
        models = [line.split(":", 1)[1].strip() for line in cpuinfo
                  if line.startswith("model name")]
    return {
        "cpus": str(os.cpu_count()),
        "cpu": models[0] if models else platform.processor(),
        "python": platform.python_version(),
        **versions,
        "load average at start": " ".join(f"{load:.1f}" for load in os.getloadavg()),
    }


def installed(distribution: str) -> str:
    """The installed version of ``distribution``, or "not installed"."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def summary(about: dict[str, str]) -> str:
    """The report's first line."""
    return ", ".join(f"{key} {value}" for key, value in about.items())
