"""Registered zero-shot voices on disk: what survives a restart, under the model's cache folder.

Each voice is three files in `<model_dir>/.ttspilot/cosyvoice-voices/`: the prompt recording
(`<id>.wav`, kept because instruct calls recompute from it), the speaker features upstream's
frontend computed from it (`<id>.pt`, loaded straight into its speaker table) and `<id>.json`
(transcript, the recording's sha256, when). Files are written to a temporary name and renamed,
metadata last, so a crash never leaves a voice that looks complete. Ids are names, never paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.engines.base import EngineLoadError

VOICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
STORE_FOLDER = "cosyvoice-voices"


class InvalidVoiceId(ValueError):
    """A voice id that is not a plain name (the server answers 400)."""


def check_voice_id(voice_id: str) -> str:
    if not VOICE_ID.fullmatch(voice_id) or ".." in voice_id:
        raise InvalidVoiceId(
            f"voice id {voice_id!r} is not valid: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return voice_id


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class StoredVoice:
    id: str
    prompt_text: str
    wav: Path
    wav_sha256: str
    created: float


@dataclass(frozen=True)
class VoiceSpec:
    """One entry of a --voices file."""

    id: str
    wav: Path
    text: str


def read_voices_file(path: Path) -> list[VoiceSpec]:
    """Parse `[{"id", "wav", "text"}, ...]`; wav paths are relative to the file. Errors name the entry."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EngineLoadError(f"voices file {path}: {error}") from None
    if not isinstance(entries, list):
        raise EngineLoadError(f"voices file {path}: expected a JSON list of {{\"id\", \"wav\", \"text\"}} objects")
    specs = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"id", "wav", "text"} <= entry.keys():
            raise EngineLoadError(f"voices file {path}, entry {number}: needs \"id\", \"wav\" and \"text\"")
        try:
            voice_id = check_voice_id(str(entry["id"]))
        except InvalidVoiceId as error:
            raise EngineLoadError(f"voices file {path}, entry {number}: {error}") from None
        wav = (path.parent / str(entry["wav"])).resolve()
        if not wav.is_file():
            raise EngineLoadError(f"voices file {path}, entry {number} ({voice_id}): {wav} does not exist")
        specs.append(VoiceSpec(voice_id, wav, str(entry["text"])))
    return specs


class VoiceStore:
    """The folder of registered voices; `save` and `load` take torch's save/load so this module needs no torch."""

    def __init__(self, folder: Path, save: Callable[[Any, Path], None], load: Callable[[Path], Any]):
        self.folder = folder
        self._save = save
        self._load = load

    def __iter__(self) -> Iterator[StoredVoice]:
        if not self.folder.is_dir():
            return
        for meta in sorted(self.folder.glob("*.json")):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
                voice = StoredVoice(check_voice_id(data["id"]), data["prompt_text"], self.folder / f"{data['id']}.wav",
                                    data["wav_sha256"], float(data["created"]))
            except (OSError, KeyError, ValueError, TypeError):
                continue  # not one of ours, or half written by an older crash: ignored, never trusted
            if voice.wav.is_file() and (self.folder / f"{voice.id}.pt").is_file():
                yield voice

    def features(self, voice: StoredVoice) -> Any:
        return self._load(self.folder / f"{voice.id}.pt")

    def put(self, voice_id: str, wav: Path, prompt_text: str, features: Any) -> StoredVoice:
        """Persist a voice (replacing one of the same id): recording and features first, metadata last."""
        self.folder.mkdir(parents=True, exist_ok=True)
        voice = StoredVoice(voice_id, prompt_text, self.folder / f"{voice_id}.wav", file_sha256(wav), time.time())
        with tempfile.TemporaryDirectory(dir=self.folder, prefix=f".{voice_id}-") as staging:
            staged = Path(staging)
            shutil.copyfile(wav, staged / "voice.wav")
            self._save(features, staged / "voice.pt")
            meta = {"id": voice_id, "prompt_text": prompt_text, "wav_sha256": voice.wav_sha256, "created": voice.created}
            (staged / "voice.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(staged / "voice.wav", voice.wav)
            os.replace(staged / "voice.pt", self.folder / f"{voice_id}.pt")
            os.replace(staged / "voice.json", self.folder / f"{voice_id}.json")
        return voice

    def remove(self, voice_id: str) -> None:
        """Metadata first: a crash part way leaves files that are ignored, never a voice half there."""
        for suffix in (".json", ".pt", ".wav"):
            (self.folder / f"{voice_id}{suffix}").unlink(missing_ok=True)
