"""Named numpy arrays in one file, read back memory-mapped: a large index opens at once and its
pages are shared by every process that serves it (the OS reads them when first touched).

Layout: ``MAGIC``, the header's length (8 bytes, little-endian), a JSON header naming each
array's dtype, shape and offset, then the arrays, each starting at a multiple of 64 bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MAGIC = b"VERBATIM-ARRAYS\x01"
ALIGN = 64


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (a temporary file, then renamed over it)."""
    arrays = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    layout, offset = {}, 0
    for name, a in arrays.items():
        layout[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset}
        offset = _aligned(offset + a.nbytes)
    header = json.dumps(layout).encode("utf-8")
    start = _aligned(len(MAGIC) + 8 + len(header))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # processes may save at once
    with open(tmp, "wb") as f:
        f.write(MAGIC + len(header).to_bytes(8, "little") + header)
        for name, a in arrays.items():
            f.seek(start + layout[name]["offset"])
            f.write(a.tobytes())
        f.truncate(start + offset)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """What :func:`save_arrays` wrote, each array a read-only memory map; ValueError when the
    file is not such a file or is cut short."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path} is not an arrays file")
        length = int.from_bytes(f.read(8), "little")
        try:
            layout = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} has a damaged header") from exc
    start = _aligned(len(MAGIC) + 8 + length)
    out = {}
    for name, spec in layout.items():
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        offset = start + spec["offset"]
        if offset + dtype.itemsize * int(np.prod(shape)) > size:
            raise ValueError(f"{path} is cut short (array {name!r})")
        if not np.prod(shape):
            out[name] = np.zeros(shape, dtype=dtype)  # an empty map is not allowed
            continue
        out[name] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return out
