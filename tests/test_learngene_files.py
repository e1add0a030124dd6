"""A learngene's files: one file or shards, fp32 or bf16, written one tensor at a time and
verified one shard at a time, with errors that name the file at fault."""

import json
import re

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from hf_learngene import learngene_files
from hf_learngene.errors import LearngeneConfigError, LearngeneLoadError
from hf_learngene.learngene_files import (
    INDEX_NAME,
    MODEL_FILES,
    WEIGHTS_NAME,
    LearngeneReader,
    LearngeneWriter,
    ShardWriter,
    file_sha256,
    parse_shard_size,
    parse_storage_dtype,
    shard_files,
)

KB = 1000


def role_tensors() -> dict[str, torch.Tensor]:
    """Role-named tensors of 1.6-12 kB in fp32, one (12 kB) larger than the 5 kB shard limit used below."""
    generator = torch.Generator().manual_seed(0)
    shapes = {
        "embeddings.word_embeddings.weight": (30, 100),  # 12 kB: a shard of its own
        "layers.{layer}.attention.self.query.weight": (20, 20),
        "layers.{layer}.attention.self.query.bias": (4, 100),
        "layers.{layer}.attention.output.dense.weight": (10, 40),
        "layers.{layer}.intermediate.dense.weight": (25, 40),
        "layers.{layer}.output.dense.weight": (10, 40),
    }
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def write(folder, tensors, **options):
    with LearngeneWriter(folder, **options) as writer:
        for name, tensor in tensors.items():
            writer.add(name, tensor)
    return writer.result


@pytest.fixture
def sharded(tmp_path):
    tensors = role_tensors()
    return tmp_path, tensors, write(tmp_path, tensors, max_shard_size=5 * KB)


def test_single_file_round_trip(tmp_path):
    """No limit (or one that everything fits in) writes today's learngene.safetensors and no index."""
    tensors = role_tensors()
    for folder, options in ((tmp_path / "none", {}), (tmp_path / "large", {"max_shard_size": "5GB"})):
        result = write(folder, tensors, **options)
        assert sorted(path.name for path in folder.iterdir()) == [WEIGHTS_NAME]
        assert not result.sharded and result.files == (WEIGHTS_NAME,) and result.storage_dtype == "float32"
        assert result.checksum == result.checksums[WEIGHTS_NAME] == file_sha256(folder / WEIGHTS_NAME)
        assert result.total_size == sum(tensor.numel() * 4 for tensor in tensors.values())
        with safe_open(folder / WEIGHTS_NAME, framework="pt") as handle:  # readable as before, as before
            assert handle.metadata() == {"format": "pt"}
            assert torch.equal(handle.get_tensor("layers.{layer}.output.dense.weight"),
                               tensors["layers.{layer}.output.dense.weight"])
        reader = LearngeneReader(folder, expected_checksum=result.checksum)
        assert reader.names() == sorted(tensors) and shard_files(folder) == [WEIGHTS_NAME]
        for name, tensor in tensors.items():
            assert reader.shape(name) == tuple(tensor.shape)
            assert torch.equal(reader.get(name), tensor)
    assert file_sha256(tmp_path / "none" / WEIGHTS_NAME) == file_sha256(tmp_path / "large" / WEIGHTS_NAME)
    loaded = load_file(tmp_path / "none" / WEIGHTS_NAME)  # safetensors' own reader takes what the writer wrote
    assert set(loaded) == set(tensors) and all(torch.equal(loaded[name], tensors[name]) for name in tensors)


def test_sharded_round_trip(sharded):
    folder, tensors, result = sharded
    count = len(result.files)
    assert count >= 4 and result.sharded
    assert result.files == tuple(f"learngene-{number:05d}-of-{count:05d}.safetensors" for number in range(1, count + 1))
    assert sorted(path.name for path in folder.iterdir()) == sorted([*result.files, INDEX_NAME])  # no temporary files
    assert result.weight_map["embeddings.word_embeddings.weight"] == result.files[0]
    with safe_open(folder / result.files[0], framework="pt") as handle:  # larger than the limit: alone
        assert list(handle.keys()) == ["embeddings.word_embeddings.weight"]
    index = json.loads((folder / INDEX_NAME).read_text())
    assert index == {
        "metadata": {"total_size": result.total_size, "storage_dtype": "float32", "shard_checksums": result.checksums},
        "weight_map": result.weight_map,
    }
    assert result.checksums == {file: file_sha256(folder / file) for file in result.files}
    assert result.checksum == file_sha256(folder / INDEX_NAME)
    assert shard_files(folder) == list(result.files)
    reader = LearngeneReader(folder, expected_checksum=result.checksum)
    assert reader.sharded and reader.names() == sorted(tensors)
    for name, tensor in tensors.items():
        assert reader.shape(name) == tuple(tensor.shape)
        assert torch.equal(reader.get(name), tensor)  # exact in fp32
    assert reader.get("layers.{layer}.output.dense.weight", dtype=None).dtype == torch.float32


