"""TEMPORARY stub."""
from __future__ import annotations

import hashlib
import inspect
import json
import pickle
from dataclasses import dataclass

DIGEST_BYTES = 16
def digest(*parts):
    h = hashlib.blake2b(digest_size=DIGEST_BYTES)
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        h.update(len(b).to_bytes(8, "big")); h.update(b)
    return h.hexdigest()
@dataclass(frozen=True)
class CodeFingerprint:
    digest: str
    unknown: tuple
def code_fingerprint(func):
    f = inspect.unwrap(func)
    c = f.__code__
    return CodeFingerprint(digest(c.co_code, repr(c.co_consts), repr(c.co_names)), ())
def params_digest(params, serializer):
    return digest(serializer, json.dumps(params, sort_keys=True) if serializer == "json" else pickle.dumps(sorted(params.items())))
def result_digest(encoded, serializer):
    return digest(serializer, "none" if encoded is None else encoded)
