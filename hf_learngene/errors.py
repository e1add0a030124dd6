"""Errors raised for bad input. All are ``ValueError`` subclasses so callers can catch them
broadly, and every message says what was wrong and what would be right."""


class LearngeneError(ValueError):
    """Base class of every error hf_learngene raises for bad input."""


class UnsupportedArchitectureError(LearngeneError):
    """The model's family has no architecture table."""


class LearngeneConfigError(LearngeneError):
    """A requested size or config cannot be built (bad head count, unknown preset, ...)."""


class FamilyMismatchError(LearngeneError):
    """A learngene of one family was asked to build a model of another."""


class LearngeneLoadError(LearngeneError):
    """A learngene folder or file is missing, truncated or corrupt."""


class LearngenePushError(LearngeneError, OSError):
    """An upload to the Hub broke off; the repository keeps its last complete commit."""


class CheckpointMismatchError(LearngeneLoadError):
    """A checkpoint lacks a weight its model needs, or holds one of another shape: loading it would
    fill that weight with fresh random values, so a learngene of it would not be the model's."""
