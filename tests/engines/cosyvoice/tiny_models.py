"""Tiny model folders made through the maker's command line in the CosyVoice environment, one per tree."""

from __future__ import annotations

import os
import subprocess
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


def write_tiny(python: Path, tree: Path, version: int, out: Path, *extra: str) -> Path:
    """`python -m ttspilot.engines.cosyvoice.tiny` with the tree's code; returns the folder."""
    command = [str(python), "-m", "ttspilot.engines.cosyvoice.tiny", "--version", str(version), "--out", str(out),
               "--cosyvoice_root", str(tree), *extra]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, f"tiny maker failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return out
