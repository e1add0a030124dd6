"""transformers' auto classes with ``from_learngene``: build a model of any size from a learngene.

Each class here is a subclass of its transformers namesake, so ``from_pretrained`` and
``from_config`` behave exactly as usual; ``from_learngene`` returns the ordinary transformers
model class (``BertForSequenceClassification``, ``GPT2LMHeadModel``, ...).
"""

from __future__ import annotations

import os
from typing import Any

import transformers

from .architectures.sizing import SizeRequest
from .learngene import Learngene


class _FromLearngeneMixin:
    @classmethod
    def from_learngene(
        cls,
        learngene: Learngene | str | os.PathLike,
        size: SizeRequest = None,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        torch_dtype: Any = None,
        **kwargs: Any,
    ) -> transformers.PreTrainedModel:
        """Build a model of ``size`` from a learngene (an object, a folder or a Hub id).

        ``size`` is a preset of the learngene's family (e.g. BERT ``"tiny"``…``"large"``), a dict
        of sizes (``{"layers": 3, "hidden": 192, "heads": 3}``) or a full config. Other keyword
        arguments behave as in ``from_pretrained``: ``num_labels=2``, ``dtype=torch.bfloat16``,
        ``device="cuda"``, or any config field; ``revision``, ``cache_dir``, ``token`` and
        ``local_files_only`` apply to downloading a learngene from the Hub.
        """
        if not isinstance(learngene, Learngene):
            # read role by role while building: the learngene itself is not kept
            learngene = Learngene.from_pretrained(learngene, revision=revision, cache_dir=cache_dir, token=token,
                                                  local_files_only=local_files_only, low_cpu_mem_usage=True)
        if torch_dtype is not None:  # the name transformers used before `dtype`
            kwargs.setdefault("dtype", torch_dtype)
        return learngene.build(size, auto_class=cls, **kwargs)


class AutoModel(_FromLearngeneMixin, transformers.AutoModel):
    pass


class AutoModelForMaskedLM(_FromLearngeneMixin, transformers.AutoModelForMaskedLM):
    pass


class AutoModelForCausalLM(_FromLearngeneMixin, transformers.AutoModelForCausalLM):
    pass


class AutoModelForSequenceClassification(_FromLearngeneMixin, transformers.AutoModelForSequenceClassification):
    pass


class AutoModelForQuestionAnswering(_FromLearngeneMixin, transformers.AutoModelForQuestionAnswering):
    pass


class AutoModelForImageClassification(_FromLearngeneMixin, transformers.AutoModelForImageClassification):
    pass


class AutoModelForAudioClassification(_FromLearngeneMixin, transformers.AutoModelForAudioClassification):
    pass


# Task names of the CLI and recipes → the auto class that builds them.
TASKS: dict[str, type] = {
    "base": AutoModel,
    "masked-lm": AutoModelForMaskedLM,
    "causal-lm": AutoModelForCausalLM,
    "sequence-classification": AutoModelForSequenceClassification,
    "question-answering": AutoModelForQuestionAnswering,
    "image-classification": AutoModelForImageClassification,
    "audio-classification": AutoModelForAudioClassification,
}
