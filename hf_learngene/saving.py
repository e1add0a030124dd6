"""Writing folders atomically and pushing them to the Hub in one commit — the one way every
learngene, model and checkpoint of this package is saved or uploaded."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import LearngenePushError


def replace_directory(source: Path, destination: Path) -> None:
    """Move a finished folder into place so readers never see a half-written one."""
    if destination.exists():
        retired = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.replace(destination, retired)
        os.replace(source, destination)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(source, destination)


def write_folder_atomically(destination: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(staging)`` on a temporary folder beside ``destination``, then rename it into place.

    An interrupted or failing ``write`` leaves ``destination`` as it was (absent or complete).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.tmp-", dir=destination.parent))
    try:
        write(staging)
        replace_directory(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def push_folder(
    repo_id: str,
    write: Callable[[Path, str], None],
    *,
    what: str,
    commit_message: str,
    commit_description: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Create ``repo_id`` if needed and upload what ``write(folder, full_repo_id)`` produces in one commit.

    Returns the ``CommitInfo``; a transfer that breaks off raises :class:`LearngenePushError`
    (the Hub commits atomically, so the repository keeps its last complete revision).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as working_dir:
        folder = Path(working_dir) / "upload"
        folder.mkdir()
        write(folder, repo_id)
        try:
            return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message,
                                     commit_description=commit_description, revision=revision, create_pr=create_pr)
        except Exception as error:  # any transport failure: the commit is atomic on the Hub side
            raise LearngenePushError(
                f"pushing the {what} to '{repo_id}' broke off ({type(error).__name__}: {error}); "
                "nothing was committed, so the repository keeps its last complete revision. Push again"
            ) from error
