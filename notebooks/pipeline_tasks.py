"""The tasks of notebook 03, in a module so that worker processes can import them.

A worker process runs a job by importing its function by module and name; functions
defined in a notebook live in the kernel's ``__main__``, which another process cannot
import (it could run them by value only if started with ``--allow-pickle``). Start
workers with this directory as the working directory (or on PYTHONPATH).
"""

from __future__ import annotations

import os
import time

from gigq_flow import ParentResults, task

STEP_SECONDS = 0.5
"""How long each step pretends to work, so the live panel has something to show."""
REGIONS = ("north", "south", "east", "west")


def amount_of(order_id: int) -> int:
    return (order_id * 37) % 100 + 1


@task
def load_orders(count: int) -> list[dict]:
    """Stand-in for reading a table: ``count`` orders with a region and an amount."""
    time.sleep(STEP_SECONDS)
    return [{"id": i, "region": REGIONS[i % len(REGIONS)], "amount": amount_of(i)}
            for i in range(count)]


@task
def region_total(region: str, parent_results: ParentResults) -> int:
    """Fan-out: one job per region adds up that region's orders."""
    time.sleep(STEP_SECONDS)
    orders = parent_results.by_name["load_orders"]
    return sum(order["amount"] for order in orders if order["region"] == region)


@task
def report(parent_results: ParentResults) -> dict:
    """Fan-in: every region's total, the grand total, and which process computed it."""
    time.sleep(STEP_SECONDS)
    totals = {name.removeprefix("total_"): value
              for name, value in parent_results.by_name.items()}
    return {"by_region": totals, "total": sum(totals.values()), "pid": os.getpid()}
