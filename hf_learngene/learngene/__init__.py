"""The :class:`Learngene`: extract it from one pretrained model, save, load, and build models
of other sizes from it. It joins an architecture table (what each weight's axes mean) with a
method (how a signal on those axes is resized); neither knows of the other.

One file per concern: ``source`` (reading a source model), ``roles`` (grouping, stacking and the
record of a role), ``extraction``, ``decoding`` (one role at a target size), ``building`` (a whole
model), ``provenance`` (what a built model records of its origin, its card and push), ``folder``
(a learngene's files on disk and the Hub), ``memory``, and ``container`` (the class itself, its
storage, saving, loading and pushing).
"""

from .container import PUSH_OPTIONS, Learngene
from .provenance import push_built_model
from .roles import RoleRecord, group_by_role, signal_spec
from .source import canonical_state

# private helpers that tests import from here
from .roles import _storage_key  # noqa: F401
from .source import _diffusers_class_name  # noqa: F401

__all__ = [
    "PUSH_OPTIONS",
    "Learngene",
    "RoleRecord",
    "canonical_state",
    "group_by_role",
    "push_built_model",
    "signal_spec",
]
