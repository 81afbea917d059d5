"""Quality guard: a fast configuration that degrades the audio must never be recommended.

Every configuration synthesizes the same texts with deterministic settings (no noise), so
its audio can be compared with the reference configuration's (`basic` on a GPU, else
`cpu`): first the canary's checks (finite, audible, plausible length), then the duration
ratio and a log-mel spectral distance.

The distance is the mean absolute difference of log-mel spectra in dB along a dynamic time
warping path, after both signals are scaled to the same RMS and floored 60 dB below the
reference's peak. Warping forgives the frame-level timing shifts that FP16 rounding of the
duration predictor can cause; RMS scaling forgives a gain change; the floor keeps the
difference between two kinds of near-silence from counting. Measured on the embedded voice
(medium text): a second deterministic run 0.0 dB, the model's own sampling noise
(noise_scale 0.667) 1.2 dB, a 100-sample shift 0.9 dB, white noise 50 dB below full scale
1.9 dB, 40 dB below 6.9 dB, a different sentence 7.3 dB.

An engine without deterministic options (CosyVoice samples its speech tokens: two runs of
the same tier and text give different audio) leaves the comparison nothing to hold a tier
to; its configurations get the canary's checks on their own audio (finite, audible, of
plausible length), and the verdict says the comparison was left out and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import soundfile

from ttspilot.bench.measure import Measurement
from ttspilot.canary import judge_audio

MEL_DISTANCE_MAX_DB = 4.0
DURATION_RATIO_RANGE: tuple[float, float] = (0.9, 1.1)
REFERENCE_ORDER: tuple[str, ...] = ("basic", "cpu")  # tiers whose output is the yardstick, preferred first
SAMPLED = "sampled synthesis (the engine has no deterministic options), so not compared with {reference}"
FLOOR_BELOW_PEAK_DB = 60.0
N_FFT, HOP, N_MELS = 1024, 256, 80


@dataclass(frozen=True)
class QualityCheck:
    passed: bool
    reason: str
    mel_distance_db: float | None = None
    duration_ratio: float | None = None


def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1)."""
    def to_mel(hz: np.ndarray | float) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    edges = 700.0 * (10 ** (np.linspace(0.0, to_mel(sample_rate / 2), n_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0.0, np.minimum((bins - low) / (centre - low), (high - bins) / (high - centre)))


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Log-mel power spectrogram in dB, shape (frames, N_MELS)."""
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    frames = 1 + (len(audio) - N_FFT) // HOP
    windows = audio[np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2
    return 10.0 * np.log10(np.maximum(power @ mel_filterbank(sample_rate).T, 1e-12))


def dtw_mean_distance(reference: np.ndarray, candidate: np.ndarray, band: float = 0.1) -> float:
    """Mean absolute frame distance along the cheapest warping path; inf when none fits.

    Steps (1,1), (1,2) and (2,1) bound the local slope to [1/2, 2] and depend only on earlier
    rows, so each row is one vectorised update and memory stays two rows. The path stays within
    `band` (a fraction of the length, plus 20 frames) of the diagonal: durations are checked to
    agree within 10% first, and the band keeps an 80-second text to about a second.
    """
    rows, columns = len(reference), len(candidate)
    half_width = int(band * columns) + 20
    before_last = np.full(columns, np.inf)
    last = np.full(columns, np.inf)
    before_last_steps = np.zeros(columns)
    last_steps = np.zeros(columns)
    for row in range(rows):
        centre = row * columns // rows
        low, high = max(0, centre - half_width), min(columns, centre + half_width + 1)
        cost = np.full(columns, np.inf)
        cost[low:high] = np.mean(np.abs(candidate[low:high] - reference[row]), axis=1)
        if row == 0:
            total, steps = np.full(columns, np.inf), np.zeros(columns)
            total[0], steps[0] = cost[0], 1
        else:
            options = np.full((3, columns), np.inf)
            option_steps = np.zeros((3, columns))
            options[0, 1:], option_steps[0, 1:] = last[:-1], last_steps[:-1]  # from (row-1, col-1)
            options[1, 2:], option_steps[1, 2:] = last[:-2], last_steps[:-2]  # from (row-1, col-2)
            options[2, 1:], option_steps[2, 1:] = before_last[:-1], before_last_steps[:-1]  # from (row-2, col-1)
            best = np.argmin(options, axis=0)
            pick = np.arange(columns)
            total, steps = options[best, pick] + cost, option_steps[best, pick] + 1
        before_last, last = last, total
        before_last_steps, last_steps = last_steps, steps
    return float(last[-1] / last_steps[-1]) if np.isfinite(last[-1]) else float("inf")


def mel_distance_db(reference: np.ndarray, candidate: np.ndarray, sample_rate: int) -> float:
    """Log-mel spectral distance in dB after RMS matching (see the module docstring)."""
    def scaled(audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float64)
        return audio / max(float(np.sqrt(np.mean(audio**2))), 1e-9)

    ref = log_mel(scaled(reference), sample_rate)
    floor = ref.max() - FLOOR_BELOW_PEAK_DB
    return dtw_mean_distance(np.maximum(ref, floor), np.maximum(log_mel(scaled(candidate), sample_rate), floor))


def compare(reference: np.ndarray, candidate: np.ndarray, sample_rate: int, text: str) -> QualityCheck:
    """One text: the candidate must pass the canary's checks and stay close to the reference."""
    canary = judge_audio(candidate, sample_rate, text)
    if not canary.passed:
        return QualityCheck(False, canary.reason)
    ratio = len(candidate) / len(reference)
    low, high = DURATION_RATIO_RANGE
    if not low <= ratio <= high:
        return QualityCheck(False, f"duration {ratio:.2f}x the reference's, outside {low}-{high}", None, ratio)
    distance = mel_distance_db(reference, candidate, sample_rate)
    if distance > MEL_DISTANCE_MAX_DB:
        return QualityCheck(
            False, f"log-mel distance {distance:.1f} dB from the reference > {MEL_DISTANCE_MAX_DB} dB", distance, ratio
        )
    return QualityCheck(True, f"log-mel distance {distance:.2f} dB, duration {ratio:.3f}x", distance, ratio)


def compare_texts(
    reference: Mapping[str, np.ndarray], candidate: Mapping[str, np.ndarray], sample_rate: int, texts: Mapping[str, str]
) -> QualityCheck:
    """Every text of one configuration; the verdict is its worst text's, named."""
    checks = {name: compare(reference[name], candidate[name], sample_rate, text) for name, text in texts.items()}
    failed = [f"{name}: {check.reason}" for name, check in checks.items() if not check.passed]
    distances = [c.mel_distance_db for c in checks.values() if c.mel_distance_db is not None]
    ratios = [c.duration_ratio for c in checks.values() if c.duration_ratio is not None]
    worst_distance = max(distances, default=None)
    worst_ratio = max(ratios, key=lambda r: abs(r - 1.0), default=None)
    if failed:
        return QualityCheck(False, "; ".join(failed), worst_distance, worst_ratio)
    return QualityCheck(True, f"worst log-mel distance {worst_distance:.2f} dB", worst_distance, worst_ratio)


def judge_reference(audio: Mapping[str, np.ndarray], sample_rate: int, texts: Mapping[str, str]) -> QualityCheck:
    """The reference is only checked on its own: finite, audible and of plausible length."""
    for name, text in texts.items():
        canary = judge_audio(audio[name], sample_rate, text)
        if not canary.passed:
            return QualityCheck(False, f"{name}: {canary.reason}")
    return QualityCheck(True, "sound on its own: finite, audible, plausible length")


def load_audio(measurement: Measurement) -> dict[str, np.ndarray]:
    return {name: soundfile.read(path, dtype="float32")[0] for name, path in measurement.audio.items()}


def assess(measurements: list[Measurement]) -> tuple[str | None, dict[str, QualityCheck]]:
    """Pick the reference (the first of `REFERENCE_ORDER` whose own audio is sound) and judge every
    configuration against it; without one, or when synthesis is sampled, each is only checked on its own,
    and the verdict says so."""
    audio = {m.label: load_audio(m) for m in measurements}
    own = {m.label: judge_reference(audio[m.label], m.sample_rate, m.texts) for m in measurements}
    reference = next(
        (m for tier in REFERENCE_ORDER for m in measurements if m.tier == tier and own[m.label].passed), None
    )
    if reference is None:
        return None, {
            label: QualityCheck(check.passed, f"{check.reason}; no sound reference (basic/cpu) to compare with")
            for label, check in own.items()
        }
    verdicts = {reference.label: own[reference.label]}
    for m in measurements:
        if m is reference:
            continue
        if not (m.deterministic and reference.deterministic):
            check = own[m.label]
            verdicts[m.label] = QualityCheck(check.passed, f"{check.reason}; {SAMPLED.format(reference=reference.label)}")
        elif m.sample_rate != reference.sample_rate or m.texts != reference.texts:
            verdicts[m.label] = QualityCheck(False, "not comparable with the reference (other sample rate or texts)")
        else:
            verdicts[m.label] = compare_texts(audio[reference.label], audio[m.label], m.sample_rate, m.texts)
    return reference.label, verdicts
