"""Errors of the morphology suite. All are ``ValueError`` subclasses (through ``LearngeneError``), and every
message says what was wrong and what would be right."""

from __future__ import annotations

from ..errors import LearngeneError


class MorphologyError(LearngeneError):
    """Base class of the errors the morphology suite raises for bad input."""


class UnknownBodyError(MorphologyError, KeyError):
    """A body name that is not in the suite's table."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class UnknownTaskError(MorphologyError, KeyError):
    """A task name that is not in the suite's table."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedJointError(MorphologyError):
    """A model holds a joint the limb tokeniser cannot describe (only one hinge per limb, free/slide/hinge root)."""


class TooManyLimbsError(MorphologyError):
    """A model has more limbs than the fixed number of token slots (``MAX_LIMBS``)."""


class InvalidActionError(MorphologyError):
    """An action that is not one finite value per limb slot (shape ``(MAX_LIMBS,)``)."""
