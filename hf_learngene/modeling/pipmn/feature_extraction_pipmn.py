"""The feature extractor of PIPMN: raw audio → ``input_features`` of shape (batch, frames, features)."""

from __future__ import annotations

import warnings
from functools import lru_cache
from math import gcd
from typing import Any, Sequence, Union

import numpy as np
import torch
from transformers import BatchFeature, SequenceFeatureExtractor

from .cepstra import FILTER_BANKS, cepstra, filter_bank, frame_sizes, power_spectrogram

FEATURE_TYPES = ("log_mel", "mfcc", "five_cepstra")
AudioInput = Union[np.ndarray, torch.Tensor, Sequence[float], Sequence[np.ndarray]]


class AudioInputWarning(UserWarning):
    """Audio that was fixed up on the way in (resampled, downmixed, silent, shorter than a window)."""


@lru_cache(maxsize=16)
def _bank(kind: str, num_filters: int, n_fft: int, sampling_rate: int) -> torch.Tensor:
    return filter_bank(kind, num_filters, n_fft, sampling_rate)


class PIPMNFeatureExtractor(SequenceFeatureExtractor):
    """Turns clips into PIPMN's frame features.

    Every clip is made mono (channels averaged), resampled to ``sampling_rate`` when it comes at
    another rate, cut to its first ``clip_seconds`` or zero-padded on both sides to that length
    (the paper centres short clips), then framed (25 ms Hamming windows every 10 ms).

    Args:
        feature_type: ``"log_mel"`` (default; ``feature_size`` log mel energies, fast),
            ``"mfcc"`` (``feature_size`` MFCCs of a 128-filter mel bank) or ``"five_cepstra"``
            (the paper's input: gammatone, Bark, mel, linear and gammachirp cepstra,
            ``feature_size // 5`` coefficients each — 20 each for the default 100).
        feature_size: features per frame (PIPMN's ``num_features``).
        sampling_rate: the rate features are computed at (22,050 Hz in the paper).
        clip_seconds: every clip is cropped or padded to this length (4 s: 399 frames).
    """

    model_input_names = ["input_features"]

    def __init__(self, feature_type: str = "log_mel", feature_size: int = 100, sampling_rate: int = 22050,
                 clip_seconds: float = 4.0, window_ms: float = 25.0, hop_ms: float = 10.0,
                 padding_value: float = 0.0, **kwargs: Any):
        if feature_type not in FEATURE_TYPES:
            raise ValueError(f"unknown feature_type '{feature_type}'; choose one of {', '.join(FEATURE_TYPES)}")
        if feature_type == "five_cepstra" and feature_size % len(FILTER_BANKS):
            raise ValueError(f"five_cepstra needs a feature_size divisible by 5 (20 cepstra per bank → 100), "
                             f"got {feature_size}")
        super().__init__(feature_size=feature_size, sampling_rate=sampling_rate, padding_value=padding_value,
                         **kwargs)
        self.feature_type = feature_type
        self.clip_seconds = clip_seconds
        self.window_ms = window_ms
        self.hop_ms = hop_ms

    @property
    def num_frames(self) -> int:
        window, hop, _ = frame_sizes(self.sampling_rate, self.window_ms, self.hop_ms)
        return 1 + (self.clip_samples - window) // hop

    @property
    def clip_samples(self) -> int:
        return round(self.clip_seconds * self.sampling_rate)

    def __call__(self, raw_audio: AudioInput, sampling_rate: int | None = None,
                 return_tensors: str | None = None, **kwargs: Any) -> BatchFeature:
        """Features of one clip (a 1-D array, or a 2-D channels array inside a list) or of a batch
        (a list of clips, or a 2-D array of equal-length mono clips)."""
        if sampling_rate is None:
            warnings.warn(f"no sampling_rate given: the audio is taken to be at {self.sampling_rate} Hz; pass "
                          "sampling_rate= so it is resampled when it differs", AudioInputWarning, stacklevel=2)
            sampling_rate = self.sampling_rate
        clips = _as_clips(raw_audio)
        counts = {"resampled": 0, "downmixed": 0, "silent": 0, "shorter than one window": 0}
        window, hop, n_fft = frame_sizes(self.sampling_rate, self.window_ms, self.hop_ms)
        features = []
        for clip in clips:
            if clip.ndim == 2:
                clip = clip.mean(axis=int(np.argmin(clip.shape)))  # the short axis holds the channels
                counts["downmixed"] += 1
            if clip.size == 0:
                raise ValueError("an audio clip is empty (0 samples); drop it before feature extraction")
            if not np.isfinite(clip).all():
                raise ValueError("an audio clip holds NaN or infinite samples; the file is corrupt")
            if sampling_rate != self.sampling_rate:
                clip = resample(clip, sampling_rate, self.sampling_rate)
                counts["resampled"] += 1
            if not np.any(clip):
                counts["silent"] += 1
            if clip.size < window:
                counts["shorter than one window"] += 1
            features.append(self._features(self._fit_length(clip), window, hop, n_fft))
        fixed = {what: n for what, n in counts.items() if n}
        if fixed:
            warnings.warn(f"of {len(clips)} clip(s): " + ", ".join(f"{n} {what}" for what, n in fixed.items())
                          + (f" (from {sampling_rate} Hz to {self.sampling_rate} Hz)" if counts["resampled"] else "")
                          + "; silent clips give constant features, short ones are zero-padded",
                          AudioInputWarning, stacklevel=2)
        return BatchFeature({"input_features": np.stack(features).astype(np.float32)}, tensor_type=return_tensors)

    def _fit_length(self, clip: np.ndarray) -> np.ndarray:
        """The first ``clip_seconds`` of a long clip; a short one centred in zeros."""
        target = self.clip_samples
        if clip.size >= target:
            return clip[:target]
        before = (target - clip.size) // 2
        return np.pad(clip, (before, target - clip.size - before), constant_values=self.padding_value)

    def _features(self, clip: np.ndarray, window: int, hop: int, n_fft: int) -> np.ndarray:
        power = power_spectrogram(torch.from_numpy(np.ascontiguousarray(clip)), window, hop, n_fft)
        if self.feature_type == "log_mel":
            bank = _bank("mel", self.feature_size, n_fft, self.sampling_rate)
            out = torch.log(torch.clamp(power @ bank, min=1e-10))
        elif self.feature_type == "mfcc":
            out = cepstra(power, _bank("mel", 128, n_fft, self.sampling_rate), self.feature_size)
        else:
            per_bank = self.feature_size // len(FILTER_BANKS)
            out = torch.cat([cepstra(power, _bank(kind, 64, n_fft, self.sampling_rate), per_bank)
                             for kind in FILTER_BANKS], dim=-1)
        return out.float().numpy()


