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

# Diffusion models need diffusers (pip install "hf-learngene[diffusion]"); they load on first use, so
# that `import hf_learngene` stays light and DiffusionPipeline finds them as hf_learngene.<Class>.
_LAZY = {
    "FINEDiTTransformer2DModel": "hf_learngene.modeling.fine_dit",
    "FINELearngene": "hf_learngene.modeling.fine_learngene",
    "FactorizedLinear": "hf_learngene.modeling.factorized",
    "SharedFactors": "hf_learngene.modeling.factorized",
    "ClassConditionalImagePipeline": "hf_learngene.pipelines",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_learngene' has no attribute '{name}'")


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
    *_LAZY,
]