def test_bfloat16_storage(tmp_path):
    """bf16 stores bf16-rounded values in about half the bytes; reading gives fp32 (or bf16 on request)."""
    tensors = role_tensors()
    fp32 = write(tmp_path / "fp32", tensors, max_shard_size=5 * KB)
    bf16 = write(tmp_path / "bf16", tensors, max_shard_size=5 * KB, storage_dtype="bfloat16")
    assert bf16.storage_dtype == "bfloat16" and bf16.total_size * 2 == fp32.total_size
    assert json.loads((tmp_path / "bf16" / INDEX_NAME).read_text())["metadata"]["storage_dtype"] == "bfloat16"
    on_disk = {name: sum((tmp_path / name / file).stat().st_size for file in files.files)
               for name, files in (("fp32", fp32), ("bf16", bf16))}
    assert 0.45 < on_disk["bf16"] / on_disk["fp32"] < 0.6
    reader = LearngeneReader(tmp_path / "bf16")
    for name, tensor in tensors.items():
        value = reader.get(name)
        assert value.dtype == torch.float32 and torch.equal(value, tensor.bfloat16().float())
        assert reader.get(name, dtype=None).dtype == torch.bfloat16
    assert write(tmp_path / "fp16", tensors, storage_dtype=torch.float16).storage_dtype == "float16"


def test_writer_holds_at_most_one_shard(tmp_path):
    """Tensors go to disk as they come (nothing is held in memory), and a shard is finished as soon
    as the next tensor would overflow it; a tensor larger than the limit gets a shard of its own."""
    tensors = role_tensors()
    limit = 5 * KB
    assert max(tensor.numel() * 4 for tensor in tensors.values()) > limit  # one tensor is larger than a shard
    writer = LearngeneWriter(tmp_path, max_shard_size=limit)
    written = []
    for name, tensor in tensors.items():
        writer.add(name, tensor)
        assert writer.buffered_bytes < limit
        written.append(len(list(tmp_path.glob(".shard-*.partial"))))
    assert written[0] == 0 and written[1] == 1 and written[-1] >= 2 and written == sorted(written)
    assert not list(tmp_path.glob("learngene*"))  # final names only at close
    result = writer.close()
    assert writer.buffered_bytes == 0 and result.sharded and writer.close() is result


def test_writer_holds_no_tensor_and_views_are_stored_on_their_own(tmp_path):
    """Each tensor goes to disk as it is added (the caller may reuse it at once), and two views into
    one tensor are stored as two tensors."""
    whole = torch.arange(12.0)
    big = torch.ones(64)
    writer = LearngeneWriter(tmp_path)
    writer.add("big", big)
    writer.add("first", whole[:6])
    writer.add("second", whole[6:])
    big.zero_()
    writer.close()
    reader = LearngeneReader(tmp_path)
    assert torch.equal(reader.get("second"), torch.arange(6.0, 12.0)) and torch.equal(reader.get("big"), torch.ones(64))


def test_writer_refusals_and_failure(tmp_path):
    writer = LearngeneWriter(tmp_path / "a", max_shard_size=100)
    writer.add("x", torch.zeros(20))
    with pytest.raises(LearngeneConfigError, match="'x' was added twice"):
        writer.add("x", torch.zeros(2))
    with pytest.raises(LearngeneConfigError, match="'steps' is a torch.int64 tensor; only floating-point"):
        writer.add("steps", torch.arange(3))
    writer.close()
    with pytest.raises(RuntimeError, match="after close"):
        writer.add("y", torch.zeros(2))
    with pytest.raises(KeyError):  # a failed extraction writes nothing further and drops its unnamed shards
        with LearngeneWriter(tmp_path / "b", max_shard_size=100) as writer:
            writer.add("x", torch.zeros(20))
            writer.add("y", torch.zeros(20))
            raise KeyError("extraction failed")
    assert list((tmp_path / "b").iterdir()) == []


