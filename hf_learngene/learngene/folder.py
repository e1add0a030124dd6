"""A learngene's folder: ``config.json``, its tensors' files and its processor's files, written
atomically, fetched from the Hub, and checked when read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from transformers.utils import CONFIG_NAME

from ..architectures import ARCHITECTURES
from ..configs import LearngeneConfig
from ..errors import LearngeneLoadError
from ..learngene_files import LearngeneReader, LearngeneWriter
from ..saving import write_folder_atomically


def _write_learngene(
    save_directory: str | os.PathLike,
    make_config: Callable[[], LearngeneConfig],
    tensors: Iterator[tuple[str, torch.Tensor]],
    processor: Any,
    max_shard_size: int | None,
    storage_dtype: torch.dtype,
) -> Path:
    """Write a learngene folder atomically, taking its tensors one at a time (a streaming
    extraction makes each as it goes); ``make_config`` is called once they are all written, so a
    config filled in while they were made is complete."""

    def write(staging: Path) -> None:
        with LearngeneWriter(staging, max_shard_size, storage_dtype) as writer:
            for role, tensor in tensors:
                writer.add(role, tensor)
                del tensor  # the loop variable would hold each role while the next one is made
        config = make_config()
        config.checksum = writer.result.checksum
        config.storage_dtype = writer.result.storage_dtype
        config.to_json_file(staging / CONFIG_NAME)
        if processor is not None:
            processor.save_pretrained(staging)

    return write_folder_atomically(save_directory, write)


def _read_config(folder: Path) -> LearngeneConfig:
    """The learngene's config from ``folder/config.json``, refused when it is not a learngene's."""
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise LearngeneLoadError(f"{folder} is not a learngene folder: {CONFIG_NAME} is missing")
    try:
        config_dict = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise LearngeneLoadError(f"{config_path} is not valid JSON ({error}); the learngene is corrupt") from None
    if config_dict.get("model_type") != LearngeneConfig.model_type:
        raise LearngeneLoadError(
            f"{folder} holds a '{config_dict.get('model_type')}' model, not a learngene; "
            "extract one with Learngene.extract(...) or `hf-learngene extract`"
        )
    config = LearngeneConfig.from_dict(config_dict)
    if config.family not in ARCHITECTURES:
        raise LearngeneLoadError(f"{folder}: unknown learngene family '{config.family}'")
    return config


def _open_tensors(folder: Path, config: LearngeneConfig) -> LearngeneReader:
    """The reader of the folder's tensor files, each stored role checked against its recorded shape."""
    files = LearngeneReader(folder, expected_checksum=config.checksum)
    for role, record in config.role_records().items():
        shape = files.shape(role)  # names the file that lacks it
        if tuple(shape) != record.stored_shape:
            raise LearngeneLoadError(
                f"{folder}: '{role}' has shape {list(shape)}, config.json says {list(record.stored_shape)}; "
                "the learngene is corrupt"
            )
    return files


def _download(repo_id: str, revision, cache_dir, token, local_files_only) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, cache_dir=cache_dir, token=token, local_files_only=local_files_only
            )
        )
    except RevisionNotFoundError:
        raise LearngeneLoadError(f"revision '{revision}' does not exist in the Hub repository '{repo_id}'") from None
    except RepositoryNotFoundError:
        raise LearngeneLoadError(
            f"'{repo_id}' is neither a local folder nor a Hub repository you can access"
        ) from None
    except HFValidationError:
        raise LearngeneLoadError(f"'{repo_id}' is neither a local folder nor a valid Hub repository id") from None
    except LocalEntryNotFoundError:
        raise LearngeneLoadError(
            f"'{repo_id}' is not a local folder and is not in the Hub cache, and the Hub cannot be reached "
            "(offline mode or no connection); download it once while online or pass a local folder"
        ) from None
