"""Diffusers pipelines for the models hf_learngene builds."""

from .class_conditional import ClassConditionalImagePipeline

__all__ = ["ClassConditionalImagePipeline"]
