"""Provenance of a built model: what it records of the learngene it came from (config, tags), its
model card, and the push that uploads it with that card."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn
from transformers import PreTrainedModel

from ..architectures import ARCHITECTURES, is_resizable
from ..saving import push_folder

if TYPE_CHECKING:
    from .container import Learngene


def _record_provenance(
    learngene: Learngene, model: nn.Module, target_sizes: dict[str, int], preset: str | None = None
) -> None:
    """Name the learngene in the model's config, tags and Hub card (plain transformers/diffusers still load it)."""
    provenance = {
        "learngene": learngene.name_or_path or None,
        "method": learngene.config.method,
        "source": learngene.config.source_name_or_path,
        "preset": preset,
        "sizes": {k: v for k, v in target_sizes.items() if is_resizable(k)},
    }
    if learngene.config.family in ARCHITECTURES and learngene.architecture.library == "diffusers":
        model.register_to_config(_learngene=provenance)  # diffusers ignores "_" fields when it loads
        return
    model.config.learngene = provenance
    model.add_model_tags(["learngene", f"learngene-{learngene.config.method}"])
    # transformers' push_to_hub writes a generic card: this model's pushes write the learngene's
    model.push_to_hub = functools.partial(push_built_model, model)


def _save_built_model_card(model: PreTrainedModel, folder: Path, repo_id: str, tags: list[str] | None = None) -> None:
    """Write the card of a model built from a learngene (from ``model.config.learngene``) as ``folder/README.md``."""
    from ..model_cards import built_model_card

    built_model_card(model, repo_id, tags).save(folder / "README.md")


def push_built_model(
    model: PreTrainedModel,
    repo_id: str,
    *,
    commit_message: str | None = None,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    max_shard_size: int | str = "50GB",
    tags: list[str] | None = None,
):
    """Push a model built from a learngene with a card naming the learngene, method, source and sizes.

    Takes the arguments of transformers' ``push_to_hub`` and uploads ``model.save_pretrained``'s
    files and the card in one commit; returns the ``CommitInfo``. A built model's own
    ``push_to_hub`` is this function (``Learngene.build`` binds it), so ``model.push_to_hub(repo_id)``
    does the same; transformers' ``save_pretrained(push_to_hub=True)`` writes its generic card.
    """

    def write(folder: Path, full_repo_id: str) -> None:
        model.save_pretrained(folder, max_shard_size=max_shard_size)
        _save_built_model_card(model, folder, full_repo_id, tags)

    return push_folder(
        repo_id, write, what="model", commit_message=commit_message or "Upload model built from a learngene",
        commit_description=commit_description, private=private, token=token, revision=revision, create_pr=create_pr,
    )
