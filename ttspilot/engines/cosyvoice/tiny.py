"""Tiny random-weight CosyVoice model folders (v1, v2, v3) for tests and install checks.

Usage (inside the CosyVoice environment, see OPTIMIZATION.md):
    python -m ttspilot.engines.cosyvoice.tiny --version 2 --out DIR [--cosyvoice_root TREE] [--seed N]
                                              [--text_token_size N]  (v1 only)  [--fault nan|silent]

A folder holds what upstream's model classes load: our small hyperpyyaml config, the state dicts
of the modules that config instantiates, ONNX stand-ins for the speaker encoder and the speech
tokenizer, and `spk2info.pt` with one SFT speaker. The audio is noise; the end-of-speech logit
is biased so a sentence stops after a second or so instead of running to the length limit.
torch and the official code are imported only inside the functions that need them.

`--text_token_size 51866` (v1) writes a faulty model for the hang tests: a text embedding the
size of upstream's older whisper vocabulary, smaller than the tokenizer the tree ships. English
ids fit, so the canary passes; CJK ids fall outside it, upstream's LLM thread (`llm_job`) dies
with IndexError, and a streamed call then waits forever for the thread's end flag. The fault is
in the data only: upstream's code runs unchanged (docs/architecture.md, "Limits and timeouts").

`--fault nan` and `--fault silent` write models whose vocoder output is all NaN or all zeros, what
a broken FP16 path produces, for the canary tests: such a model loads and answers, and only a
look at its audio tells it is broken (`break_vocoder`).
"""

from __future__ import annotations

import argparse
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ttspilot.engines.cosyvoice.tiny_onnx import SPEAKER_EMBEDDING_DIM, write_campplus, write_speech_tokenizer
from ttspilot.engines.cosyvoice.tiny_qwen import write_qwen
from ttspilot.engines.cosyvoice.upstream import model_versions, upstream_on_path

CONFIGS = Path(__file__).with_name("tiny_configs")
SPEAKER = "tiny"
QWEN_FOLDER = "CosyVoice-BlankEN"  # where CosyVoice2/3 look for the LLM backbone
FAULTS = ("nan", "silent")
OLD_WHISPER_TEXT_TOKENS = 51866  # upstream's older multilingual vocabulary; the trees' tokenizer has 60515 ids
TEXT_TOKEN_SIZE = re.compile(r"(?m)^(\s*text_token_size: )\d+$")


@dataclass(frozen=True)
class TinyModel:
    """What differs between the versions' folders, and what a caller needs to drive one."""

    config: str
    speech_tokenizer: str
    sample_rate: int
    token_rate: int  # speech tokens per second of audio
    speech_tokens: int
    qwen: bool  # v2 and v3 carry a Qwen2 backbone folder
    sft_prefix: str = ""  # CosyVoice3 needs `<|endofprompt|>` in the text of every call


MODELS: dict[int, TinyModel] = {
    1: TinyModel("cosyvoice.yaml", "speech_tokenizer_v1.onnx", 22050, 10, 4096, qwen=False),
    2: TinyModel("cosyvoice2.yaml", "speech_tokenizer_v2.onnx", 24000, 25, 6561, qwen=True),
    3: TinyModel("cosyvoice3.yaml", "speech_tokenizer_v3.onnx", 24000, 25, 6561, qwen=True,
                 sft_prefix="You are a helpful assistant.<|endofprompt|>"),
}


def bias_end_of_speech(llm: Any, speech_tokens: int) -> None:
    """Give end-of-speech about even odds at every step once upstream allows it to stop.

    Random weights give near-uniform logits, so without this every call runs to upstream's length
    limit (20 speech tokens per text token, tens of seconds of audio for one sentence).
    """
    import torch

    decoder = llm.llm_decoder
    with torch.no_grad():
        if decoder.bias is not None:
            # ln(n - 1) against n - 1 logits near zero: end-of-speech gets probability one half.
            decoder.bias[speech_tokens] = math.log(decoder.out_features - 1)
            return
        # CosyVoice3's decoder has no bias and 200 stop ids after the speech tokens. Every input
        # embedding carries a constant in hidden dim 0 that no layer writes to, so decoder column 0
        # acts as a bias after the final RMSNorm (which scales that dim to about sqrt(hidden)).
        backbone = llm.llm.model.model
        backbone.embed_tokens.weight[:, 0] = 10.0
        llm.speech_embedding.weight[:, 0] = 10.0
        for layer in backbone.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        scale = math.sqrt(decoder.in_features)
        decoder.weight[:, 0] = 0.0
        decoder.weight[speech_tokens:, 0] = -3.0  # the other stop ids: effectively never
        decoder.weight[speech_tokens, 0] = math.log(speech_tokens) / scale


