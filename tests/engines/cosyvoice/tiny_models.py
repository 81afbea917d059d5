"""Tiny model folders made through the maker's command line in the CosyVoice environment, one per tree."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import REPO
from ttspilot.engines.cosyvoice.upstream import find_trees, model_versions


def trees_for(version: int) -> list:
    """One pytest param per upstream tree that defines `version`; one skipped param when no tree is found."""
    trees = [tree for tree in find_trees() if version in model_versions(tree)]
    if not trees:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"no CosyVoice tree with v{version}: no ../shared/upstream/CosyVoice-* and "
                   "TTSPILOT_COSYVOICE_TREES unset"))]
    return [pytest.param(tree, id=tree.name) for tree in trees]


_MADE: dict[tuple, Path] = {}  # (python, tree, version, extra) -> a pristine folder made in this test run


def _pristine_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="ttspilot-tiny-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def trees_and_versions(versions: tuple[int, ...]) -> list:
    """One pytest param (tree, version) per upstream tree and each of `versions` it defines."""
    pairs = [pytest.param(tree, version, id=f"{tree.name}-v{version}") for tree in find_trees()
             for version in versions if version in model_versions(tree)]
    return pairs or [pytest.param(None, None, marks=pytest.mark.skip(reason="no CosyVoice tree: no "
                                                                      "../shared/upstream/CosyVoice-* and "
                                                                      "TTSPILOT_COSYVOICE_TREES unset"))]


def write_tiny(python: Path, tree: Path, version: int, out: Path, *extra: str) -> Path:
    """A tiny folder at `out`, made by `python -m ttspilot.engines.cosyvoice.tiny` with the tree's code.

    Each (tree, version, options) is made once per test run and copied for every caller: the maker
    takes 8-40 s, a copy well under one, and tests change their folders (exports, voices, damage).
    """
    key = (str(python), str(tree), version, extra)
    if key not in _MADE:
        made = _pristine_folder() / "model"
        command = [str(python), "-m", "ttspilot.engines.cosyvoice.tiny", "--version", str(version), "--out",
                   str(made), "--cosyvoice_root", str(tree), *extra]
        result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, f"tiny maker failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        _MADE[key] = made
    shutil.copytree(_MADE[key], out)
    return out
