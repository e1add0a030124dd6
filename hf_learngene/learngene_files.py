"""The files a learngene's tensors live in: one ``learngene.safetensors`` for a small learngene, or
transformers-style shards with an index for one extracted from a 7-70B model.

:class:`LearngeneWriter` takes one tensor at a time (streaming extraction never holds them all)
and keeps at most one shard in memory; :class:`LearngeneReader` hashes a shard only the first
time one of its tensors is read, so opening a large learngene costs nothing. :class:`ShardWriter`
is the same writer with other file names: a built model's ``model.safetensors`` (transformers) or
``diffusion_pytorch_model.safetensors`` (diffusers) and their shards, kept in their own dtype.

Layouts (the writer picks the first when everything fits in one shard):

* single file: ``learngene.safetensors``; its sha256 is kept by the caller (``config.checksum``).
* sharded: ``learngene-00001-of-0000N.safetensors`` ... and ``learngene.safetensors.index.json``::

      {"metadata": {"total_size": <bytes of tensor data>, "storage_dtype": "bfloat16",
                    "shard_checksums": {"learngene-00001-of-00003.safetensors": "<sha256>", ...}},
       "weight_map": {"<role name>": "learngene-00001-of-00003.safetensors", ...}}

Only safetensors and JSON are ever read: nothing is unpickled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from transformers.utils.hub import convert_file_size_to_int

from .errors import LearngeneConfigError, LearngeneLoadError
from .safetensors_file import SafetensorsFile, SafetensorsWriter


@dataclasses.dataclass(frozen=True)
class ShardNames:
    """How one kind of checkpoint names its files: the single file, the index, and the shards."""

    single: str  # "model.safetensors"
    index: str  # "model.safetensors.index.json"
    shard_pattern: str  # "model-{number:05d}-of-{count:05d}.safetensors"

    def shard(self, number: int, count: int) -> str:
        return self.shard_pattern.format(number=number, count=count)


def _names_for(stem: str) -> ShardNames:
    """transformers' (and diffusers') naming, so Hub tools and ``from_pretrained`` recognise the files."""
    shard_pattern = stem + "-{number:05d}-of-{count:05d}.safetensors"
    return ShardNames(f"{stem}.safetensors", f"{stem}.safetensors.index.json", shard_pattern)


LEARNGENE_FILES = _names_for("learngene")
MODEL_FILES = {"transformers": _names_for("model"), "diffusers": _names_for("diffusion_pytorch_model")}
WEIGHTS_NAME = LEARNGENE_FILES.single
INDEX_NAME = LEARNGENE_FILES.index
STORAGE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_DTYPE_NAMES = {dtype: name for name, dtype in STORAGE_DTYPES.items()}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks so a 5 GB shard never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_shard_size(max_shard_size: int | str) -> int:
    """Bytes from ``max_shard_size`` (an int, or a string like ``"5GB"`` as transformers takes)."""
    try:
        if isinstance(max_shard_size, bool):  # an int to Python, never a size to a user
            raise TypeError
        limit = convert_file_size_to_int(max_shard_size)
    except (ValueError, TypeError, AttributeError):
        raise LearngeneConfigError(
            f"max_shard_size={max_shard_size!r} is not a size: pass bytes as an int or a string like '5GB'"
        ) from None
    if limit <= 0:
        raise LearngeneConfigError(f"max_shard_size={max_shard_size!r} must be more than 0 bytes")
    return limit


def parse_storage_dtype(storage_dtype: torch.dtype | str | None) -> torch.dtype:
    """The dtype tensors are stored in: float32 unless bfloat16 or float16 is asked for."""
    if storage_dtype is None:
        return torch.float32
    dtype = STORAGE_DTYPES.get(storage_dtype) if isinstance(storage_dtype, str) else storage_dtype
    if dtype not in _DTYPE_NAMES:
        raise LearngeneConfigError(
            f"storage_dtype={storage_dtype!r} is not supported: pass 'float32', 'bfloat16' or 'float16' "
            "(or the torch dtype)"
        )
    return dtype


@dataclasses.dataclass(frozen=True)
class LearngeneFiles:
    """What :meth:`ShardWriter.close` wrote.

    Attributes:
        files: the weight files, in order (the single file or the shards; not the index).
        weight_map: tensor name -> the file holding it.
        checksums: file -> sha256, for every weight file.
        total_size: bytes of tensor data as stored (headers not counted, as transformers counts).
        storage_dtype: ``"float32"``, ``"bfloat16"`` or ``"float16"``; ``None`` when each tensor
            kept its own dtype (a built model's shards).
        index: the index file's name when sharded, else ``None``.
        checksum: sha256 of the file a reader starts from: ``learngene.safetensors`` (today's
            ``config.checksum``), or the index when sharded; ``LearngeneReader(expected_checksum=...)``
            verifies either.
    """

    files: tuple[str, ...]
    weight_map: dict[str, str]
    checksums: dict[str, str]
    total_size: int
    storage_dtype: str | None
    index: str | None
    checksum: str

    @property
    def sharded(self) -> bool:
        return self.index is not None


class ShardWriter:
    """Write tensors one at a time into ``folder`` as ``names.single``, or as shards of at most
    ``max_shard_size`` bytes with ``names.index`` once they do not fit in one.

    Use it as a context manager inside a staging folder (``write_folder_atomically`` renames the
    folder into place). Shards are written under temporary names as they fill up, since their
    count is unknown until :meth:`close`; at most one shard's tensors are held in memory. A tensor
    larger than the limit gets a shard of its own, as in transformers. ``storage_dtype`` converts
    every tensor; ``None`` keeps each one's dtype.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        names: ShardNames = LEARNGENE_FILES,
        max_shard_size: int | str | None = None,
        storage_dtype: torch.dtype | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.names = names
        self.max_shard_size = None if max_shard_size is None else parse_shard_size(max_shard_size)
        self.storage_dtype = storage_dtype
        self.folder.mkdir(parents=True, exist_ok=True)
        self.result: LearngeneFiles | None = None
        self._shard: SafetensorsWriter | None = None  # the shard being written, under a temporary name
        self._partials: list[tuple[Path, list[str], str]] = []  # (temporary file, its tensor names, sha256)
        self._added: set[str] = set()
        self._total_size = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes of tensors held in memory: none, each goes to disk as it is added."""
        return 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        """Write ``tensor`` under ``name`` to the current shard (a new one first if it would overflow)."""
        if self.result is not None:
            raise RuntimeError(f"{type(self).__name__}.add after close: the files are already written")
        if name in self._added:
            raise LearngeneConfigError(f"the tensor '{name}' was added twice")
        if self.storage_dtype is not None and not tensor.is_floating_point():
            raise LearngeneConfigError(f"'{name}' is a {tensor.dtype} tensor; only floating-point tensors are stored "
                                       f"as {self.storage_dtype}")
        dtype = self.storage_dtype or tensor.dtype
        size = tensor.numel() * dtype.itemsize
        if self._shard is not None and self.max_shard_size is not None and self._shard.size + size > self.max_shard_size:
            self._finish_shard()
        if self._shard is None:
            self._shard = SafetensorsWriter(self.folder / f".shard-{len(self._partials) + 1:05d}.{self.names.single}.partial")
        stored = tensor.detach().to(dtype=dtype)
        if dtype == torch.float16 and tensor.dtype != torch.float16 and bool((stored.isinf() & tensor.isfinite()).any()):
            raise LearngeneConfigError(
                f"'{name}' has values up to {tensor.abs().max().item():.4g}, beyond float16's range (±65504), so "
                "storing it in float16 would make them inf: store the learngene in bfloat16 or float32"
            )
        self._shard.append(name, stored)
        self._added.add(name)
        self._total_size += size

    def _finish_shard(self) -> None:
        """Write the current shard's header and data to its temporary file."""
        shard, self._shard = self._shard, None
        self._partials.append((shard.path, shard.names(), shard.finish({"format": "pt"})))

    def close(self) -> LearngeneFiles:
        """Write the last shard, name the shards and write the index; returns what was written."""
        if self.result is not None:
            return self.result
        if self._shard is not None or not self._partials:
            if self._shard is None:  # nothing was added: an empty file, as a learngene of the random baseline
                self._shard = SafetensorsWriter(self.folder / f".shard-00001.{self.names.single}.partial")
            self._finish_shard()
        dtype_name = _DTYPE_NAMES.get(self.storage_dtype)
        if len(self._partials) == 1:  # everything fits in one file: the unsharded layout, no index
            (partial, tensor_names, checksum), single = self._partials[0], self.names.single
            os.replace(partial, self.folder / single)
            self.result = LearngeneFiles(
                files=(single,), weight_map=dict.fromkeys(tensor_names, single), checksums={single: checksum},
                total_size=self._total_size, storage_dtype=dtype_name, index=None, checksum=checksum,
            )
        else:
            count = len(self._partials)
            weight_map, checksums = {}, {}
            for number, (partial, tensor_names, sha256) in enumerate(self._partials, start=1):
                file = self.names.shard(number, count)
                os.replace(partial, self.folder / file)
                checksums[file] = sha256
                weight_map.update(dict.fromkeys(tensor_names, file))
            metadata = {"total_size": self._total_size, "shard_checksums": checksums}
            if dtype_name is not None:
                metadata["storage_dtype"] = dtype_name
            index = self.folder / self.names.index
            index.write_text(json.dumps({"metadata": metadata, "weight_map": weight_map}, indent=2, sort_keys=True)
                             + "\n")
            self.result = LearngeneFiles(
                files=tuple(checksums), weight_map=weight_map, checksums=checksums, total_size=self._total_size,
                storage_dtype=dtype_name, index=self.names.index, checksum=file_sha256(index),
            )
        return self.result

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
            return
        # a failed extraction or build: drop the shard being written and the unnamed ones (the caller drops the folder)
        if self._shard is not None:
            self._shard.discard()
            self._shard = None
        for partial, _, _ in self._partials:
            partial.unlink(missing_ok=True)


class LearngeneWriter(ShardWriter):
    """Write a learngene's tensors (keyed by role name) one at a time: ``learngene.safetensors``, or
    ``learngene-0000i-of-0000N.safetensors`` with ``learngene.safetensors.index.json`` when they
    exceed ``max_shard_size``; stored as ``storage_dtype`` (float32 unless bfloat16/float16 is asked for)."""

    def __init__(
        self,
        folder: str | os.PathLike,
        max_shard_size: int | str | None = None,
        storage_dtype: torch.dtype | str | None = None,
    ) -> None:
        super().__init__(folder, LEARNGENE_FILES, max_shard_size, parse_storage_dtype(storage_dtype))


def _read_index(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """``(weight_map, shard_checksums)`` from an index file, refusing anything malformed."""
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LearngeneLoadError(f"{path} is not valid JSON ({error}); the learngene is corrupt") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    metadata = index.get("metadata", {}) if isinstance(index, dict) else None
    checksums = metadata.get("shard_checksums", {}) if isinstance(metadata, dict) else None
    if not (isinstance(weight_map, dict) and isinstance(checksums, dict)
            and all(isinstance(value, str) for value in [*weight_map.values(), *checksums.values()])):
        raise LearngeneLoadError(
            f"{path} is not a learngene index (it needs a 'weight_map' of tensor name -> file and optional "
            "'metadata.shard_checksums' of file -> sha256); the learngene is corrupt"
        )
    for file in {*weight_map.values(), *checksums}:
        if file in ("", ".", "..") or Path(file).name != file or "\\" in file:  # never a path out of the folder
            raise LearngeneLoadError(
                f"{path} names the shard '{file}', which is not a file name; the learngene is corrupt"
            )
    return weight_map, checksums


def shard_files(folder: str | os.PathLike, names: ShardNames = LEARNGENE_FILES) -> list[str]:
    """The weight files a folder needs: its shards per the index, else the single file.

    Only the index is read (if there is one), so this can list what a download must include.
    """
    index = Path(folder) / names.index
    if index.is_file():
        weight_map, _ = _read_index(index)
        return sorted(set(weight_map.values()))
    return [names.single]


class LearngeneReader:
    """Read a learngene's tensors from either layout, verifying each file's sha256 once, on first use.

    Opening reads the index (if any; it wins over a stray single file) and checks that every listed
    shard exists; no tensor data is read or hashed until :meth:`get`. A file with no recorded
    checksum (learngenes saved before checksums) is read unverified.

    Args:
        folder: the learngene folder.
        expected_checksum: sha256 of ``learngene.safetensors`` (``config.checksum``), or of the
            index when sharded (:attr:`LearngeneFiles.checksum`); ``None`` checks nothing extra.
        checksum_source: where ``expected_checksum`` came from, for error messages.
        names: the file naming (a built model's ``MODEL_FILES[library]`` reads the same way).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        expected_checksum: str | None = None,
        *,
        checksum_source: str = "config.json",
        names: ShardNames = LEARNGENE_FILES,
    ) -> None:
        self.folder = Path(folder)
        self.layout = names
        self._checksum_source = checksum_source
        # open files, kept so that every read is of the file that was verified even if the folder is
        # saved over while this reader lives (a lazily loaded learngene), with the size and times
        # they had when verified: a file rewritten in place is refused, not read
        self._handles: dict[str, SafetensorsFile] = {}
        self._verified: dict[str, tuple[int, int]] = {}
        index, single = self.folder / names.index, self.folder / names.single
        if index.is_file():
            if expected_checksum:
                self._verify(index, expected_checksum, checksum_source)
            self.index: Path | None = index
            self._weight_map, self._checksums = _read_index(index)
            for file in sorted(set(self._weight_map.values())):
                if not (self.folder / file).is_file():
                    raise LearngeneLoadError(
                        f"{self.folder / file} is missing: {names.index} lists it as a shard; "
                        "save or download the learngene again"
                    )
        elif single.is_file():
            self.index = None
            self._weight_map = None  # names() reads the file's header when asked
            self._checksums = {names.single: expected_checksum} if expected_checksum else {}
        else:
            raise LearngeneLoadError(f"{self.folder} holds neither {names.single} nor {names.index}")

    @property
    def sharded(self) -> bool:
        return self.index is not None

    def _verify(self, path: Path, expected: str, source: str) -> None:
        if file_sha256(path) != expected:
            raise LearngeneLoadError(
                f"{path} does not match the checksum in {source}: the file is truncated or corrupt; "
                "save or download the learngene again"
            )

    def _file_of(self, name: str) -> str:
        """The file holding ``name``; the single file's own header says whether it does, once opened."""
        if not self.sharded:
            return self.layout.single
        if name not in self._weight_map:
            raise LearngeneLoadError(
                f"{self.index} has no tensor '{name}'; the learngene is corrupt or of another version"
            )
        return self._weight_map[name]

    def _open(self, file: str, read):
        """``read(handle)`` on a safetensors file, with its errors named."""
        path = self.folder / file
        try:
            if file not in self._handles:
                self._handles[file] = SafetensorsFile(path)
            return read(self._handles[file])
        except (SafetensorError, OSError) as error:
            raise LearngeneLoadError(
                f"{path} cannot be read as safetensors ({error}); the file is truncated or corrupt"
            ) from None

    def _checked(self, handle, file: str, name: str):
        """``handle``, once it is known to hold ``name`` (an index can map a name to the wrong shard)."""
        if name not in handle.keys():
            mapped = f" that {self.layout.index} maps to it" if self.sharded else ""
            raise LearngeneLoadError(
                f"{self.folder / file} has no tensor '{name}'{mapped}; the learngene is corrupt or of another version"
            )
        return handle

    def names(self) -> list[str]:
        """Every tensor name, sorted."""
        if self._weight_map is None:  # the single file: its header lists them
            single = self.layout.single
            self._weight_map = dict.fromkeys(self._open(single, lambda handle: handle.keys()), single)
        return sorted(self._weight_map)

    def shape(self, name: str) -> tuple[int, ...]:
        """A tensor's shape from its file's header, reading no data and hashing nothing."""
        file = self._file_of(name)
        return tuple(self._open(file, lambda handle: self._checked(handle, file, name).get_slice(name).get_shape()))

    def get(
        self, name: str, dtype: torch.dtype | None = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """A tensor as ``dtype`` (``None``: as stored) on ``device``; its file is verified first, once."""
        file = self._file_of(name)
        expected = self._checksums.get(file) if file not in self._verified else None
        source = self.layout.index if self.sharded else self._checksum_source
        try:
            handle = self._open(file, lambda handle: handle)
        except LearngeneLoadError:
            if expected:  # unreadable and recorded: say that it is not the file that was saved
                self._verify(self.folder / file, expected, source)
            raise
        if file not in self._verified:
            if expected and handle.sha256() != expected:  # the open file itself, whatever the path names now
                raise LearngeneLoadError(
                    f"{self.folder / file} does not match the checksum in {source}: the file is truncated or "
                    "corrupt; save or download the learngene again"
                )
            self._verified[file] = handle.stamp()
        elif handle.stamp() != self._verified[file]:
            raise LearngeneLoadError(
                f"{self.folder / file} was rewritten after the learngene was loaded; load the learngene again"
            )
        tensor = self._open(file, lambda handle: self._checked(handle, file, name).get_tensor(name))
        return tensor.to(device=device, dtype=dtype)
