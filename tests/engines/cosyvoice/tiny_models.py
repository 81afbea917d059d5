"""Tiny model folders made through the maker's command line in the CosyVoice environment, one per tree."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from filelock import FileLock

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


TINY_CACHE_ENV = "TTSPILOT_TEST_TINY_MODELS"  # set by tests/conftest.py for the whole run, workers included


def _made_folder(key: tuple) -> Path:
    """Where the pristine folder for `key` lives: one place for every test process of this run."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    return Path(os.environ[TINY_CACHE_ENV]) / digest / "model"


def trees_and_versions(versions: tuple[int, ...]) -> list:
    """One pytest param (tree, version) per upstream tree and each of `versions` it defines."""
    pairs = [pytest.param(tree, version, id=f"{tree.name}-v{version}") for tree in find_trees()
             for version in versions if version in model_versions(tree)]
    return pairs or [pytest.param(None, None, marks=pytest.mark.skip(reason="no CosyVoice tree: no "
                                                                      "../shared/upstream/CosyVoice-* and "
                                                                      "TTSPILOT_COSYVOICE_TREES unset"))]


def write_tiny(python: Path, tree: Path, version: int, out: Path, *extra: str) -> Path:
    """A tiny folder at `out`, made by `python -m ttspilot.engines.cosyvoice.tiny` with the tree's code.

    Each (tree, version, options) is made once per test run, by whichever test process needs it first,
    and copied for every caller: the maker takes 8-40 s, a copy well under one, and tests change their
    folders (exports, voices, damage).
    """
    key = (str(python), str(tree), version, extra)
    made = _made_folder(key)
    made.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(made.parent / "lock")):
        if not (made.parent / "complete").is_file():
            shutil.rmtree(made, ignore_errors=True)
            command = [str(python), "-m", "ttspilot.engines.cosyvoice.tiny", "--version", str(version), "--out",
                       str(made), "--cosyvoice_root", str(tree), *extra]
            result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                    capture_output=True, text=True, timeout=300)
            assert result.returncode == 0, f"tiny maker failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            (made.parent / "complete").touch()
    shutil.copytree(made, out)
    return out
