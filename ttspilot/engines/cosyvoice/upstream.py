"""Where the official CosyVoice code comes from: an operator's checkout, or the shared test trees.

The official repository is not a pip package: its root holds the `cosyvoice` package and its
`third_party/Matcha-TTS` submodule holds `matcha`, which the model configs instantiate. Both go on
`sys.path`, unmodified; nothing of theirs is copied or patched.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path

TREES_ENV = "TTSPILOT_COSYVOICE_TREES"
REPO_ROOT = Path(__file__).resolve().parents[3]
_VERSION_CLASS = re.compile(r"CosyVoice(\d*)")


def upstream_on_path(root: Path) -> None:
    """Make `cosyvoice` and `matcha` importable from the checkout at `root` (first on sys.path)."""
    root = root.resolve()
    if not (root / "cosyvoice" / "cli" / "cosyvoice.py").is_file():
        raise FileNotFoundError(f"{root} is not a CosyVoice checkout: no cosyvoice/cli/cosyvoice.py")
    for entry in (root / "third_party" / "Matcha-TTS", root):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))


def find_trees() -> list[Path]:
    """Test trees: the paths in TTSPILOT_COSYVOICE_TREES, else every `CosyVoice-*` in `../shared/upstream`.

    `../shared` is looked for beside the repository first, then beside each folder above it, so a
    git worktree nested deeper than the main checkout finds the same trees.
    """
    listed = os.environ.get(TREES_ENV)
    if listed:
        return [Path(entry) for entry in listed.split(os.pathsep) if entry]
    for folder in REPO_ROOT.parents:
        shared = folder / "shared" / "upstream"
        if shared.is_dir():
            return sorted(path for path in shared.glob("CosyVoice-*") if path.is_dir())
    return []


def model_versions(root: Path) -> list[int]:
    """CosyVoice versions the tree can load, read from the model classes its `cli/cosyvoice.py` defines.

    Parsed, not imported, so it needs neither torch nor the tree's dependencies.
    """
    source = (root / "cosyvoice" / "cli" / "cosyvoice.py").read_text(encoding="utf-8")
    versions = set()
    for node in ast.parse(source).body:
        match = _VERSION_CLASS.fullmatch(node.name) if isinstance(node, ast.ClassDef) else None
        if match:
            versions.add(int(match.group(1) or 1))
    return sorted(versions)
