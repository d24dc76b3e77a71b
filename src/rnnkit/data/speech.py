r"""Speech input: WAV files read, mixed to mono and resampled, and the log-mel features a
recogniser reads.

No audio library is needed: ``wave`` (the standard library) reads PCM WAV, SciPy's polyphase
filter resamples, and the features are ``torch.stft`` and a mel filterbank written here
(torchaudio has no wheel for every torch this package supports). The filterbank is HTK's:
``mel(f) = 2595 log10(1 + f / 700)``, ``n_mels`` triangles whose corners are equally spaced
in mels from ``f_min`` to ``f_max``, each rising from 0 at its left corner to 1 at its centre
and back to 0 at its right, unnormalised (torchaudio's ``melscale_fbanks`` with
``mel_scale="htk"``, ``norm=None``). A frame of ``window_ms`` milliseconds every ``hop_ms``,
Hann-windowed and zero-padded to a power of two, gives a power spectrum; the features are the
log of its mel energies, ``log(fbank · |STFT|^2 + 1e-6)``: (frames, n_mels). ``spec_augment``
masks bands and spans of them for training.
"""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

LOG_FLOOR = 1e-6  # added to the mel energies before the log: silence stays finite


def read_wav(path) -> tuple[np.ndarray, int]:
    """(samples, sample rate) of a PCM WAV file: float32 in [-1, 1), channels averaged to
    mono. 8-, 16-, 24- and 32-bit integer samples; anything else is refused, naming the file.
    ``path`` may be a binary file object (standard input, bytes in memory)."""
    source = path if hasattr(path, "read") else str(path)
    if hasattr(path, "read"):
        path = getattr(path, "name", "<stream>")
    try:
        with wave.open(source, "rb") as reader:
            channels, width = reader.getnchannels(), reader.getsampwidth()
            rate, count = reader.getframerate(), reader.getnframes()
            raw = reader.readframes(count)
    except (wave.Error, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable PCM WAV file ({error})") from error
    if count == 0 or len(raw) < channels * width:
        raise ValueError(f"{path}: the WAV file holds no samples")
    if rate <= 0:
        raise ValueError(f"{path}: the WAV header gives a sample rate of {rate} Hz")
    if width == 1:  # unsigned
        samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.float32) / 2**15
    elif width == 3:
        bytes_ = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = bytes_[:, 0] | (bytes_[:, 1] << 8) | (bytes_[:, 2] << 16)
        samples = (np.where(ints >= 2**23, ints - 2**24, ints)).astype(np.float32) / 2**23
    elif width == 4:
        samples = (np.frombuffer(raw, "<i4").astype(np.float64) / 2**31).astype(np.float32)
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported (8, 16, 24, 32)")
    usable = len(samples) - len(samples) % channels
    return samples[:usable].reshape(-1, channels).mean(1), rate


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` at ``rate`` Hz brought to ``target`` Hz (SciPy's polyphase filter)."""
    if rate <= 0 or target <= 0:
        raise ValueError(f"sample rates must be > 0, got rate={rate}, target={target}")
    if rate == target:
        return samples
    from scipy.signal import resample_poly

    ratio = Fraction(target, rate).limit_denominator(1000)
    out = resample_poly(samples, ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int, n_fft: int, rate: int, f_min: float = 0.0, f_max: float | None = None
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters over the FFT bins (see the module)."""
    f_max = rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= rate / 2:
        raise ValueError(
            f"need 0 <= f_min < f_max <= rate / 2, got f_min={f_min}, f_max={f_max}, rate={rate}"
        )
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    corners = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    left, centre, right = corners[:-2, None], corners[1:-1, None], corners[2:, None]
    rising = (bins - left) / (centre - left)
    falling = (right - bins) / (right - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def frame_sizes(rate: int, window_ms: float, hop_ms: float) -> tuple[int, int, int]:
    """(window, hop, n_fft) in samples: n_fft the power of two that holds the window."""
    window, hop = round(rate * window_ms / 1000), round(rate * hop_ms / 1000)
    if window < 2 or hop < 1:
        raise ValueError(f"window_ms={window_ms}, hop_ms={hop_ms} are too short at {rate} Hz")
    return window, hop, 2 ** math.ceil(math.log2(window))


def log_mel(
    samples,
    rate: int,
    n_mels: int = 40,
    window_ms: float = 25.0,
    hop_ms: float = 10.0,
    f_min: float = 0.0,
    f_max: float | None = None,
) -> torch.Tensor:
    """(frames, n_mels) float32 log-mel energies of mono ``samples`` at ``rate`` Hz."""
    x = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-d (mono), got shape {tuple(x.shape)}")
    window, hop, n_fft = frame_sizes(rate, window_ms, hop_ms)
    if len(x) < n_fft:
        raise ValueError(
            f"{len(x)} samples are shorter than one analysis frame ({n_fft} at {rate} Hz)"
        )
    spectrum = torch.stft(
        x, n_fft, hop_length=hop, win_length=window, window=torch.hann_window(window),
        center=False, return_complex=True,
    ).abs().pow(2)  # fmt: skip
    bank = torch.from_numpy(mel_filterbank(n_mels, n_fft, rate, f_min, f_max)).float()
    return torch.log(bank @ spectrum + LOG_FLOOR).T.contiguous()


def normalise(features: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """Features with each mel band brought to mean 0 and standard deviation 1: over this
    utterance's frames, or with a corpus's ``mean`` and ``std`` (global normalisation)."""
    if mean is None:
        mean, std = features.mean(0), features.std(0, unbiased=False)
    return (features - mean) / torch.clamp(torch.as_tensor(std), min=1e-5)


def spec_augment(
    features: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment's masking (Park et al. 2019) of (frames, bands) features, for training: up
    to ``freq_masks`` bands of 0..``freq_width`` mel bands and up to ``time_masks`` spans of
    0..``time_width`` frames (at most a fifth of the utterance each) set to the utterance's
    mean, each width and start drawn uniformly. Returns a new tensor."""
    frames, bands = features.shape
    out = features.clone()
    fill = features.mean()

    def draw(high: int) -> int:
        return int(torch.randint(0, high + 1, (), generator=generator))

    for _ in range(freq_masks):
        width = draw(min(freq_width, bands))
        start = draw(bands - width)
        out[:, start : start + width] = fill
    for _ in range(time_masks):
        width = draw(min(time_width, frames // 5))
        start = draw(frames - width)
        out[start : start + width] = fill
    return out


def load_features(path: str | Path, rate: int = 16000, **settings) -> torch.Tensor:
    """A WAV file's log-mel features at ``rate`` Hz (resampled when it is recorded at another)."""
    samples, recorded = read_wav(path)
    return log_mel(resample(samples, recorded, rate), rate, **settings)
