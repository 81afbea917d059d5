"""Prompt recordings in the form the loaded CosyVoice tree takes.

Trees up to late 2025 take `prompt_speech_16k`, a (1, samples) float tensor at 16 kHz; newer ones
take `prompt_wav`, a path their frontend reads several times (at 16 and 24 kHz). The parameter's
name in `inference_zero_shot` says which; the server always hands us a checked wav file.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np

PROMPT_RATE = 16_000  # what the older trees expect the tensor at


def takes_path(model: Any) -> bool:
    """True for trees whose inference methods read the prompt from a file themselves."""
    return "prompt_wav" in inspect.signature(model.inference_zero_shot).parameters


def read_16k(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz (soxr's high-quality resampler)."""
    import soundfile
    import soxr

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    return mono if rate == PROMPT_RATE else soxr.resample(mono, rate, PROMPT_RATE).astype(np.float32)


def path_reading_problem() -> str | None:
    """Why a tree that reads prompt files itself cannot here, or None: it goes through `torchaudio.load`, which
    in torchaudio 2.9+ needs torchcodec and FFmpeg's shared libraries. Checked once at load on a tiny file."""
    import tempfile

    import soundfile
    import torchaudio

    with tempfile.NamedTemporaryFile(suffix=".wav") as probe:
        soundfile.write(probe.name, np.zeros(1600, dtype=np.float32), PROMPT_RATE)
        try:
            torchaudio.load(probe.name, backend="soundfile")
        except (ImportError, OSError, RuntimeError) as error:
            return (f"torchaudio.load fails ({type(error).__name__}: {str(error).splitlines()[0][:160]}): "
                    "pip install torchcodec and FFmpeg's shared libraries (see requirements-cosyvoice.txt)")
    return None


def prompt_tensor(path: Path) -> Any:
    """The (1, samples) 16 kHz tensor the older trees take as `prompt_speech_16k`."""
    import torch

    return torch.from_numpy(read_16k(path)).unsqueeze(0)