def _as_clips(raw_audio: AudioInput) -> list[np.ndarray]:
    if isinstance(raw_audio, torch.Tensor):
        raw_audio = raw_audio.detach().cpu().numpy()
    if isinstance(raw_audio, np.ndarray):
        if raw_audio.ndim == 1:
            return [raw_audio.astype(np.float64)]
        if raw_audio.ndim == 2:
            return [row.astype(np.float64) for row in raw_audio]  # a batch of mono clips, as transformers' extractors read it
        raise ValueError(f"audio arrays must be 1-D (one clip) or 2-D (a batch), got shape {raw_audio.shape}; "
                         "pass a multichannel clip inside a list: [clip]")
    if isinstance(raw_audio, (list, tuple)):
        if len(raw_audio) == 0:
            raise ValueError("no audio given (an empty list)")
        if np.ndim(raw_audio[0]) == 0:
            return [np.asarray(raw_audio, dtype=np.float64)]
        clips = [np.asarray(c.detach().cpu().numpy() if isinstance(c, torch.Tensor) else c, dtype=np.float64)
                 for c in raw_audio]
        for clip in clips:
            if clip.ndim not in (1, 2):
                raise ValueError(f"each clip must be 1-D (mono) or 2-D (channels), got shape {clip.shape}")
        return clips
    raise TypeError(f"audio must be a numpy array, a torch tensor or a list of them, got {type(raw_audio).__name__}")


def resample(clip: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy's ``resample_poly``)."""
    from scipy.signal import resample_poly

    factor = gcd(int(from_rate), int(to_rate))
    return resample_poly(clip, int(to_rate) // factor, int(from_rate) // factor)
