"""Opt-in logging output; importing gigq_flow configures nothing."""

from __future__ import annotations

import logging

PACKAGE_LOGGER = "gigq_flow"


def setup_logging(level: int = logging.INFO) -> None:
    """Send gigq_flow's logs to stderr at ``level`` (call it from an entry point)."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if not isinstance(handler, logging.NullHandler):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
