"""The Piper engine with the real embedded voice (and copies of it in a model folder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.support import REPO, assert_speech
from ttspilot.config import config_from_flags
from ttspilot.engines import load_engine
from ttspilot.engines.base import EngineLoadError, VoiceNotFound
from ttspilot.engines.piper import PiperEngine, bounded_calls, embedded_voice, max_call_phonemes

TEXT = "The river runs quietly past the old mill. Nobody remembers when it was built."


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    return PiperEngine.load(None, config_from_flags("cpu"))


def synth(engine, text=TEXT, **opts) -> np.ndarray:
    return np.concatenate(list(engine.synthesize(text, engine.default_voice, **opts)))


def test_embedded_voice_speaks(engine):
    assert engine.sample_rate == 22050
    assert [v.id for v in engine.voices()] == ["en_US-joe-medium"]
    chunks = list(engine.synthesize(TEXT, engine.default_voice))
    assert len(chunks) == 2, "one chunk per sentence"
    assert all(c.dtype == np.float32 and np.abs(c).max() <= 1.0 for c in chunks)
    assert_speech(np.concatenate(chunks), engine.sample_rate, TEXT)


def test_zero_noise_is_deterministic_and_default_noise_is_not(engine):
    first = synth(engine, noise_scale=0.0, noise_w=0.0)
    assert np.array_equal(first, synth(engine, noise_scale=0.0, noise_w=0.0))
    assert not np.array_equal(synth(engine), synth(engine))


def test_speed_scales_duration(engine):
    slow = synth(engine, noise_scale=0.0, noise_w=0.0, speed=0.5)
    fast = synth(engine, noise_scale=0.0, noise_w=0.0, speed=2.0)
    assert 2.5 < len(slow) / len(fast) < 5.0


def test_whole_text_in_one_model_call(engine):
    """What a server without splitting does (the server-overhead benchmark's baseline): one chunk, same speech."""
    chunks = list(engine.synthesize(TEXT, engine.default_voice, split_sentences=False, noise_scale=0.0, noise_w=0.0))
    assert len(chunks) == 1 and chunks[0].dtype == np.float32 and np.abs(chunks[0]).max() <= 1.0
    assert_speech(chunks[0], engine.sample_rate, TEXT)


def test_unknown_voice_lists_valid_ones(engine):
    with pytest.raises(VoiceNotFound, match="en_US-joe-medium"):
        engine.resolve_voice("nobody")


def test_info_reports_real_providers(engine):
    info = engine.info()
    assert info.providers == ("CPUExecutionProvider",)
    assert info.flags["fp16"].active is False
    assert info.concurrency == 1


def test_model_dir_voices_become_extra_voices(tmp_path):
    voice = embedded_voice()
    shutil.copy(voice.model, tmp_path / "en_US-copy-medium.onnx")
    config = json.loads(voice.config.read_text())
    (tmp_path / "en_US-copy-medium.onnx.json").write_text(json.dumps(config))
    config.update(num_speakers=2, speaker_id_map={"ann": 0, "bob": 1})
    (tmp_path / "multi.onnx").symlink_to(voice.model)
    (tmp_path / "multi.onnx.json").write_text(json.dumps(config))
    engine = load_engine(tmp_path, config_from_flags("cpu"))
    ids = [v.id for v in engine.voices()]
    assert ids == ["en_US-copy-medium", "multi:ann", "multi:bob", "en_US-joe-medium"]
    assert engine.default_voice == "en_US-copy-medium"
    audio = np.concatenate(list(engine.synthesize("Hello from the copy.", "en_US-copy-medium")))
    assert_speech(audio, engine.sample_rate, "Hello from the copy.")


def test_broken_model_is_a_load_error(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx model")
    (tmp_path / "broken.onnx.json").write_text(embedded_voice().config.read_text())
    with pytest.raises(EngineLoadError, match="broken.onnx"):
        load_engine(tmp_path, config_from_flags("cpu"))


def test_folder_without_voices_is_a_load_error(tmp_path):
    with pytest.raises(EngineLoadError, match="no engine recognises"):
        load_engine(tmp_path, config_from_flags("cpu"))


def test_a_sentence_plays_as_piper_itself_plays_it(engine):
    from piper import PiperVoice, SynthesisConfig

    voice_file = embedded_voice()

    piper_voice = PiperVoice.load(voice_file.model, voice_file.config)
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    (theirs,) = [chunk.audio_float_array for chunk in piper_voice.synthesize(TEXT.split(". ")[1], config)]
    ours = synth(engine, TEXT.split(". ")[1], noise_scale=0.0, noise_w=0.0)
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-4)


def test_long_sentences_are_cut_at_word_breaks_into_bounded_calls():
    phonemes = list("ab cd ef gh")
    pieces = list(bounded_calls(phonemes, 6))
    assert pieces == [list("ab cd "), list("ef gh")] and sum(pieces, []) == phonemes
    assert list(bounded_calls(list("abcdefgh"), 3)) == [list("abc"), list("def"), list("gh")]  # no break: hard cut
    assert max_call_phonemes(0.25) < max_call_phonemes(1.0) == max_call_phonemes(4.0)


def test_digit_heavy_text_keeps_each_model_call_bounded(tmp_path):
    """Digits read as many phonemes per character: memory must follow the phoneme bound, not the character count."""
    script = (
        "import resource, numpy as np\n"
        "from ttspilot.config import config_from_flags\n"
        "from ttspilot.engines.piper import PiperEngine\n"
        "engine = PiperEngine.load(None, config_from_flags('cpu'))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "chunks = list(engine.synthesize('4729 8813 5560 1298 ' * 12, engine.default_voice))\n"
        "audio = np.concatenate(chunks)\n"
        "grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024\n"
        "print(len(chunks), len(audio) / engine.sample_rate, grown)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    calls, seconds, grown_mb = result.stdout.split()
    assert int(calls) >= 2 and float(seconds) > 30, "240 characters of digits are over half a minute of speech"
    assert float(grown_mb) < 450, f"one model call grew memory by {grown_mb} MB"
