"""Handing memory freed by a streaming extraction or build back to the system."""

from __future__ import annotations

import functools
from typing import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        return None


def _return_freed_memory() -> None:
    """Hand the memory freed since the last call back to the system. glibc keeps freed blocks of
    the FFT temporaries in its heap, so a streaming build or extraction would otherwise look (and,
    to other processes, be) several hundred MB larger than what it holds."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
