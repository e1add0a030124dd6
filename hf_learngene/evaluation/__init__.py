"""Evaluation helpers that need no downloads."""

from .fid import frechet_distance

__all__ = ["frechet_distance"]
