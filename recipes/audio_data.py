"""Labelled audio clips for the audio recipe and benchmark, each with a group for cross-validation:
the Debian ``hydrogen-drumkits`` package as a drum-sound set (offline; one group per kit), any
local ``audiofolder`` (one sub-folder per class), or ESC-50 / UrbanSound8K / GTZAN from the Hub
with their official folds (online). Unreadable files are skipped and counted, never fatal."""

from __future__ import annotations

import hashlib
import io
import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

DRUMKITS = Path("/usr/share/hydrogen/data/drumkits")
AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")

# Instrument names in a kit's drumkit.xml → drum class; the first matching rule wins, names that
# match none (numbered pads, loops, effects) are left out and counted.
DRUM_CLASS_RULES: tuple[tuple[str, str], ...] = (
    ("hand percussion", r"cowbell|conga|bongo|djembe|cajon|tambourine|maraca|agogo|clave|woodblock|dununba|kenkeni|"
                        r"sangban|waterglass"),
    ("hi-hat", r"\bhh\b|ohh\b|hi-?hat|hi hat|\bhat\b"),
    ("kick", r"kick|bass ?drum"),
    ("snare", r"snare|rim ?shot|rim click|stick"),
    ("tom", r"tom"),
    ("cymbal", r"crash|ride|splash|china|cymbal|bell"),
    ("clap", r"clap|snap"),
)

# Hub datasets by short name: repository, label column, official fold column (None: none published).
HUB_AUDIO_DATASETS: dict[str, tuple[str, str, str | None]] = {
    "esc50": ("ashraq/esc50", "category", "fold"),
    "urbansound8k": ("danavery/urbansound8K", "class", "fold"),
    "gtzan": ("marsyas/gtzan", "genre", None),
}


@dataclass
class AudioSet:
    """Clips (paths or in-memory bytes), integer labels, class names and a group per clip."""

    sources: list = field(default_factory=list)  # Path, or (name, bytes) for Hub data
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # why, how many

    def __len__(self) -> int:
        return len(self.sources)


def drum_class(instrument: str) -> str | None:
    name = instrument.lower()
    for label, pattern in DRUM_CLASS_RULES:
        if re.search(pattern, name):
            return label
    return None


def load_drumkits(root: Path = DRUMKITS) -> AudioSet:
    """Every sample of every kit under ``root`` whose instrument maps to a drum class; group = kit."""
    kits = sorted(p.parent for p in Path(root).glob("*/drumkit.xml"))
    if not kits:  # the audio recipe checks this at parse time; a Python caller (a benchmark) may not
        raise SystemExit(f"no drum kits under {root}: apt-get install hydrogen-drumkits")
    classes = [label for label, _ in DRUM_CLASS_RULES]
    data = AudioSet(classes=classes)
    for kit in kits:
        try:
            root_element = ElementTree.parse(kit / "drumkit.xml").getroot()
        except ElementTree.ParseError:
            data.left_out["unreadable drumkit.xml"] = data.left_out.get("unreadable drumkit.xml", 0) + 1
            continue
        namespace = re.match(r"\{.*\}", root_element.tag)
        namespace = namespace.group(0) if namespace else ""
        for instrument in root_element.iter(namespace + "instrument"):
            name = instrument.findtext(namespace + "name") or ""
            files = [f.text for f in instrument.iter(namespace + "filename") if f.text]
            label = drum_class(name)
            if label is None:
                data.left_out["instrument with no drum class"] = data.left_out.get("instrument with no drum class", 0) + len(files)
                continue
            for filename in files:
                data.sources.append(kit / filename)
                data.labels.append(classes.index(label))
                data.groups.append(kit.name)
    return data


def load_audiofolder(folder: Path) -> AudioSet:
    """``folder/<class>/<clip>``; an optional ``metadata.csv`` with ``file_name`` and ``fold`` columns sets groups."""
    folder = Path(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"{folder} has no class sub-folders; an audiofolder holds one folder of clips per class")
    folds = {}
    metadata = folder / "metadata.csv"
    if metadata.exists():
        import csv

        with metadata.open() as handle:
            folds = {row["file_name"]: str(row["fold"]) for row in csv.DictReader(handle) if "fold" in row}
    data = AudioSet(classes=classes)
    for index, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in AUDIO_SUFFIXES:
                continue
            relative = f"{name}/{path.name}"
            data.sources.append(path)
            data.labels.append(index)
            data.groups.append(folds.get(relative, relative))  # no fold given: each clip is its own group
    return data