def break_vocoder(hift: Any, fault: str) -> None:
    """Make every sample HiFT writes NaN (`nan`) or zero (`silent`), through the bias of its last convolution.

    HiFT's decode reads conv_post's first n_fft/2 + 1 output channels as log-magnitudes (exp) and the
    rest as phases (sin), then runs an inverse STFT and clamps. A NaN bias makes every frame NaN, and
    torch.clamp keeps NaN; a log-magnitude bias of -1e4 makes exp() underflow to 0, a zero spectrum,
    so the inverse STFT is exact silence. Same in HiFTGenerator and CausalHiFTGenerator of both trees.
    """
    import torch

    bias = hift.conv_post.bias
    with torch.no_grad():
        if fault == "nan":
            bias.fill_(float("nan"))
        elif fault == "silent":
            bias[: hift.istft_params["n_fft"] // 2 + 1] = -1e4
        else:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")


def make_tiny(version: int, out: Path, seed: int = 0, text_token_size: int | None = None,
              fault: str | None = None) -> Path:
    """Write the tiny folder for `version` into `out`; `cosyvoice` and `matcha` must be importable.

    `text_token_size` (v1 only) sizes the LLM's text embedding instead of the tree's tokenizer size;
    `fault` (nan, silent) breaks the vocoder's output.
    """
    import torch
    from hyperpyyaml import load_hyperpyyaml

    model = MODELS[version]
    config_text = (CONFIGS / model.config).read_text(encoding="utf-8")
    if text_token_size is not None:
        if not TEXT_TOKEN_SIZE.search(config_text):
            raise ValueError(f"--text_token_size applies to v1 only: CosyVoice{version}'s text ids come from Qwen2")
        config_text = TEXT_TOKEN_SIZE.sub(rf"\g<1>{text_token_size}", config_text)
    out.mkdir(parents=True, exist_ok=True)
    (out / model.config).write_text(config_text, encoding="utf-8")
    overrides = None
    if model.qwen:
        write_qwen(out / QWEN_FOLDER, seed, qwen_ids=bool(model.sft_prefix))
        overrides = {"qwen_pretrain_path": str(out / QWEN_FOLDER)}
    torch.manual_seed(seed)
    modules = load_hyperpyyaml(config_text, overrides=overrides)
    bias_end_of_speech(modules["llm"], model.speech_tokens)
    if fault is not None:
        break_vocoder(modules["hift"], fault)
    for name in ("llm", "flow", "hift"):
        torch.save(modules[name].state_dict(), out / f"{name}.pt")
    write_campplus(out / "campplus.onnx", seed)
    write_speech_tokenizer(out / model.speech_tokenizer, model.speech_tokens)
    embedding = torch.randn(1, SPEAKER_EMBEDDING_DIM, generator=torch.Generator().manual_seed(seed))
    torch.save({SPEAKER: {"embedding": embedding}}, out / "spk2info.pt")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a tiny random-weight CosyVoice model folder.")
    parser.add_argument("--version", type=int, choices=sorted(MODELS), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cosyvoice_root", type=Path, help="an official CosyVoice checkout (else `cosyvoice` "
                        "must be importable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text_token_size", type=int, help=f"v1 only: rows of the LLM's text embedding; "
                        f"{OLD_WHISPER_TEXT_TOKENS} makes CJK text kill upstream's LLM thread (hang tests)")
    parser.add_argument("--fault", choices=FAULTS, help="nan: every audio sample NaN; silent: every sample zero "
                        "(canary tests)")
    args = parser.parse_args(argv)
    if args.text_token_size is not None and args.version != 1:
        parser.error("--text_token_size applies to --version 1 only")
    if args.cosyvoice_root is not None:
        if args.version not in model_versions(args.cosyvoice_root):
            parser.error(f"{args.cosyvoice_root} has no CosyVoice{args.version} model class")
        upstream_on_path(args.cosyvoice_root)
    started = time.perf_counter()
    out = make_tiny(args.version, args.out, args.seed, args.text_token_size, args.fault)
    size_mb = sum(path.stat().st_size for path in out.rglob("*") if path.is_file()) / 1e6
    print(f"tiny CosyVoice v{args.version} written to {out} ({size_mb:.0f} MB, "
          f"{time.perf_counter() - started:.1f} s); SFT speaker {SPEAKER!r}"
          + (f"; vocoder fault: {args.fault}" if args.fault else ""))


if __name__ == "__main__":
    main()
