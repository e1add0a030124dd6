"""PIPMN: configuration, model and feature extractor (registered with transformers' Auto classes
when ``hf_learngene`` is imported)."""

from .configuration_pipmn import PIPMNConfig
from .feature_extraction_pipmn import AudioInputWarning, PIPMNFeatureExtractor
from .modeling_pipmn import PIPMNForAudioClassification, PIPMNModel, PIPMNPreTrainedModel

__all__ = [
    "AudioInputWarning",
    "PIPMNConfig",
    "PIPMNFeatureExtractor",
    "PIPMNForAudioClassification",
    "PIPMNModel",
    "PIPMNPreTrainedModel",
]
