"""The audio data loaders and recipe: drum sounds from hydrogen-drumkits with kit-grouped folds, a
local audiofolder with an unreadable file, k-fold training with checkpoints and resume."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import audio_classification  # noqa: E402
from audio_data import drum_class, featurize, grouped_folds, load_audiofolder, load_drumkits  # noqa: E402

from hf_learngene import PIPMNFeatureExtractor  # noqa: E402


def test_instrument_names_map_to_drum_classes():
    table = {"Kick (Tama Superstar 22\")": "kick", "Closed HH": "hi-hat", "Side OHH": "hi-hat", "Snare Rock": "snare",
             "Pearl Side Stick": "snare", "Tom Hi": "tom", "Ride Bell": "cymbal", "Cowbell": "hand percussion",
             "Djembe1 Slap": "hand percussion", "Hand Clap": "clap", "Finger Snaps": "clap", "c3 - bass drum 1": "kick",
             "17": None, "Sample: beats_01-10.flac": None, "Zap 1": None}
    assert {name: drum_class(name) for name in table} == table


def test_drum_kits_load_with_kit_groups_and_folds_never_split_a_kit():
    data = load_drumkits()
    assert len(data) > 600 and len(set(data.groups)) == 14
    assert data.left_out["instrument with no drum class"] > 0
    # the package's Millo_MultiLayered2 kit names a cowbell file it does not ship: a real unreadable clip
    assert [p.name for p in data.sources if not p.exists()] == ["misc_Cowbell.flac"]
    folds = grouped_folds(data.groups, 5)
    assert sorted(i for fold in folds for i in fold) == list(range(len(data)))
    kits_per_fold = [{data.groups[i] for i in fold} for fold in folds]
    assert all(not (a & b) for i, a in enumerate(kits_per_fold) for b in kits_per_fold[i + 1:])
    assert max(map(len, folds)) < 2 * min(map(len, folds))
    with pytest.raises(SystemExit, match="14 groups cannot fill 20 folds"):
        grouped_folds(data.groups, 20)


def drum_audiofolder(root: Path, per_class: int = 6) -> Path:
    """kick/ and hi-hat/ clips copied from the drum kits, in kit-named files, with one corrupt clip."""
    data = load_drumkits()
    for label in ("kick", "hi-hat"):
        (root / label).mkdir(parents=True)
        paths = [p for p, l in zip(data.sources, data.labels) if data.classes[l] == label][:per_class]
        for index, path in enumerate(paths):
            shutil.copy(path, root / label / f"{index}{path.suffix}")
    (root / "kick" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return root


def test_an_unreadable_clip_is_skipped_and_counted(tmp_path):
    data = load_audiofolder(drum_audiofolder(tmp_path / "drums"))
    assert data.classes == ["hi-hat", "kick"] and len(data) == 13
    features, kept, skipped = featurize(data, PIPMNFeatureExtractor(), show_progress=False)
    assert skipped == 1 and len(kept) == 12 and features.shape == (12, 399, 100)


def test_features_are_cached_by_clip_list_and_extractor(tmp_path):
    data = load_audiofolder(drum_audiofolder(tmp_path / "drums", per_class=2))
    first = featurize(data, PIPMNFeatureExtractor(), cache=tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").glob("features-*.safetensors"))) == 1
    again = featurize(data, PIPMNFeatureExtractor(), cache=tmp_path / "cache", show_progress=False)
    assert (first[0] == again[0]).all() and first[1:] == again[1:]
    featurize(data, PIPMNFeatureExtractor(feature_type="mfcc"), cache=tmp_path / "cache", show_progress=False)
    assert len(list((tmp_path / "cache").glob("features-*.safetensors"))) == 2


def test_a_process_that_does_not_write_the_cache_still_reads_it(tmp_path):
    """Under several processes every rank must train on the same features: the ones that may not
    write the cache read it where it exists (it may differ from freshly computed features when a
    clip changed under its name), and write nothing where it does not."""
    data = load_audiofolder(drum_audiofolder(tmp_path / "drums", per_class=2))
    fresh = featurize(data, PIPMNFeatureExtractor(), cache=tmp_path / "other", show_progress=False, write_cache=False)
    assert not (tmp_path / "other").exists()
    featurize(data, PIPMNFeatureExtractor(), cache=tmp_path / "cache", show_progress=False)
    (cache_file,) = (tmp_path / "cache").glob("features-*.safetensors")
    stored = load_file(cache_file)
    save_file({**stored, "features": stored["features"] + 1}, cache_file)  # as if a clip had changed since
    reader = featurize(data, PIPMNFeatureExtractor(), cache=tmp_path / "cache", show_progress=False, write_cache=False)
    assert torch.equal(reader[0], fresh[0] + 1)


def test_the_recipe_cross_validates_checkpoints_and_resumes(tmp_path):
    folder = drum_audiofolder(tmp_path / "drums")
    common = ["--dataset_name", str(folder), "--folds", "2", "--num_train_epochs", "2",
              "--per_device_train_batch_size", "4", "--encoder_channels", "32", "64", "--no_progress_bar"]
    full = audio_classification.main(common + ["--output_dir", str(tmp_path / "full")])
    assert len(full["fold_accuracy"]) == 2 and full["skipped_unreadable"] == 1
    assert 0 <= full["accuracy_mean"] <= 1 and full["accuracy_std"] >= 0
    saved = json.loads((tmp_path / "full" / "results.json").read_text())
    assert saved["fold_accuracy"] == full["fold_accuracy"]

    stopped = audio_classification.main(common + ["--output_dir", str(tmp_path / "cut"), "--stop_after_steps", "2"])
    assert stopped == {"stopped_at_step": 2}
    resumed = audio_classification.main(common + ["--output_dir", str(tmp_path / "cut"),
                                                  "--resume_from_checkpoint", "latest"])
    assert resumed["fold_accuracy"] == pytest.approx(full["fold_accuracy"])


def test_a_dataset_folder_without_classes_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no class sub-folders"):
        load_audiofolder(tmp_path / "empty")
    with pytest.raises(SystemExit, match="apt-get install hydrogen-drumkits"):
        load_drumkits(tmp_path / "empty")


def test_esc50_by_name_through_the_hub_keeps_its_official_folds(hub, tmp_path):
    """The online path: `--dataset_name esc50` loads ashraq/esc50 (here from the local Hub server, where a
    small ESC-50-shaped set of real drum clips is pushed first) and uses its `fold` column as folds."""
    import datasets

    data = load_drumkits()
    rows = {"audio": [], "category": [], "fold": []}
    for label in ("kick", "hi-hat"):
        paths = [p for p, l in zip(data.sources, data.labels) if data.classes[l] == label and p.exists()][:5]
        for fold, path in enumerate(paths, start=1):
            rows["audio"].append({"bytes": path.read_bytes(), "path": path.name})
            rows["category"].append(label)
            rows["fold"].append(fold)
    # the audio column as stored files (bytes + path): what an Audio column holds, without its encoder
    audio = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    features = datasets.Features({"audio": audio, "category": datasets.Value("string"),
                                  "fold": datasets.Value("int64")})
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).push_to_hub("ashraq/esc50")
    report = audio_classification.main(["--dataset_name", "esc50", "--folds", "5", "--num_train_epochs", "1",
                                        "--per_device_train_batch_size", "4",
                                        "--encoder_channels", "16", "32", "--output_dir", str(tmp_path / "esc50"),
                                        "--no_progress_bar"])
    assert report["classes"] == ["hi-hat", "kick"] and len(report["fold_accuracy"]) == 5
    for fold in range(5):
        saved = json.loads((tmp_path / "esc50" / f"fold-{fold}" / "results.json").read_text())
        assert saved["test_groups"] == [str(fold + 1)] and saved["test_clips"] == 2