def test_reading_is_lazy_and_per_shard(sharded, monkeypatch):
    """Opening hashes nothing; get() hashes only its own shard, once; a corrupt shard spoils only its tensors."""
    folder, tensors, result = sharded
    hashed = []
    from hf_learngene.safetensors_file import SafetensorsFile

    original = SafetensorsFile.sha256
    monkeypatch.setattr(SafetensorsFile, "sha256", lambda self: hashed.append(self.path.name) or original(self))
    corrupt = result.weight_map["layers.{layer}.output.dense.weight"]
    intact = next(name for name, file in result.weight_map.items() if file != corrupt)
    data = bytearray((folder / corrupt).read_bytes())
    data[-3] ^= 0xFF
    (folder / corrupt).write_bytes(bytes(data))

    reader = LearngeneReader(folder)
    assert reader.names() == sorted(tensors) and reader.shape(intact) == tuple(tensors[intact].shape)
    assert hashed == []
    assert torch.equal(reader.get(intact), tensors[intact])
    assert torch.equal(reader.get(intact), tensors[intact])
    assert hashed == [result.weight_map[intact]]  # its shard, once
    with pytest.raises(LearngeneLoadError, match=rf"{corrupt} does not match the checksum in {INDEX_NAME}: the file is "
                                                 "truncated or corrupt; save or download the learngene again"):
        reader.get("layers.{layer}.output.dense.weight")


def test_checksum_of_the_single_file_and_of_the_index(tmp_path):
    tensors = role_tensors()
    single = write(tmp_path / "single", tensors)
    weights = tmp_path / "single" / WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[:-100])
    reader = LearngeneReader(tmp_path / "single", expected_checksum=single.checksum)  # nothing read yet
    with pytest.raises(LearngeneLoadError, match=f"{WEIGHTS_NAME} does not match the checksum in config.json"):
        reader.get("layers.{layer}.output.dense.weight")
    with pytest.raises(LearngeneLoadError, match=f"{WEIGHTS_NAME} cannot be read as safetensors.*truncated or corrupt"):
        LearngeneReader(tmp_path / "single").get("layers.{layer}.output.dense.weight")  # no checksum recorded

    sharded = write(tmp_path / "sharded", tensors, max_shard_size=5 * KB)
    index = tmp_path / "sharded" / INDEX_NAME
    index.write_text(index.read_text().replace('"total_size": ', '"total_size": 1'))
    with pytest.raises(LearngeneLoadError, match=f"{INDEX_NAME} does not match the checksum in config.json"):
        LearngeneReader(tmp_path / "sharded", expected_checksum=sharded.checksum)


def test_missing_shard_is_named(sharded):
    folder, _, result = sharded
    (folder / result.files[1]).unlink()
    with pytest.raises(LearngeneLoadError, match=rf"{result.files[1]} is missing: {INDEX_NAME} lists it as a shard"):
        LearngeneReader(folder)


def test_bad_index(tmp_path, sharded):
    folder, _, result = sharded
    index = folder / INDEX_NAME
    original = index.read_text()
    index.write_text(original[:-20])
    for call in (lambda: LearngeneReader(folder), lambda: shard_files(folder)):
        with pytest.raises(LearngeneLoadError, match=f"{INDEX_NAME} is not valid JSON"):
            call()
    index.write_text(json.dumps({"weight_map": ["a"]}))
    with pytest.raises(LearngeneLoadError, match=f"{INDEX_NAME} is not a learngene index"):
        LearngeneReader(folder)
    index.write_text(json.dumps({"weight_map": {"x": "../outside.safetensors"}}))
    with pytest.raises(LearngeneLoadError, match="names the shard '../outside.safetensors', which is not a file name"):
        LearngeneReader(folder)
    with pytest.raises(LearngeneLoadError, match=f"holds neither {WEIGHTS_NAME} nor {INDEX_NAME}"):
        LearngeneReader(tmp_path / "empty")


