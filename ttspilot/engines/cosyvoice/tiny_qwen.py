"""A tiny Qwen2 backbone and tokenizer standing in for the `CosyVoice-BlankEN` folder of v2 and v3.

Both are written with `save_pretrained`, so upstream loads them the way it loads the real ones.
The tokenizer is byte-level BPE without merges: every UTF-8 byte is one text token.
"""

from __future__ import annotations

from pathlib import Path

QWEN2_BASE_VOCAB = 151643  # ids below Qwen2's first special token
QWEN2_EMBEDDINGS = 152064
BYTE_LEVEL_VOCAB = 320  # 256 byte symbols, with room for the special tokens the frontend adds
HIDDEN = 32


def write_qwen(path: Path, seed: int, qwen_ids: bool) -> None:
    """Save the tokenizer and a one-layer Qwen2ForCausalLM, HIDDEN wide, under `path`.

    `qwen_ids` keeps Qwen2's special-token ids: CosyVoice3's LM looks for `<|endofprompt|>` by the
    fixed id 151646, so the vocabulary is padded to Qwen2's size and the three Qwen2 specials sit at
    151643-151645, which puts the frontend's first added token on 151646.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    vocab = {symbol: index for index, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    if qwen_ids:
        vocab.update({f"<unused{index}>": index for index in range(len(vocab), QWEN2_BASE_VOCAB)})
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    if qwen_ids:
        tokenizer.add_special_tokens(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                            pad_token="<|endoftext|>").save_pretrained(path)
    config = Qwen2Config(vocab_size=QWEN2_EMBEDDINGS if qwen_ids else BYTE_LEVEL_VOCAB, hidden_size=HIDDEN,
                         intermediate_size=2 * HIDDEN, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, max_position_embeddings=4096, tie_word_embeddings=True)
    torch.manual_seed(seed)
    Qwen2ForCausalLM(config).save_pretrained(path)
