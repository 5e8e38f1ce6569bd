"""Render DOT to svg, png or pdf, and the :class:`Picture` that ``visualize()`` returns.

The system ``dot`` is used when it is on PATH; otherwise pygraphviz (>= 2.0, whose
wheels bundle Graphviz) renders in-process. When neither can produce the format,
:class:`~gigq_flow.errors.RendererNotFoundError` says what to install.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, RendererNotFoundError, RenderError

if TYPE_CHECKING:
    import graphviz

logger = logging.getLogger(__name__)

FORMATS = ("svg", "png", "pdf")
RENDERERS = ("auto", "dot", "pygraphviz")
RENDER_TIMEOUT = 120.0
TEXT_FORMATS = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid"}
INSTALL_HINT = (
    "install a Graphviz renderer: `pip install 'pygraphviz>=2.0'` (its wheels bundle "
    "Graphviz, no system package needed), or the system Graphviz (`apt install graphviz`, "
    "`brew install graphviz`, `conda install -c conda-forge graphviz`) so that `dot` is on "
    "PATH; to_dot() and to_mermaid() need neither"
)

# Graphviz's C library keeps global state: one in-process render at a time.
_pygraphviz_lock = threading.Lock()
_fontconfig_ready = False
_WARMUP = "digraph { a }"


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ConfigurationError(f"format must be one of {FORMATS}, got {format!r}")
    return format


def _pygraphviz_available() -> bool:
    try:
        import pygraphviz  # noqa: F401
    except ImportError:
        return False
    return True


def choose_renderer(renderer: str = "auto") -> str:
    """``"dot"`` when the system ``dot`` is on PATH (and allowed), else ``"pygraphviz"``."""
    if renderer not in RENDERERS:
        raise ConfigurationError(f"renderer must be one of {RENDERERS}, got {renderer!r}")
    if renderer in ("auto", "dot") and shutil.which("dot"):
        return "dot"
    if renderer in ("auto", "pygraphviz") and _pygraphviz_available():
        return "pygraphviz"
    wanted = {"auto": "no Graphviz renderer found", "dot": "`dot` is not on PATH",
              "pygraphviz": "pygraphviz is not installed"}[renderer]
    raise RendererNotFoundError(f"cannot render: {wanted}; {INSTALL_HINT}")


def _render_dot(source: str, format: str, engine: str) -> bytes:
    executable = shutil.which("dot")
    if executable is None:
        raise RendererNotFoundError(f"cannot render {format}: `dot` is not on PATH; {INSTALL_HINT}")
    try:
        done = subprocess.run(
            [executable, f"-K{engine}", f"-T{format}"], input=source.encode("utf-8"),
            capture_output=True, timeout=RENDER_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"{executable} failed to render {format}: {exc}") from exc
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise RenderError(f"{executable} could not render {format}: {message}")
    return done.stdout


def _init_fontconfig(pygraphviz: Any) -> None:
    """Run Graphviz's first text layout with stderr (fd 2) captured.

    That layout initialises fontconfig; the one bundled in pygraphviz's wheels is
    older than the config files of recent Linux systems and prints "Fontconfig
    warning" lines, which a notebook shows in red under the cell. They go to the
    debug log instead; anything else written meanwhile is passed on to stderr.
    Called once per process, under the render lock.
    """
    global _fontconfig_ready
    _fontconfig_ready = True
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        return
    with tempfile.TemporaryFile() as capture:
        try:
            os.dup2(capture.fileno(), 2)
            pygraphviz.AGraph(string=_WARMUP).draw(format="svg", prog="dot")
        except Exception:  # the real render reports problems
            logger.debug("Graphviz warm-up render failed", exc_info=True)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
    for line in text.splitlines():
        if line.startswith("Fontconfig"):
            logger.debug("%s", line)
        elif line.strip():
            sys.stderr.write(line + "\n")


def _render_pygraphviz(source: str, format: str, engine: str) -> bytes:
    try:
        import pygraphviz
    except ImportError as exc:
        raise RendererNotFoundError(
            f"cannot render {format}: pygraphviz is not installed; {INSTALL_HINT}"
        ) from exc
    try:
        with _pygraphviz_lock:
            if not _fontconfig_ready:
                _init_fontconfig(pygraphviz)
            graph = pygraphviz.AGraph(string=source)
            data = graph.draw(format=format, prog=engine)
    except Exception as exc:
        raise RenderError(
            f"pygraphviz could not render {format}: {exc}; {INSTALL_HINT}"
        ) from exc
    if not data:
        raise RenderError(f"pygraphviz produced no {format} output; {INSTALL_HINT}")
    return data


def render(
    source: str, format: str = "svg", *, engine: str = "dot", renderer: str = "auto"
) -> bytes:
    """Render DOT ``source`` to ``format`` bytes with the Graphviz layout ``engine``.

    ``renderer="auto"`` uses the system ``dot`` when it is on PATH and falls back to
    pygraphviz if that fails (e.g. a system Graphviz built without png support).
    """
    _check_format(format)
    chosen = choose_renderer(renderer)
    logger.debug("rendering %s with %s (%s)", format, chosen, engine)
    if chosen == "pygraphviz":
        return _render_pygraphviz(source, format, engine)
    try:
        return _render_dot(source, format, engine)
    except RenderError:
        if renderer != "auto" or not _pygraphviz_available():
            raise
        logger.info("system dot failed to render %s; trying pygraphviz", format, exc_info=True)
        return _render_pygraphviz(source, format, engine)


def format_from_path(path: str | os.PathLike[str]) -> str:
    """``svg``, ``png`` or ``pdf`` from the file extension (also ``dot``/``gv``, ``mmd``)."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension in TEXT_FORMATS:
        return TEXT_FORMATS[extension]
    if extension.lstrip(".") in FORMATS:
        return extension.lstrip(".")
    raise ConfigurationError(
        f"cannot tell the picture format of {os.fspath(path)!r} from its extension; "
        "use .svg, .png or .pdf (or .dot/.gv for DOT, .mmd for Mermaid)"
    )


