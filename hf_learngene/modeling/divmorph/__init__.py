"""DivMorph: knowledge diversion for morphology control — a limb-token Transformer controller whose
weights are split into shared learngene units and body- and task-gated tailor units (configuration,
model, single-agent deployment and learngene files)."""

from .configuration_divmorph import DivMorphConfig, DivMorphSingleAgentConfig
from .modeling_divmorph import (
    LEARNGENE_SIZE_FIELDS,
    DeployedLinear,
    DivMorphForContinuousControl,
    DivMorphLinear,
    DivMorphOutput,
    DivMorphPreTrainedModel,
    DivMorphSingleAgentPolicy,
)

__all__ = [
    "LEARNGENE_SIZE_FIELDS",
    "DeployedLinear",
    "DivMorphConfig",
    "DivMorphForContinuousControl",
    "DivMorphLinear",
    "DivMorphOutput",
    "DivMorphPreTrainedModel",
    "DivMorphSingleAgentConfig",
    "DivMorphSingleAgentPolicy",
]
