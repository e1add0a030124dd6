"""The baseline every method is measured against: the target architecture's own initialisation.

A ``random`` learngene stores no tensors; building from it gives exactly what
``AutoModel*.from_config`` gives for the target config (with the seed set by the caller).
"""

from __future__ import annotations

from .base import Resizer


class RandomInitResizer(Resizer):
    name = "random"
    default_rescaling = "none"
    provides_weights = False

    def axis_operator(self, spec, axis, stored_length, source_length, target_length):
        raise AssertionError("a random-init learngene stores nothing to resize")
