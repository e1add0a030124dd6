"""hf_learngene: extract a compact, size-agnostic learngene from one pretrained model and build
ordinary transformers models of any size from it."""

from transformers import AutoConfig

from .architectures import ARCHITECTURES, architecture_for, supported_model_types
from .auto import (
    TASKS,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
)
from .configs import LearngeneConfig
from .errors import (
    FamilyMismatchError,
    LearngeneConfigError,
    LearngeneError,
    LearngenePushError,
    LearngeneLoadError,
    UnsupportedArchitectureError,
)
from .learngene import Learngene
from .methods import METHODS, RESCALING_POLICIES, get_method
from .refinement import SpectralRegularizer, SpectralRegularizerCallback, refine

__version__ = "0.1.0"

AutoConfig.register(LearngeneConfig.model_type, LearngeneConfig, exist_ok=True)

__all__ = [
    "LearngenePushError",
    "ARCHITECTURES",
    "METHODS",
    "RESCALING_POLICIES",
    "TASKS",
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoModelForImageClassification",
    "AutoModelForMaskedLM",
    "AutoModelForQuestionAnswering",
    "AutoModelForSequenceClassification",
    "FamilyMismatchError",
    "Learngene",
    "LearngeneConfig",
    "LearngeneConfigError",
    "LearngeneError",
    "LearngeneLoadError",
    "SpectralRegularizer",
    "SpectralRegularizerCallback",
    "UnsupportedArchitectureError",
    "architecture_for",
    "get_method",
    "refine",
    "supported_model_types",
]
