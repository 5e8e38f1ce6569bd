"""The live panel's output area: what the selected step printed and logged, and its
traceback once it failed; and the click handler that selects a step from a table row
or a graph node.

The panel's table and graph are HTML widgets: the page shows their value as it is, so
a ``<script>`` in it never runs, but an inline ``onclick`` does. The handler finds the
element with a ``data-job`` attribute under the click and writes that job id into the
panel's hidden text box; the widget sends the new value to the kernel, where the panel
observes it and selects the step.
"""

from __future__ import annotations

import html

from ..job_status import JobStatus
from ..snapshot import JobState

PANEL_CLASS = "gigq-flow-panel"
"""The CSS class of the panel's box (the click handler looks for its pick box inside)."""
PICK_CLASS = "gigq-flow-pick"
"""The CSS class of the hidden text box that carries a click's job id to the kernel."""
OUTPUT_CLASS = "gigq-flow-output"
OUTPUT_SHOWN_CHARS = 100_000
"""The output area shows at most the last this many characters (a step's whole output,
up to the worker's ``output_limit``, stays in ``RunPanel.output_text``)."""

_PICK_SCRIPT = (
    "const t=event.target.closest('[data-job]');"
    f"const p=this.closest('.{PANEL_CLASS}');"
    f"const box=t&&p&&p.querySelector('.{PICK_CLASS} input');"
    "if(box){box.value=t.dataset.job;"
    "box.dispatchEvent(new Event('change',{bubbles:true}));}"
)
PICK_ATTRIBUTE = f' onclick="{html.escape(_PICK_SCRIPT)}"'
"""The ``onclick`` attribute of the containers of the table and the graph."""


def output_html(job: JobState, text: str) -> str:
    """The output area for ``job``: a title line (name, status, attempt) and its text."""
    attempt = f", attempt {job.attempts}" if job.attempts else ""
    title = (f'<div style="font-size:12px;line-height:1.35;margin:6px 0 2px">output of '
             f"<b>{html.escape(job.name)}</b> "
             f'<span style="color:#888">({html.escape(job.status.value)}{attempt}; '
             f"{html.escape(job.id)})</span></div>")
    if text:
        shown = text[-OUTPUT_SHOWN_CHARS:]
        if len(shown) < len(text):
            shown = f"[the first {len(text) - len(shown)} characters are not shown]\n" + shown
        body = html.escape(shown)
    elif job.status is JobStatus.PENDING:
        body = "<i>not started yet</i>"
    elif job.status is JobStatus.RUNNING:
        body = "<i>nothing printed yet</i>"
    else:
        body = "<i>no output</i>"
    failed = job.status in (JobStatus.FAILED, JobStatus.TIMEOUT)
    border = "#e4a39b" if failed else "#dddddd"
    return (f'{title}<pre class="{OUTPUT_CLASS}" data-job="{html.escape(job.id)}" '
            f'data-status="{job.status.value}" style="max-height:300px;overflow:auto;'
            f"margin:0;padding:4px 8px;font-size:12px;line-height:1.35;background:#fafafa;"
            f'border:1px solid {border};white-space:pre-wrap">{body}</pre>')
