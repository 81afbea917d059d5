"""The CPU "compiled" tier end to end with the real embedded voice: build, reuse, verify, rebuild.

Timing is not asserted (noisy); that the cache was used is read from the session report.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from ttspilot.accel.cache import MANIFEST, CacheNotAFolder, CacheReadOnly
from ttspilot.accel.fingerprint import FileHasher
from ttspilot.accel.onnx_session import open_session
from ttspilot.config import TIERS

CPU = TIERS["cpu"]
# "Hello world." as Piper phoneme ids with pads between them; noise 0 makes synthesis deterministic.
PHONEME_IDS = [1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 100, 0, 3, 0, 35, 0, 62, 0, 24, 0, 17, 0, 10, 0, 2]
SCALES = np.array([0.0, 1.0, 0.0], dtype=np.float32)  # noise_scale, length_scale, noise_w


def synthesize(session: ort.InferenceSession) -> np.ndarray:
    ids = np.array([PHONEME_IDS], dtype=np.int64)
    feed = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": SCALES}
    return session.run(None, feed)[0].squeeze()


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory, voice_model) -> Path:
    """One cache directory with the voice's optimized graph, built once for this module."""
    cache_dir = tmp_path_factory.mktemp("cache")
    opened = open_session(voice_model, CPU, cache_dir)
    assert opened.cache is not None and opened.cache.status == "built"
    return cache_dir


@pytest.fixture
def cache_copy(built_cache, tmp_path) -> Path:
    target = tmp_path / "cache"
    shutil.copytree(built_cache, target)
    return target


def entry_of(cache_dir: Path) -> Path:
    (entry,) = [p for p in (cache_dir / "cpu-graph").iterdir() if p.is_dir()]
    return entry


def test_second_open_loads_the_cached_graph(voice_model, cache_copy):
    opened = open_session(voice_model, CPU, cache_copy)
    assert opened.cache.status == "hit"
    assert opened.cache.path == entry_of(cache_copy)
    assert opened.active_providers == ["CPUExecutionProvider"]
    assert opened.flags["load_jit"]["active"] is True
    assert "loaded from cache" in opened.flags["load_jit"]["reason"]
    assert any("optimized graph loaded from cache" in line for line in opened.decisions)


def test_optimized_graph_gives_the_same_audio(voice_model, cache_copy):
    reference = synthesize(ort.InferenceSession(str(voice_model), providers=["CPUExecutionProvider"]))
    cached = open_session(voice_model, CPU, cache_copy)
    assert cached.cache.status == "hit"
    audio = synthesize(cached.session)
    assert audio.shape == reference.shape
    assert audio.shape[0] > 5000  # real speech-length output, not an empty array
    np.testing.assert_allclose(audio, reference, atol=1e-4, rtol=0)


def test_pooled_sessions_share_one_build(voice_model, tmp_path):
    pool = [open_session(voice_model, CPU, tmp_path / "cache") for _ in range(3)]
    assert [s.cache.status for s in pool] == ["built", "hit", "hit"]
    assert len({s.cache.path for s in pool}) == 1


def test_truncated_cache_is_rebuilt(voice_model, cache_copy):
    graph = entry_of(cache_copy) / "model.onnx"
    with open(graph, "r+b") as handle:
        handle.truncate(graph.stat().st_size // 2)
    opened = open_session(voice_model, CPU, cache_copy)
    assert opened.cache.status == "rebuilt"
    assert "truncated" in opened.cache.reason
    assert opened.flags["load_jit"]["active"] is True
    assert open_session(voice_model, CPU, cache_copy).cache.status == "hit"


def test_same_size_corruption_is_rebuilt(voice_model, cache_copy):
    graph = entry_of(cache_copy) / "model.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    opened = open_session(voice_model, CPU, cache_copy, hasher=FileHasher(cache_copy / "file-hashes.json"))
    assert opened.cache.status == "rebuilt"
    assert "corrupted" in opened.cache.reason


@pytest.mark.parametrize(
    "field, value, shown",
    [
        ("onnxruntime", "1.17.0", "onnxruntime 1.17.0"),
        ("cpu_flags", "avx,avx2,fma", "cpu_flags avx,avx2,fma"),
    ],
)
def test_foreign_cache_is_rebuilt(voice_model, cache_copy, field, value, shown):
    manifest_path = entry_of(cache_copy) / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["key"][field] = value
    manifest_path.write_text(json.dumps(manifest))
    opened = open_session(voice_model, CPU, cache_copy)
    assert opened.cache.status == "rebuilt"
    assert shown in opened.cache.reason


def test_read_only_cache_still_serves_but_reports_why(voice_model, read_only_dir, caplog):
    with caplog.at_level(logging.INFO, logger="ttspilot.accel"):
        opened = open_session(voice_model, CPU, read_only_dir)
    (warning,) = [r for r in caplog.records if "optimizing online" in r.getMessage()]
    assert warning.levelno == logging.WARNING  # the tier runs slower than it should: operator news
    assert opened.cache.status == "unavailable"
    assert opened.flags["load_jit"]["active"] is False
    assert "not writable" in opened.flags["load_jit"]["reason"]
    assert synthesize(opened.session).shape[0] > 5000
    with pytest.raises(CacheReadOnly):
        open_session(voice_model, CPU, read_only_dir, strict=True)


def test_cache_can_be_bypassed(voice_model, tmp_path):
    opened = open_session(voice_model, CPU, tmp_path / "unused", use_cache=False)
    assert opened.cache is None
    assert opened.flags["load_jit"] == {"active": False, "reason": "graph optimized at load time"}
    assert not (tmp_path / "unused" / "cpu-graph").exists()


def test_a_file_where_the_cache_folder_belongs_is_named_and_served_without(voice_model, tmp_path, caplog):
    in_the_way = tmp_path / "cache"
    in_the_way.write_text("not a folder")
    with caplog.at_level(logging.INFO, logger="ttspilot.accel"):
        opened = open_session(voice_model, CPU, in_the_way)
    assert opened.cache.status == "unavailable"
    (warning,) = [r for r in caplog.records if "optimizing online" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert f"{in_the_way} is a file, but ttspilot needs a cache folder there (ENOTDIR)" in warning.getMessage()
    assert synthesize(opened.session).shape[0] > 5000
    with pytest.raises(CacheNotAFolder, match="move or delete that file"):
        open_session(voice_model, CPU, in_the_way, strict=True)
