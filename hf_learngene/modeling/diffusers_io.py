"""Saving and loading for this package's diffusers models, as the rest of the package does it:
folders written atomically, and a clear error for a missing, truncated or corrupt checkpoint."""

from __future__ import annotations

import os
from typing import Any

from ..errors import LearngeneError, LearngeneLoadError
from ..saving import write_folder_atomically


class AtomicSaveMixin:
    """Put before ``ModelMixin`` in the bases of a diffusers model class."""

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """diffusers' ``save_pretrained``, into a temporary folder renamed into place when complete."""
        if kwargs.get("push_to_hub"):
            raise ValueError(f"push {type(self).__name__} with .push_to_hub(repo_id), not save_pretrained(push_to_hub=True)")
        write_folder_atomically(save_directory, lambda staging: super(AtomicSaveMixin, self).save_pretrained(staging, **kwargs))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        """diffusers' ``from_pretrained``; a folder or repo that cannot be read raises :class:`LearngeneLoadError`."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except LearngeneError:
            raise
        except (OSError, ValueError, KeyError) as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise LearngeneLoadError(
                f"cannot load a {cls.__name__} from '{pretrained_model_name_or_path}': {first_line}. The folder or "
                "repository is missing, or its config.json or safetensors file is truncated or corrupt; save or "
                "download it again"
            ) from None
