"""A safetensors file read with plain reads instead of a memory map.

``safetensors.safe_open`` maps the whole file: every tensor read leaves its pages resident in the
process (counted in its memory, and kept while the handle lives), so reading a 13 GB checkpoint
one tensor at a time still ends with 13 GB mapped. Here each tensor is read with ``pread`` into
its own buffer: the process holds exactly the tensors still referenced. The format is the
documented one (an 8-byte little-endian header length, a JSON header of dtypes, shapes and byte
offsets, then the data); nothing but that JSON is parsed, and nothing is unpickled.

The open file descriptor pins the file that was opened: if the path is replaced afterwards, reads
still come from the original.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "U16": torch.uint16, "U32": torch.uint32, "U64": torch.uint64,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
_MAX_HEADER = 100 * 2**20  # the format's own limit


_CODES = {dtype: code for code, dtype in DTYPES.items()}


class SafetensorsWriter:
    """Write a safetensors file one tensor at a time, holding none of them.

    Each tensor's bytes go to a data file beside ``path`` as it is appended (straight from its
    memory: ``safetensors.torch.save_file`` would first copy a whole shard into ``bytes``); at
    :meth:`finish` the header, now known, is written to ``path`` followed by the data, copied in
    blocks and hashed on the way. Tensors keep their append order; the header is padded to 8 bytes,
    as safetensors pads it.
    """

    _BLOCK = 16 * 2**20

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._data_path = self.path.with_name(self.path.name + ".data")
        self._data = open(self._data_path, "wb")
        self._header: dict[str, Any] = {}
        self.size = 0

    def append(self, name: str, tensor: torch.Tensor) -> None:
        tensor = tensor.detach().contiguous().cpu()
        size = tensor.numel() * tensor.element_size()
        self._header[name] = {"dtype": _CODES[tensor.dtype], "shape": list(tensor.shape),
                              "data_offsets": [self.size, self.size + size]}
        if size:
            self._data.write(memoryview(tensor.reshape(-1).view(torch.uint8).numpy()))
        self.size += size

    def names(self) -> list[str]:
        return list(self._header)

    def finish(self, metadata: dict[str, str]) -> str:
        """Write the file; returns its sha256."""
        self._data.close()
        encoded = json.dumps({"__metadata__": metadata, **self._header}, separators=(",", ":")).encode()
        encoded += b" " * (-len(encoded) % 8)
        digest = hashlib.sha256()
        with open(self.path, "wb") as out, open(self._data_path, "rb") as data:
            for block in (struct.pack("<Q", len(encoded)), encoded):
                out.write(block)
                digest.update(block)
            for block in iter(lambda: data.read(self._BLOCK), b""):
                out.write(block)
                digest.update(block)
        self._data_path.unlink()
        return digest.hexdigest()

    def discard(self) -> None:
        self._data.close()
        self._data_path.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """Write ``tensors`` (in name order) as a safetensors file; returns its sha256."""
    writer = SafetensorsWriter(path)
    for name in sorted(tensors):
        writer.append(name, tensors[name])
    return writer.finish(metadata)


class SafetensorsFormatError(OSError):
    """The file is not a well-formed safetensors file (truncated, or something else); the message
    says what is wrong, the caller names the file."""


class UnsupportedDtypeError(SafetensorsFormatError):
    """A well-formed header names a dtype this reader has no torch dtype for (``F8_E8M0``, ``F4``, ...):
    the file is not corrupt, it is of a kind this reader cannot give tensors of."""

    def __init__(self, dtype: str, name: str):
        self.dtype, self.name = dtype, name
        super().__init__(f"unsupported dtype {dtype} of '{name}' (supported: {', '.join(DTYPES)})")


class _Slice:
    def __init__(self, shape: list[int]):
        self._shape = shape

    def get_shape(self) -> list[int]:
        return list(self._shape)


class SafetensorsFile:
    """One safetensors file: ``keys()``, ``get_slice(name).get_shape()`` and ``get_tensor(name)``
    as ``safe_open`` offers them, read with ``pread`` (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            size = os.fstat(self._fd).st_size
            prefix = bytearray(8)
            if size < 8:
                raise SafetensorsFormatError("shorter than a safetensors header")
            self.read_into(memoryview(prefix), 0)
            (length,) = struct.unpack("<Q", prefix)
            if length > min(_MAX_HEADER, size - 8):
                raise SafetensorsFormatError(f"a header length of {length} bytes, past the end")
            try:
                raw = bytearray(length)
                self.read_into(memoryview(raw), 8, "the header")
                header = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise SafetensorsFormatError(f"no JSON header: {error}") from None
            if not isinstance(header, dict):
                raise SafetensorsFormatError("a header that is not a JSON object")
            self.metadata = header.pop("__metadata__", None) or {}
            self._data_start = 8 + length
            self._entries: dict[str, tuple[torch.dtype, list[int], int, int]] = {}
            for name, entry in header.items():
                self._entries[name] = self._checked_entry(name, entry, size - self._data_start)
        except BaseException:
            self.close()
            raise

    def _checked_entry(self, name: str, entry: Any, data_size: int) -> tuple[torch.dtype, list[int], int, int]:
        if isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and entry["dtype"] not in DTYPES:
            raise UnsupportedDtypeError(entry["dtype"], name)
        try:
            dtype = DTYPES[entry["dtype"]]
            shape = [int(n) for n in entry["shape"]]
            begin, end = (int(n) for n in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsFormatError(f"the header entry of '{name}' is malformed: {entry!r}") from None
        expected = math.prod(shape) * dtype.itemsize
        if end - begin != expected or begin < 0 or end > data_size:
            raise SafetensorsFormatError(
                f"'{name}' should take {expected} bytes at {begin}..{end} of the {data_size} stored"
            )
        return dtype, shape, begin, end

    def keys(self) -> list[str]:
        return list(self._entries)

    def get_slice(self, name: str) -> _Slice:
        return _Slice(self._entry(name)[1])

    def dtype(self, name: str) -> torch.dtype:
        return self._entry(name)[0]

    def get_tensor(self, name: str) -> torch.Tensor:
        dtype, shape, begin, end = self._entry(name)
        buffer = torch.empty(end - begin, dtype=torch.uint8)
        self.read_into(memoryview(buffer.numpy()), self._data_start + begin, name)
        return buffer.view(dtype).reshape(shape)

    def read_into(self, view: memoryview, offset: int, what: str = "the data") -> None:
        """Fill ``view`` from ``offset`` (positional reads: no shared file position to race on)."""
        done = 0
        while done < len(view):  # a read may return less than asked for
            if hasattr(os, "preadv"):
                count = os.preadv(self._fd, [view[done:]], offset + done)
            else:  # Windows: no positional reads; seek and read under this object's own descriptor
                os.lseek(self._fd, offset + done, os.SEEK_SET)
                chunk = os.read(self._fd, len(view) - done)
                view[done : done + len(chunk)] = chunk
                count = len(chunk)
            if count == 0:
                raise SafetensorsFormatError(f"the file ends inside {what}")
            done += count

    def sha256(self) -> str:
        """The sha256 of the open file (not of whatever the path names now), read in 1 MiB blocks."""
        digest, offset, block = hashlib.sha256(), 0, bytearray(1 << 20)
        size = os.fstat(self._fd).st_size
        while offset < size:
            view = memoryview(block)[: min(len(block), size - offset)]
            self.read_into(view, offset)
            digest.update(view)
            offset += len(view)
        return digest.hexdigest()

    def stamp(self) -> tuple[int, int]:
        """(size, modification time) of the open file: what an in-place rewrite changes, and a rename
        or unlink (the folder saved over) does not."""
        status = os.fstat(self._fd)
        return status.st_size, status.st_mtime_ns

    def _entry(self, name: str) -> tuple[torch.dtype, list[int], int, int]:
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"{self.path} has no tensor '{name}'") from None

    def close(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "SafetensorsFile":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
