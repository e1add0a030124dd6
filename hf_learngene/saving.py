"""Writing folders atomically and pushing them to the Hub in one commit — the one way every
learngene, model and checkpoint of this package is saved or uploaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from transformers.utils import CONFIG_NAME

from .errors import LearngeneConfigError, LearngenePushError


_SHARD_NUMBER = re.compile(r"-\d{5}-of-\d{5}(?=\.)")  # "model-00001-of-00003.safetensors"


def _weights_family(name: str) -> str:
    """The one name a weights file, its shards and its index share (``model.safetensors`` for
    ``model-00002-of-00003.safetensors`` and ``model.safetensors.index.json``), so a save can tell
    which files of an earlier save it makes stale."""
    return _SHARD_NUMBER.sub("", name.removesuffix(".index.json"))


# Files a model's or learngene's save writes beside its config: its tokenizer, processor and
# generation settings. A save that writes a config and not one of these makes an earlier save's stale
# (a loader would otherwise pick up the previous model's tokenizer).
PROCESSOR_FILES = frozenset({
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
    "chat_template.json", "preprocessor_config.json", "processor_config.json", "generation_config.json",
})


def _stale(relative: Path, written: set[Path], families: set[tuple[Path, str]]) -> bool:
    """Whether an existing file is left over from an earlier save of what is now saved: a file of the
    same weights (shard, index, single file), or a processor file beside a config this save wrote."""
    if relative in written:
        return False
    if relative.name.endswith((".safetensors", ".index.json")):
        return (relative.parent, _weights_family(relative.name)) in families
    return relative.name in PROCESSOR_FILES and relative.parent / CONFIG_NAME in written


def _model_kind(config_file: Path) -> str | None:
    """What a ``config.json`` describes (its ``model_type`` or diffusers ``_class_name``), None if unreadable."""
    try:
        fields = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return None
    return (fields.get("model_type") or fields.get("_class_name")) if isinstance(fields, dict) else None


def _refuse_other_model(staging: Path, destination: Path) -> None:
    """Saving over another kind of model's ``config.json`` (a learngene into the model it came from)
    would leave a folder that is neither: refused before anything is moved."""
    for config in staging.rglob(CONFIG_NAME):
        existing = destination / config.relative_to(staging)
        new_kind = _model_kind(config)
        old_kind = _model_kind(existing) if existing.is_file() else None
        if old_kind is not None and new_kind is not None and old_kind != new_kind:
            raise LearngeneConfigError(
                f"{destination} already holds a '{old_kind}' model ({existing}); saving this '{new_kind}' there "
                "would overwrite its config and leave a folder that is neither. Save into another folder"
            )


def _move_into(staging: Path, destination: Path) -> None:
    """Move every file of ``staging`` into the existing folder ``destination``, each by one rename,
    and then remove the files this save makes stale (an earlier save's shards and index, and its
    tokenizer or processor files where this save wrote a config without them). Other files and
    folders in ``destination`` are kept, as transformers' own ``save_pretrained`` keeps them.
    Configs go last: a folder interrupted midway still has its old config, which names its old
    files (a learngene's config also holds their checksums)."""
    files = sorted((path for path in staging.rglob("*") if path.is_file()),
                   key=lambda path: (path.name == CONFIG_NAME, path.name.endswith(".index.json"), str(path)))
    written = {path.relative_to(staging) for path in files}
    families = {(relative.parent, _weights_family(relative.name)) for relative in written}
    for path in files:
        target = destination / path.relative_to(staging)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    for folder in {relative.parent for relative in written}:
        for old in (destination / folder).iterdir():
            if old.is_file() and _stale(old.relative_to(destination), written, families):
                old.unlink()


def write_folder_atomically(destination: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(staging)`` on a temporary folder, then move what it wrote into ``destination``.

    A new ``destination`` appears whole, by one rename of the staging folder beside it. An
    existing one (a Trainer's ``output_dir``, an earlier save, a mount point) is written into as
    transformers does: the new files replace those of the same names one rename each, stale
    shards of the same weights and an earlier model's tokenizer files are removed, and everything
    else in it is kept; saving over another kind of model's config is refused. An interrupted or
    failing ``write`` leaves ``destination`` as it was.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise LearngeneConfigError(f"cannot save into {destination}: it is a file, not a folder")
    exists = destination.is_dir()
    parent = destination if exists else destination.parent
    parent.mkdir(parents=True, exist_ok=True)
    # a plain mkdir, so the folder gets the umask's mode as any saved folder does (mkdtemp's is 0o700)
    staging = parent / f".{destination.name}.tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        write(staging)
        if exists:
            _refuse_other_model(staging, destination)
            _move_into(staging, destination)
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.replace(staging, destination)
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

    Returns the ``CommitInfo``. A failure raises :class:`LearngenePushError` saying at which step it
    happened and whether a commit can have been made. The Hub commits atomically: nothing is
    committed before the commit call, nor when the Hub answers that call with an error; only a
    connection lost during the commit call leaves it open whether the commit was made.
    """
    from httpx2 import TransportError
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    connection_errors = (TransportError, ConnectionError, TimeoutError)  # no answer from the Hub
    api = HfApi(token=token)
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    except HfHubHTTPError as error:
        raise LearngenePushError(
            f"pushing the {what}: the Hub refused to create or open the repository '{repo_id}' "
            f"({http_status(error)}); nothing was uploaded. {_http_advice(error, repo_id, revision)}"
        ) from error
    except LocalTokenNotFoundError:
        raise LearngenePushError(
            f"pushing the {what} to '{repo_id}' needs a Hub token and none is set: log in with `hf auth login`, "
            "set HF_TOKEN or pass token=; nothing was uploaded"
        ) from None
    except connection_errors as error:
        raise LearngenePushError(
            f"pushing the {what}: cannot reach the Hub to create or open the repository '{repo_id}' "
            f"({type(error).__name__}: {first_line(error)}); nothing was uploaded. Check the connection "
            "(and HF_ENDPOINT) and push again"
        ) from error
    with tempfile.TemporaryDirectory() as working_dir:
        folder = Path(working_dir) / "upload"
        folder.mkdir()
        try:
            write(folder, repo_id)
        except OSError as error:  # a local failure (disk full, permissions): nothing has been sent
            raise LearngenePushError(
                f"pushing the {what}: writing its files into a temporary folder for the upload failed "
                f"({type(error).__name__}: {error}); nothing was uploaded to '{repo_id}'"
            ) from error
        operations = [
            CommitOperationAdd(path_in_repo=path.relative_to(folder).as_posix(), path_or_fileobj=str(path))
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        ]
        try:  # large files go to storage first; none of them is part of the repository until the commit
            api.preupload_lfs_files(repo_id, additions=operations, revision=revision, create_pr=create_pr)
        except Exception as error:  # whatever failed, the commit call was not made
            raise LearngenePushError(
                f"pushing the {what} to '{repo_id}': uploading its files failed before the commit "
                f"({type(error).__name__}: {first_line(error)}); nothing was committed, so the repository keeps "
                "its last complete revision. Push again"
            ) from error
        try:
            return api.create_commit(repo_id, operations=operations, commit_message=commit_message,
                                     commit_description=commit_description, revision=revision, create_pr=create_pr)
        except HfHubHTTPError as error:
            response = getattr(error, "response", None)
            if response is not None and response.status_code >= 500:  # a gateway may answer after the commit was made
                raise LearngenePushError(
                    f"pushing the {what} to '{repo_id}': the Hub answered the commit call with a server error "
                    f"({http_status(error)}), so the commit may or may not have been made. Look at the repository's "
                    f"history (HfApi().list_repo_commits('{repo_id}')) before pushing again"
                ) from error
            raise LearngenePushError(
                f"pushing the {what} to '{repo_id}': the Hub refused the commit ({http_status(error)}); nothing "
                f"was committed, so the repository keeps its last complete revision. "
                f"{_http_advice(error, repo_id, revision)}"
            ) from error
        except connection_errors as error:  # the request may have reached the Hub before the connection was lost
            raise LearngenePushError(
                f"pushing the {what} to '{repo_id}': the connection was lost during the commit call "
                f"({type(error).__name__}: {first_line(error)}), so the commit may or may not have been made. "
                f"Look at the repository's history (HfApi().list_repo_commits('{repo_id}')) before pushing again"
            ) from error


def first_line(error: BaseException) -> str:
    """An error's first non-empty line, or its type when it has no message."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def http_status(error: Exception) -> str:
    """``HTTP 403: <the Hub's message>`` for an error answer of the Hub."""
    response = getattr(error, "response", None)
    status = f"HTTP {response.status_code}" if response is not None else "an HTTP error"
    message = getattr(error, "server_message", None) or first_line(error)
    return f"{status}: {message}"


def _http_advice(error: Exception, repo_id: str, revision: str | None) -> str:
    """What a user can do about an error answer, by its status."""
    from huggingface_hub.errors import RevisionNotFoundError

    response = getattr(error, "response", None)
    status = response.status_code if response is not None else None
    if isinstance(error, RevisionNotFoundError):
        return f"The branch '{revision}' does not exist: create it with HfApi().create_branch('{repo_id}', branch=...)"
    if status == 401:
        return "The token was not accepted: log in with `hf auth login` or pass a valid token="
    if status == 403:
        return f"The token may not write to '{repo_id}': use a token with write access to it"
    if status == 404:
        return f"'{repo_id}' does not exist or this token cannot see it"
    if status is not None and status >= 500:
        return "The Hub failed on its side: push again later"
    return "Push again once the cause is fixed"