def load_hub_audio(name: str, split: str = "train") -> AudioSet:
    """ESC-50, UrbanSound8K or GTZAN by short name (or any Hub repo with ``audio`` and ``label`` columns)."""
    import datasets

    repo, label_column, fold_column = HUB_AUDIO_DATASETS.get(name.lower(), (name, "label", None))
    part = datasets.load_dataset(repo, split=split)
    if "audio" not in part.column_names:
        raise SystemExit(f"{repo} has no 'audio' column; it has {part.column_names}")
    if isinstance(part.features["audio"], datasets.Audio):  # read the encoded files ourselves (soundfile)
        part = part.cast_column("audio", datasets.Audio(decode=False))
    if label_column not in part.column_names:
        raise SystemExit(f"{repo} has no '{label_column}' column; it has {part.column_names}")
    feature = part.features[label_column]
    names = feature.names if hasattr(feature, "names") else sorted({str(v) for v in part[label_column]})
    data = AudioSet(classes=list(names))
    for index, row in enumerate(part):
        audio = row["audio"]
        label = row[label_column]
        data.sources.append((audio.get("path") or f"{repo}#{index}", audio["bytes"]))
        data.labels.append(label if isinstance(label, int) else names.index(str(label)))
        data.groups.append(str(row[fold_column]) if fold_column else f"clip-{index}")
    return data


def load_audio_set(source: str) -> AudioSet:
    """``drumkits`` (the Debian package), a local audiofolder, or a Hub dataset name."""
    if source == "drumkits":
        return load_drumkits()
    if Path(source).is_dir():
        return load_audiofolder(Path(source))
    return load_hub_audio(source)


def read_clip(source) -> tuple[np.ndarray, int]:
    """(samples, sampling rate) of a path or an in-memory file; channels kept (the extractor downmixes)."""
    import soundfile

    handle = io.BytesIO(source[1]) if isinstance(source, tuple) else source
    samples, rate = soundfile.read(handle, dtype="float64", always_2d=True)
    return samples.T, rate  # (channels, samples)


def featurize(data: AudioSet, extractor, cache: Path | None = None, show_progress: bool = True,
              write_cache: bool = True):
    """(features tensor, kept indices, skipped count) for every readable clip of ``data``.

    A clip that cannot be read or decoded is skipped and counted. With ``cache``, features are
    kept in a safetensors file named after the clip list and the extractor's settings; every
    process reads one that exists, so all train on the same features, and only those given
    ``write_cache`` write one (processes writing one file at once would collide).
    """
    import warnings

    from safetensors.torch import load_file, save_file
    from transformers.utils.logging import tqdm

    key = hashlib.sha256(json.dumps([[str(s[0] if isinstance(s, tuple) else s) for s in data.sources],
                                     extractor.to_dict()], sort_keys=True, default=str).encode()).hexdigest()[:16]
    cache_file = Path(cache) / f"features-{key}.safetensors" if cache else None
    if cache_file and cache_file.exists():
        stored = load_file(cache_file)
        return stored["features"], stored["kept"].tolist(), int(stored["skipped"].item())
    features, kept, skipped = [], [], 0
    for index, source in enumerate(tqdm(data.sources, desc="audio features", disable=not show_progress)):
        try:
            samples, rate = read_clip(source)
        except Exception:  # unreadable or corrupt: skipped and counted, never fatal for a long run
            skipped += 1
            continue
        if samples.size == 0 or not np.isfinite(samples).all():
            skipped += 1
            continue
        clip = samples[0] if samples.shape[0] == 1 else samples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resampling and downmixing are expected here
            out = extractor([clip], sampling_rate=rate, return_tensors="pt")["input_features"]
        features.append(out[0])
        kept.append(index)
    if not features:
        raise SystemExit(f"none of the {len(data)} clips could be read")
    stacked = torch.stack(features)
    if cache_file and write_cache:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(".tmp")
        save_file({"features": stacked, "kept": torch.tensor(kept), "skipped": torch.tensor(skipped)}, temporary)
        temporary.replace(cache_file)
    return stacked, kept, skipped


def grouped_folds(groups: list[str], k: int, seed: int = 0) -> list[list[int]]:
    """``k`` test folds of clip indices such that no group is split between folds.

    Groups that already are folds (ESC-50's and UrbanSound8K's official ``fold`` values, k equal
    to their count) are used as they are; otherwise groups are dealt, largest first, to the
    currently smallest fold (a seeded shuffle breaks ties).
    """
    names = sorted(set(groups))
    if k < 2:  # --folds is refused below 2 at parse time; a Python caller may pass anything
        raise SystemExit(f"k-fold cross-validation needs k ≥ 2, got {k}")
    if len(names) < k:
        raise SystemExit(f"{len(names)} groups cannot fill {k} folds without splitting a group; use --folds ≤ {len(names)}")
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    if len(names) == k:
        return [members[name] for name in names]
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    ranked = sorted((names[i] for i in order), key=lambda name: -len(members[name]))
    folds: list[list[int]] = [[] for _ in range(k)]
    for name in ranked:
        min(folds, key=len).extend(members[name])
    return [sorted(fold) for fold in folds]
