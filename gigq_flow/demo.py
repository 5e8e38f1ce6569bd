"""The sample pipeline ``gigq-flow demo`` runs: a word count with fan-out and fan-in.

::

    load_documents ──┬── count_words_1 ──┐
                     ├── count_words_2 ──┤
                     ├── count_words_3 ──┼── merge_counts ── report
                     └── count_words_4 ──┤
    fetch_stopwords (fails once) ────────┘

The tasks are module-level functions so that any worker, in this process or another
one, can import them. ``fetch_stopwords`` fails on its first attempt and succeeds on
the retry; it knows it already failed through a marker file next to the queue, made
for one run and removed by the successful attempt, so the demo can run again and again.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import Counter
from typing import Any

from .results import ParentResults
from .workflow import Workflow

WORKFLOW_NAME = "gigq-flow demo"
SHARDS = 4
TOP_WORDS = 5
STEP_SECONDS = 0.25
"""How long each step pretends to work, so the progress bar has something to show."""
RETRY_DELAY_SECONDS = 1
MARKER_PREFIX = ".gigq_flow_demo-"

DOCUMENTS = (
    "A queue is a promise that work will be done, later, by someone.",
    "A workflow is a queue that knows which work must wait for which.",
    "Workers take ready work from the queue and record what happened.",
    "When a step fails, the queue retries it; when it fails for good, its dependents wait no more.",
    "The picture of the workflow shows which steps are done and which still wait.",
    "Small files, plain functions and a picture: that is all a notebook needs.",
    "Every step of this demo is a plain function that a worker imports by name.",
    "Fan out the work, fan it back in, and the queue keeps the order.",
)

STOPWORDS = (
    "a", "an", "and", "are", "by", "for", "from", "is", "it", "its", "of", "that", "the",
    "this", "what", "when", "which", "will", "all", "be", "no", "more", "still", "to",
)


def _work() -> None:
    time.sleep(STEP_SECONDS)


def load_documents() -> list[str]:
    """The corpus (a stand-in for reading files or a database)."""
    _work()
    return list(DOCUMENTS)


def count_words(shard: int, shards: int, parent_results: ParentResults) -> dict[str, int]:
    """Word counts of every ``shards``-th document, starting at ``shard``."""
    _work()
    documents = parent_results.by_name["load_documents"][shard::shards]
    words = (word for text in documents for word in re.findall(r"[a-z]+", text.lower()))
    return dict(Counter(words))


def fetch_stopwords(marker: str) -> list[str]:
    """A flaky download: the first attempt fails, the retry succeeds."""
    _work()
    if not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8") as file:
            file.write("fetch_stopwords failed once\n")
        raise ConnectionError("stopword server did not answer (simulated: the retry succeeds)")
    os.remove(marker)
    return list(STOPWORDS)


def merge_counts(top: int, parent_results: ParentResults) -> list[list[Any]]:
    """Fan-in: add the shards' counts, drop the stopwords, keep the ``top`` words."""
    _work()
    stopwords = set(parent_results.by_name["fetch_stopwords"])
    total: Counter[str] = Counter()
    for name, counts in parent_results.by_name.items():
        if name.startswith("count_words"):
            total.update(counts)
    for word in stopwords:
        total.pop(word, None)
    ranked = sorted(total.items(), key=lambda item: (-item[1], item[0]))
    return [[word, count] for word, count in ranked[:top]]


def report(documents: int, parent_results: ParentResults) -> dict[str, Any]:
    """The pipeline's answer: how many documents, and their most frequent words."""
    _work()
    top = parent_results.by_name["merge_counts"]
    return {"documents": documents, "top_words": {word: count for word, count in top}}


def marker_path(directory: str) -> str:
    """A fresh marker file name for one run's flaky step."""
    return os.path.join(directory, f"{MARKER_PREFIX}{uuid.uuid4().hex[:12]}.flaky")


def build_workflow(marker_dir: str, *, shards: int = SHARDS) -> Workflow:
    """The demo pipeline; ``marker_dir`` holds the flaky step's marker while it runs."""
    workflow = Workflow(WORKFLOW_NAME)
    documents = workflow.add_task(load_documents, description="read the corpus")
    counts = [
        workflow.add_task(count_words, params={"shard": i, "shards": shards},
                          depends_on=[documents], name=f"count_words_{i + 1}",
                          description=f"count the words of shard {i + 1} of {shards}")
        for i in range(shards)
    ]
    stopwords = workflow.add_task(
        fetch_stopwords, params={"marker": marker_path(marker_dir)},
        retry_delay=RETRY_DELAY_SECONDS, description="download the stopwords (flaky)",
    )
    merged = workflow.add_task(merge_counts, params={"top": TOP_WORDS},
                               depends_on=[*counts, stopwords],
                               description="add the counts, drop the stopwords")
    workflow.add_task(report, params={"documents": len(DOCUMENTS)}, depends_on=[merged],
                      description="summarise")
    return workflow
