"""Speech input: WAV reading, resampling and log-mel features against references written here
from their definitions (torchaudio, the usual reference, has no wheel for torch 2.13)."""

import math
import wave

import numpy as np
import pytest
import torch

from rnnkit.data import speech


def write_wav(path, samples: np.ndarray, rate: int, width: int = 2, channels: int = 1):
    scale = {1: 127, 2: 2**15 - 1, 4: 2**31 - 1}[width]
    ints = np.round(np.clip(samples, -1, 1) * scale)
    data = (ints + 128).astype(np.uint8) if width == 1 else ints.astype(f"<i{width}")
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(data.tobytes())


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_a_wav_reads_back_as_the_samples_written(tmp_path, width):
    samples = tone(440, 0.05, 8000)
    write_wav(tmp_path / "a.wav", samples, 8000, width)
    read, rate = speech.read_wav(tmp_path / "a.wav")
    assert rate == 8000 and read.dtype == np.float32 and read.shape == samples.shape
    assert np.abs(read - samples).max() < 2 / {1: 127, 2: 2**15, 4: 2**31}[width]


def test_stereo_is_mixed_to_mono(tmp_path):
    left, right = tone(440, 0.02, 8000), tone(660, 0.02, 8000)
    write_wav(tmp_path / "s.wav", np.stack([left, right], 1).ravel(), 8000, channels=2)
    read, _ = speech.read_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(read, (left + right) / 2, atol=1e-4)


def test_unreadable_and_empty_wavs_are_named(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match=r"junk\.wav: not a readable PCM WAV file"):
        speech.read_wav(tmp_path / "junk.wav")
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 8000)
    with pytest.raises(ValueError, match=r"empty\.wav: the WAV file holds no samples"):
        speech.read_wav(tmp_path / "empty.wav")


def test_resampling_keeps_a_tone_at_its_frequency():
    out = speech.resample(tone(440, 1.0, 44100), 44100, 16000)
    assert len(out) == 16000
    peak = np.abs(np.fft.rfft(out)).argmax()  # 1 Hz bins over one second
    assert peak == 440


def reference_filterbank(n_mels, n_fft, rate, f_min, f_max):
    """The HTK triangles, one bin and one filter at a time."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    step = (mel(f_max) - mel(f_min)) / (n_mels + 1)
    corners = [hz(mel(f_min) + i * step) for i in range(n_mels + 2)]
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        left, centre, right = corners[m], corners[m + 1], corners[m + 2]
        for k in range(n_fft // 2 + 1):
            f = k * rate / n_fft
            if left <= f <= centre:
                bank[m, k] = (f - left) / (centre - left)
            elif centre < f <= right:
                bank[m, k] = (right - f) / (right - centre)
    return bank


def test_the_mel_filterbank_is_htks_triangles():
    for n_mels, n_fft, rate, f_min, f_max in [(40, 512, 16000, 0, 8000), (23, 256, 8000, 60, 3800)]:
        np.testing.assert_allclose(
            speech.mel_filterbank(n_mels, n_fft, rate, f_min, f_max),
            reference_filterbank(n_mels, n_fft, rate, f_min, f_max),
            atol=1e-12,
        )


def test_log_mel_equals_framing_windowing_and_the_fft_done_by_hand():
    rate, samples = 16000, np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    window, hop, n_fft = speech.frame_sizes(rate, 25, 10)
    assert (window, hop, n_fft) == (400, 160, 512)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)  # periodic, as torch's
    padded = np.zeros(n_fft)
    padded[(n_fft - window) // 2 : (n_fft - window) // 2 + window] = hann
    frames = 1 + (len(samples) - n_fft) // hop
    power = np.stack(
        [
            np.abs(np.fft.rfft(samples[i * hop : i * hop + n_fft] * padded)) ** 2
            for i in range(frames)
        ]
    )
    expected = np.log(power @ reference_filterbank(40, n_fft, rate, 0, 8000).T + 1e-6)
    got = speech.log_mel(samples, rate)
    assert got.shape == (frames, 40) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_features_are_normalised_per_utterance_or_by_given_statistics():
    features = torch.randn(50, 8) * 3 + 2
    normal = speech.normalise(features)
    torch.testing.assert_close(normal.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(normal.std(0, unbiased=False), torch.ones(8), atol=1e-5, rtol=0)
    given = speech.normalise(features, mean=torch.full((8,), 2.0), std=torch.full((8,), 3.0))
    torch.testing.assert_close(given, (features - 2) / 3)


def test_a_wav_at_another_rate_gives_the_features_of_the_target_rate(tmp_path):
    write_wav(tmp_path / "t.wav", tone(440, 0.5, 22050), 22050)
    features = speech.load_features(tmp_path / "t.wav", rate=16000, n_mels=20)
    assert features.shape == (1 + (8000 - 512) // 160, 20)
    with pytest.raises(ValueError, match="shorter than one analysis frame"):
        speech.log_mel(np.zeros(100, np.float32), 16000)


def test_spec_augment_masks_whole_bands_and_spans_with_the_mean():
    features = torch.arange(100 * 10, dtype=torch.float32).reshape(100, 10)
    g = torch.Generator().manual_seed(3)
    out = speech.spec_augment(features, freq_masks=1, freq_width=3, time_masks=1, time_width=15,
                              generator=g)  # fmt: skip
    assert out.shape == features.shape and torch.equal(features[0, :3], torch.tensor([0.0, 1, 2]))
    changed = out != features
    masked_bands = changed.all(0).nonzero().ravel().tolist()
    masked_frames = changed.all(1).nonzero().ravel().tolist()
    assert len(masked_bands) <= 3 and len(masked_frames) <= 15
    assert masked_bands == list(range(masked_bands[0], masked_bands[0] + len(masked_bands)))
    assert (out[changed] == features.mean()).all()
    # Every changed value lies in a masked band or a masked frame.
    assert changed.sum() == (
        len(masked_bands) * 100 + len(masked_frames) * 10 - len(masked_bands) * len(masked_frames)
    )
    assert torch.equal(speech.spec_augment(features, 0, 8, 0, 20), features)
