"""Encoding of params and results: JSON by default, pickle only when asked for.

Pickle can hold any Python value (DataFrames, arrays, sets) but unpickling runs code
chosen by whoever wrote the data: use it only with database files you trust.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

from .errors import SerializationError

SERIALIZERS = frozenset({"json", "pickle"})


def dumps(value: Any, serializer: str = "json") -> str | bytes:
    """Encode ``value``; raises SerializationError naming the problem."""
    if serializer == "pickle":
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(value).__name__}: {exc}") from exc
    try:
        return json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise SerializationError(
            f"{type(value).__name__} is not JSON serializable ({exc}); "
            'convert it to JSON types or use serializer="pickle"'
        ) from exc


def loads(data: str | bytes | None, serializer: str | None = "json", *, what: str = "value") -> Any:
    """Decode what :func:`dumps` wrote; ``None`` stays ``None``. Undecodable data (a row
    written by hand, say) raises SerializationError naming ``what``."""
    if data is None:
        return None
    if data == "{}":  # the params of most jobs: skip the decoder
        return {}
    try:
        if serializer == "pickle":
            if isinstance(data, str):
                raise TypeError("pickled data must be bytes, got text")
            return pickle.loads(data)
        return json.loads(data)
    except Exception as exc:
        raise SerializationError(
            f"{what} cannot be decoded as {serializer or 'json'} ({type(exc).__name__}: {exc}); "
            "the row was not written by gigq_flow or is damaged"
        ) from exc


def dumps_params(params: dict[str, Any], serializer: str, job_name: str) -> str | bytes:
    """Encode a job's params, naming the first param that cannot be encoded."""
    if not params and serializer == "json":  # most jobs: skip the encoder (as ``loads``)
        return "{}"
    try:
        return dumps(params, serializer)
    except SerializationError:
        if serializer != "json":
            raise
        for key, value in params.items():  # which one: only once encoding failed
            try:
                json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise SerializationError(
                    f"param {key!r} of job {job_name!r} is not JSON serializable "
                    f"({type(value).__name__}); pass JSON values or use serializer=\"pickle\""
                ) from exc
        raise
