"""PIPMN in transformers' audio stack: the architecture as the paper counts it, its features, the
Auto classes and pipeline, the Hub, bad audio input, and resizing through a learngene."""


import numpy as np
import pytest
import torch
import transformers
from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification, pipeline

import hf_learngene
from hf_learngene import AudioInputWarning, Learngene, PIPMNConfig, PIPMNFeatureExtractor, PIPMNForAudioClassification

SR = 22050


def tone(frequency: float, seconds: float = 1.0, rate: int = SR, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return 0.5 * np.sin(2 * np.pi * frequency * t) + noise


def test_parameter_count_at_ten_classes_and_every_parameter_is_used():
    model = PIPMNForAudioClassification(PIPMNConfig(num_labels=10))
    count = sum(p.numel() for p in model.parameters())
    print(f"PIPMN parameters at 10 classes: {count:,}")
    assert count == 739_650  # the paper's count; the authors' unused 720,000-parameter projection is not here
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # away from the 1e-6 layer scales, so every path carries gradient
            p.add_(torch.randn_like(p) * 0.05)
    model(torch.randn(3, 399, 100), labels=torch.tensor([0, 4, 9])).loss.backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert unused == []


def test_logits_are_not_probabilities_and_the_loss_is_plain_cross_entropy():
    torch.manual_seed(0)
    model = PIPMNForAudioClassification(PIPMNConfig(num_labels=5, dropout=0.0))
    with torch.no_grad():
        model.classifier.weight.normal_(0, 1.0)
    features, labels = torch.randn(4, 399, 100), torch.tensor([0, 1, 2, 3])
    out = model(features, labels=labels)
    assert not torch.allclose(out.logits.softmax(-1).sum(-1), out.logits.sum(-1))
    expected = torch.nn.functional.cross_entropy(out.logits, labels, label_smoothing=0.1)
    assert torch.allclose(out.loss, expected)
    assert isinstance(out, transformers.modeling_outputs.SequenceClassifierOutput)


@pytest.mark.parametrize("feature_type", ["log_mel", "mfcc", "five_cepstra"])
def test_features_have_399_frames_of_100(feature_type):
    extractor = PIPMNFeatureExtractor(feature_type=feature_type)
    features = extractor([tone(440), tone(3000, seconds=5.0)], sampling_rate=SR, return_tensors="pt")["input_features"]
    assert features.shape == (2, 399, 100) and torch.isfinite(features).all()
    assert not torch.allclose(features[0], features[1])
    if feature_type == "five_cepstra":  # five banks of 20 cepstra, each its own
        banks = features[0].reshape(399, 5, 20)
        assert all(not torch.allclose(banks[:, i], banks[:, j]) for i in range(5) for j in range(i + 1, 5))


def test_another_sampling_rate_is_resampled_and_stereo_is_downmixed():
    extractor = PIPMNFeatureExtractor()
    native = extractor(tone(1000), sampling_rate=SR)["input_features"]
    with pytest.warns(AudioInputWarning, match="1 resampled.*from 44100 Hz to 22050 Hz"):
        resampled = extractor(tone(1000, rate=44100), sampling_rate=44100)["input_features"]
    # the tone sits in the same mel bin at the same energy (the noise floor differs: other random samples)
    assert (resampled.argmax(-1) == native.argmax(-1)).all()
    assert np.abs(resampled.max(-1) - native.max(-1)).max() < 0.1
    stereo = np.stack([tone(1000), tone(1000)])
    with pytest.warns(AudioInputWarning, match="1 downmixed"):
        downmixed = extractor([stereo], sampling_rate=SR)["input_features"]
    assert np.allclose(downmixed, native, atol=1e-4)
    with pytest.warns(AudioInputWarning, match="1 downmixed"):  # (samples, channels), as soundfile reads it
        assert np.allclose(extractor([stereo.T], sampling_rate=SR)["input_features"], native, atol=1e-4)


def test_silent_and_too_short_clips_are_counted_and_bad_clips_are_refused():
    extractor = PIPMNFeatureExtractor()
    with pytest.warns(AudioInputWarning, match="of 3 clip\\(s\\): 2 silent, 1 shorter than one window"):
        out = extractor([np.zeros(SR), tone(500), np.zeros(100)], sampling_rate=SR)["input_features"]
    assert np.isfinite(out).all() and out.shape == (3, 399, 100)
    with pytest.raises(ValueError, match="empty"):
        extractor([np.zeros(0)], sampling_rate=SR)
    with pytest.raises(ValueError, match="NaN or infinite"):
        extractor(np.full(SR, np.nan), sampling_rate=SR)
    with pytest.raises(ValueError, match="1-D \\(one clip\\) or 2-D \\(a batch\\)"):
        extractor(np.zeros((2, 2, SR)), sampling_rate=SR)
    with pytest.raises(ValueError, match="unknown feature_type 'cqt'"):
        PIPMNFeatureExtractor(feature_type="cqt")
    with pytest.warns(AudioInputWarning, match="no sampling_rate given"):
        extractor(tone(500))
    with pytest.raises(ValueError, match="input_features must be \\(batch, frames, 100\\)"):
        PIPMNForAudioClassification(PIPMNConfig(num_labels=2))(torch.randn(2, 399, 64))


def trained_tone_classifier(steps: int = 60) -> tuple[PIPMNForAudioClassification, PIPMNFeatureExtractor]:
    """A tiny PIPMN that tells a low tone from a high one."""
    extractor = PIPMNFeatureExtractor()
    clips = [tone(f, seed=s) for s in range(6) for f in (150 + 20 * s, 3000 + 200 * s)]
    labels = torch.tensor([0, 1] * 6)
    features = extractor(clips, sampling_rate=SR, return_tensors="pt")["input_features"]
    torch.manual_seed(0)
    config = PIPMNConfig(encoder_channels=[32, 64], num_labels=2, id2label={0: "low", 1: "high"},
                         label2id={"low": 0, "high": 1}, layer_scale_init=0.1)
    model = PIPMNForAudioClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        model(features, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval(), extractor


def test_a_trained_tiny_pipmn_classifies_through_the_pipeline(tmp_path):
    model, extractor = trained_tone_classifier()
    model.save_pretrained(tmp_path)
    extractor.save_pretrained(tmp_path)
    assert type(AutoConfig.from_pretrained(tmp_path)) is PIPMNConfig
    assert type(AutoFeatureExtractor.from_pretrained(tmp_path)) is PIPMNFeatureExtractor
    assert type(AutoModelForAudioClassification.from_pretrained(tmp_path)) is PIPMNForAudioClassification
    classify = pipeline("audio-classification", model=str(tmp_path))
    assert classify(tone(180, seed=9).astype(np.float32))[0]["label"] == "low"
    assert classify({"raw": tone(3500, seed=9).astype(np.float32), "sampling_rate": SR})[0]["label"] == "high"


def test_save_push_and_load_like_any_transformers_audio_model(hub, tmp_path):
    model, extractor = trained_tone_classifier(steps=5)
    model.push_to_hub("tester/tiny-pipmn")
    extractor.push_to_hub("tester/tiny-pipmn")
    loaded = AutoModelForAudioClassification.from_pretrained("tester/tiny-pipmn", cache_dir=tmp_path)
    features = extractor(tone(300), sampling_rate=SR, return_tensors="pt")["input_features"]
    with torch.no_grad():
        assert torch.equal(loaded(features).logits, model(features).logits)
    assert AutoFeatureExtractor.from_pretrained("tester/tiny-pipmn", cache_dir=tmp_path).to_dict() == extractor.to_dict()


@pytest.mark.parametrize("method", ["front", "bot"])
def test_a_learngene_builds_narrower_and_wider_pipmns(method, tmp_path):
    model, _ = trained_tone_classifier(steps=5)
    learngene = Learngene.extract(model, method=method, show_progress=False)
    same = hf_learngene.AutoModelForAudioClassification.from_learngene(learngene, num_labels=2, show_progress=False)
    state, rebuilt = model.state_dict(), same.state_dict()
    assert max((state[k] - rebuilt[k]).abs().max().item() for k in state if not k.startswith("classifier")) <= 1e-5
    for channels in ([16, 32], [64, 128], [48, 40]):
        built = hf_learngene.AutoModelForAudioClassification.from_learngene(
            learngene, {"channels": channels}, num_labels=3, show_progress=False)
        assert built.config.encoder_channels == channels and built.config.num_labels == 3
        assert built(torch.randn(2, 399, 100)).logits.shape == (2, 3)
        built.save_pretrained(tmp_path / f"{method}-{channels}")
        AutoModelForAudioClassification.from_pretrained(tmp_path / f"{method}-{channels}")
    with pytest.raises(hf_learngene.LearngeneConfigError, match="cannot change num_features"):
        learngene.build({"num_features": 64}, auto_class=hf_learngene.AutoModelForAudioClassification)
    with pytest.raises(hf_learngene.LearngeneConfigError, match="encoder_channels must keep the source's 2 levels"):
        learngene.build({"channels": [8, 16, 32]}, auto_class=hf_learngene.AutoModelForAudioClassification)