class Picture:
    """A workflow picture: a thin wrapper of a ``graphviz.Digraph`` that renders with
    the system ``dot`` or pygraphviz, shows inline in Jupyter and saves to a file.

    Unknown attributes are looked up on the wrapped ``digraph``.
    """

    def __init__(
        self, digraph: graphviz.Digraph, *, format: str = "svg", summary: str = "",
        mermaid: str | None = None, renderer: str = "auto", engine: str = "dot",
    ) -> None:
        self.digraph = digraph
        self.format = _check_format(format)
        self.summary = summary
        self.renderer = renderer
        self.engine = engine
        self._mermaid = mermaid

    @property
    def source(self) -> str:
        """The DOT source."""
        return self.digraph.source

    def to_dot(self) -> str:
        return self.source

    def to_mermaid(self) -> str:
        if self._mermaid is None:
            raise ConfigurationError("this picture has no Mermaid form; use to_dot()")
        return self._mermaid

    def pipe(self, format: str | None = None) -> bytes:
        """The rendered picture as bytes (``format`` defaults to the picture's)."""
        return render(self.source, format or self.format, engine=self.engine,
                      renderer=self.renderer)

    def svg(self) -> str:
        """The rendered SVG text."""
        return self.pipe("svg").decode("utf-8")

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the picture to ``path`` in the format its extension names (.svg, .png,
        .pdf; .dot/.gv write DOT, .mmd Mermaid); returns the path written."""
        return self.write(path)

    def write(self, path: str | os.PathLike[str], *, format: str | None = None) -> str:
        """Like :meth:`save`; ``format`` wins over the extension, and is appended as the
        extension when the path has none."""
        target = os.fspath(path)
        if format is not None:
            _check_format(format)
            if not os.path.splitext(target)[1]:
                target = f"{target}.{format}"
        else:
            format = format_from_path(target)
        if format == "dot":
            data = self.source.encode("utf-8")
        elif format == "mermaid":
            data = self.to_mermaid().encode("utf-8")
        else:
            data = self.pipe(format)
        with open(target, "wb") as handle:
            handle.write(data)
        return target

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """SVG (or PNG) for Jupyter, the summary as text; never raises into the display."""
        text = self.summary or f"<Picture: {len(self.source)} bytes of DOT>"
        try:
            if self.format == "png":
                image = self.pipe("png")
                return {"image/png": base64.b64encode(image).decode("ascii"), "text/plain": text}
            return {"image/svg+xml": self.svg(), "text/plain": text}
        except Exception as exc:  # a display must show something, never a traceback
            logger.debug("cannot render the picture for display", exc_info=True)
            return {"text/plain": f"{text}\n(cannot draw the graph: {exc})"}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "digraph":
            raise AttributeError(name)
        return getattr(self.digraph, name)

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        return f"<Picture {self.summary or self.digraph.name!r}>"