def test_unknown_name_and_not_safetensors(tmp_path, sharded):
    folder, _, result = sharded
    reader = LearngeneReader(folder)
    with pytest.raises(LearngeneLoadError, match=f"{INDEX_NAME} has no tensor 'layers.{{layer}}.mlp.weight'"):
        reader.get("layers.{layer}.mlp.weight")
    index = json.loads((folder / INDEX_NAME).read_text())  # an index that maps a name to the wrong shard
    name = "layers.{layer}.output.dense.weight"
    wrong = next(file for file in result.files if file != result.weight_map[name])
    index["weight_map"][name] = wrong
    (folder / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(LearngeneLoadError, match=rf"{wrong} has no tensor '{name}' that {INDEX_NAME} maps to it"):
        LearngeneReader(folder).shape(name)

    write(tmp_path / "single", {"x": torch.zeros(2)})
    with pytest.raises(LearngeneLoadError, match=f"{WEIGHTS_NAME} has no tensor 'y'"):
        LearngeneReader(tmp_path / "single").get("y")
    (tmp_path / "single" / WEIGHTS_NAME).write_bytes(b"\x80\x04 a pickle, not safetensors")
    for call in (lambda reader: reader.names(), lambda reader: reader.get("x")):
        with pytest.raises(LearngeneLoadError, match=f"{WEIGHTS_NAME} cannot be read as safetensors"):
            call(LearngeneReader(tmp_path / "single"))


@pytest.mark.parametrize("value", ["lots", "12", "0.5GB", 1.5, True, 0, -1, "0KB", "-1KB"])
def test_bad_max_shard_size(value, tmp_path):
    with pytest.raises(LearngeneConfigError, match=re.escape(f"max_shard_size={value!r}")):
        parse_shard_size(value)
    with pytest.raises(LearngeneConfigError, match="max_shard_size"):
        LearngeneWriter(tmp_path, max_shard_size=value)


def test_shard_sizes():
    assert parse_shard_size(1000) == 1000 and parse_shard_size("5GB") == 5 * 10**9 and parse_shard_size("1KiB") == 1024


@pytest.mark.parametrize("value", ["int8", "fp8", torch.float64, torch.int32, "torch.bfloat16"])
def test_bad_storage_dtype(value, tmp_path):
    with pytest.raises(LearngeneConfigError, match="is not supported: pass 'float32', 'bfloat16' or 'float16'"):
        LearngeneWriter(tmp_path, storage_dtype=value)


def test_storage_dtypes():
    assert parse_storage_dtype(None) == parse_storage_dtype("float32") == torch.float32
    assert parse_storage_dtype("bfloat16") == parse_storage_dtype(torch.bfloat16) == torch.bfloat16
    assert parse_storage_dtype("float16") == torch.float16


@pytest.mark.parametrize("max_shard_size", [None, 4 * KB])
def test_shard_writer_writes_a_model_transformers_loads(tmp_path, max_shard_size):
    """With MODEL_FILES a built model streams into model.safetensors (or shards and index) in its own dtype."""
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16)
    model = transformers.BertModel(config).to(torch.bfloat16)
    with ShardWriter(tmp_path, MODEL_FILES["transformers"], max_shard_size) as writer:
        for name, tensor in model.state_dict().items():
            writer.add(name, tensor)
    model.config.save_pretrained(tmp_path)
    result = writer.result
    assert result.storage_dtype is None and result.sharded == (max_shard_size is not None)
    if result.sharded:
        assert result.files[0] == f"model-00001-of-{len(result.files):05d}.safetensors" and len(result.files) > 1
        assert (tmp_path / "model.safetensors.index.json").is_file()
    else:
        assert result.files == ("model.safetensors",)
        assert shard_files(tmp_path, MODEL_FILES["transformers"]) == list(result.files)
    loaded = transformers.BertModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    reader = LearngeneReader(tmp_path, names=MODEL_FILES["transformers"])
    assert reader.get("embeddings.word_embeddings.weight", dtype=None).dtype == torch.bfloat16


def test_the_pread_reader_gives_what_safetensors_gives(tmp_path):
    from hf_learngene.safetensors_file import SafetensorsFile, SafetensorsFormatError

    generator = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=generator),
        "bf16": torch.randn(7, generator=generator).bfloat16(),
        "f16": torch.randn(2, 2, 2, generator=generator).half(),
        "i64": torch.arange(6).reshape(2, 3),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 4),
    }
    save_file(tensors, tmp_path / "x.safetensors", metadata={"format": "pt"})
    with SafetensorsFile(tmp_path / "x.safetensors") as handle:
        assert sorted(handle.keys()) == sorted(tensors) and handle.metadata == {"format": "pt"}
        for name, tensor in tensors.items():
            assert handle.get_slice(name).get_shape() == list(tensor.shape)
            got = handle.get_tensor(name)
            assert got.dtype == tensor.dtype and torch.equal(got, tensor), name
    data = (tmp_path / "x.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-8])
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01")
    for name, message in (("cut", "should take"), ("junk", "no JSON header"), ("tiny", "shorter than")):
        with pytest.raises(SafetensorsFormatError, match=message):
            SafetensorsFile(tmp_path / f"{name}.safetensors")
