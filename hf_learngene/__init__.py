"""hf_learngene: extract a size-agnostic learngene from one pretrained model and build
ordinary transformers models of any size from it."""

from transformers import AutoConfig, AutoFeatureExtractor
from transformers import AutoModel as _TransformersAutoModel
from transformers import AutoModelForAudioClassification as _TransformersAutoModelForAudioClassification

from .architectures import ARCHITECTURES, architecture_for, supported_model_types
from .auto import (
    TASKS,
    AutoModel,
    AutoModelForAudioClassification,
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
from .learngene import Learngene, push_built_model
from .modeling.divmorph import (
    DivMorphConfig,
    DivMorphForContinuousControl,
    DivMorphSingleAgentConfig,
    DivMorphSingleAgentPolicy,
)
from .modeling.pipmn import (
    AudioInputWarning,
    PIPMNConfig,
    PIPMNFeatureExtractor,
    PIPMNForAudioClassification,
    PIPMNModel,
)
from .methods import METHODS, RESCALING_POLICIES, get_method
from .refinement import SpectralRegularizer, SpectralRegularizerCallback, refine

__version__ = "0.1.0"

AutoConfig.register(LearngeneConfig.model_type, LearngeneConfig, exist_ok=True)
# PIPMN loads through transformers' Auto classes and pipeline("audio-classification") after this import.
AutoConfig.register(PIPMNConfig.model_type, PIPMNConfig, exist_ok=True)
_TransformersAutoModel.register(PIPMNConfig, PIPMNModel, exist_ok=True)
_TransformersAutoModelForAudioClassification.register(PIPMNConfig, PIPMNForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(PIPMNConfig, PIPMNFeatureExtractor, exist_ok=True)
# DivMorph's controller and its deployed single-agent policies load through AutoModel too.
AutoConfig.register(DivMorphConfig.model_type, DivMorphConfig, exist_ok=True)
AutoConfig.register(DivMorphSingleAgentConfig.model_type, DivMorphSingleAgentConfig, exist_ok=True)
_TransformersAutoModel.register(DivMorphConfig, DivMorphForContinuousControl, exist_ok=True)
_TransformersAutoModel.register(DivMorphSingleAgentConfig, DivMorphSingleAgentPolicy, exist_ok=True)

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
    "DivMorphConfig",
    "DivMorphForContinuousControl",
    "DivMorphSingleAgentConfig",
    "DivMorphSingleAgentPolicy",
    "AudioInputWarning",
    "AutoModelForAudioClassification",
    "LearngenePushError",
    "PIPMNConfig",
    "PIPMNFeatureExtractor",
    "PIPMNForAudioClassification",
    "PIPMNModel",
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
    "push_built_model",
    "refine",
    "supported_model_types",
    *_LAZY,
]
