"""Plain data between the grader and the process that runs a learner's code.

A message is JSON (numbers, strings, booleans, None, lists, dicts with string keys) plus
numeric arrays in an ``.npz`` loaded with ``allow_pickle=False``: nothing in it can run code
in the process that reads it. Frame: 8 bytes of length, 4 of JSON length, the JSON, the npz.
"""

from __future__ import annotations

import io
import json
import math
import struct

import numpy as np

MAX_BYTES = 512 * 2**20  # a reply larger than this is refused


class WireError(ValueError):
    """A message that is not plain data (or too large)."""


def _to_plain(value, arrays: dict):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise WireError("dict keys must be strings")
        return {"__dict__": {k: _to_plain(v, arrays) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v, arrays) for v in value]
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise WireError(f"cannot send an array of dtype {array.dtype}")
    key = f"a{len(arrays)}"
    arrays[key] = array
    return {"__array__": key}


def _from_plain(value, arrays):
    if isinstance(value, list):
        return [_from_plain(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__float__" in value:
            return float(value["__float__"])
        return {k: _from_plain(v, arrays) for k, v in value["__dict__"].items()}
    return value


def dumps(message) -> bytes:
    """``message`` (plain data, NumPy arrays, numbers) as one frame."""
    arrays: dict = {}
    header = json.dumps(_to_plain(message, arrays)).encode()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    body = struct.pack(">I", len(header)) + header + buffer.getvalue()
    return struct.pack(">Q", len(body)) + body


def read(stream):
    """Read one frame from a binary ``stream``; None at the end of the stream."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    (length,) = struct.unpack(">Q", head)
    if length > MAX_BYTES:
        raise WireError(f"a message of {length} bytes is over the limit of {MAX_BYTES}")
    body = stream.read(length)
    if len(body) < length:
        return None
    (header_length,) = struct.unpack(">I", body[:4])
    header = json.loads(body[4 : 4 + header_length])
    with np.load(io.BytesIO(body[4 + header_length :]), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return _from_plain(header, arrays)


def write(stream, message) -> None:
    """Write one frame, whole (a pipe may take it in parts)."""
    view = memoryview(dumps(message))
    while view:
        written = stream.write(view)
        view = view[written if written is not None else len(view) :]
    stream.flush()
