"""The upstream-tree rules and the maker's command line, in the main test venv (no torch needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ttspilot.engines.cosyvoice.upstream import TREES_ENV, find_trees, model_versions, upstream_on_path

REPO_ROOT = Path(__file__).resolve().parents[3]


def fake_checkout(root: Path, classes: str) -> Path:
    """The layout of an official checkout, with `classes` as its cli/cosyvoice.py."""
    (root / "cosyvoice" / "cli").mkdir(parents=True)
    (root / "cosyvoice" / "cli" / "cosyvoice.py").write_text(classes)
    (root / "third_party" / "Matcha-TTS").mkdir(parents=True)
    return root


def test_model_versions_come_from_the_classes_the_tree_defines(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "tree", "class CosyVoice:\n    pass\nclass CosyVoice2(CosyVoice):\n    pass\n"
                         "class CosyVoiceFrontEnd:\n    pass\ndef CosyVoice3():\n    pass\n")
    assert model_versions(root) == [1, 2]


def test_upstream_on_path_puts_root_and_matcha_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_checkout(tmp_path / "tree", "class CosyVoice:\n    pass\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    upstream_on_path(root)
    assert sys.path[:2] == [str(root.resolve()), str(root.resolve() / "third_party" / "Matcha-TTS")]
    with pytest.raises(FileNotFoundError, match="not a CosyVoice checkout"):
        upstream_on_path(tmp_path)


def test_find_trees_takes_the_environment_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TREES_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert find_trees() == [tmp_path / "a", tmp_path / "b"]


def test_shared_trees_define_v1_and_v2() -> None:
    trees = find_trees()
    if not trees:
        pytest.skip("no CosyVoice tree: no ../shared/upstream/CosyVoice-* and TTSPILOT_COSYVOICE_TREES unset")
    for tree in trees:
        assert {1, 2} <= set(model_versions(tree)), tree


def test_maker_imports_without_torch_and_refuses_a_version_the_tree_lacks(tmp_path: Path) -> None:
    root = fake_checkout(tmp_path / "old-tree", "class CosyVoice:\n    pass\nclass CosyVoice2(CosyVoice):\n    pass\n")
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from ttspilot.engines.cosyvoice import tiny; "
         "assert 'torch' not in sys.modules; tiny.main(sys.argv[1:])",
         "--version", "3", "--out", str(tmp_path / "out"), "--cosyvoice_root", str(root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "has no CosyVoice3 model class" in result.stderr
    assert not (tmp_path / "out").exists()


def test_maker_refuses_a_text_table_size_for_v2_and_v3(tmp_path: Path) -> None:
    """Only v1 has its own text embedding; CosyVoice2/3 take their text ids from the Qwen2 backbone."""
    result = subprocess.run(
        [sys.executable, "-m", "ttspilot.engines.cosyvoice.tiny", "--version", "2", "--out", str(tmp_path / "out"),
         "--text_token_size", "51866"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "--text_token_size applies to --version 1 only" in result.stderr
    assert not (tmp_path / "out").exists()
