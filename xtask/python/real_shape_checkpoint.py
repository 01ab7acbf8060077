"""Write a Qwen3 checkpoint with the real shapes of a released size and random weights.

The folder looks like the one on the Hugging Face hub: config.json and
generation_config.json with the published values, bf16 safetensors (sharded
like the hub files above 4 GB), and the real tokenizer files. The weights are
random, so the text it generates is meaningless; it replaces the real
model in end-to-end runs, speed and memory measurements.
"""

import argparse
import json
import pathlib
import shutil

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

COMMON = dict(
    architectures=["Qwen3ForCausalLM"],
    attention_bias=False,
    attention_dropout=0.0,
    bos_token_id=151643,
    eos_token_id=151645,
    head_dim=128,
    hidden_act="silu",
    initializer_range=0.02,
    max_position_embeddings=40960,
    model_type="qwen3",
    num_key_value_heads=8,
    rms_norm_eps=1e-06,
    rope_scaling=None,
    rope_theta=1000000,
    sliding_window=None,
    tie_word_embeddings=True,
    torch_dtype="bfloat16",
    use_cache=True,
    use_sliding_window=False,
    vocab_size=151936,
)

PRESETS = {
    "0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                 max_window_layers=28),
    "4b": dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
               max_window_layers=36),
}

GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--tokenizer-dir", required=True, type=pathlib.Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    published = {**COMMON, **PRESETS[args.preset]}
    config_kwargs = {k: v for k, v in published.items() if k not in ("architectures", "model_type", "torch_dtype")}
    config = Qwen3Config(**config_kwargs)

    # Build directly in bf16: an f32 copy of the 4B model would need 16 GB.
    torch.set_default_dtype(torch.bfloat16)
    model = Qwen3ForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                # Norm weights of 1.0 everywhere would hide a norm bug; real ones vary.
                param.copy_(1.0 + 0.1 * torch.randn(param.shape))

    staging = args.out.with_name(args.out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging, max_shard_size="4GB")

    (staging / "config.json").write_text(json.dumps(published, indent=2, sort_keys=True) + "\n")
    (staging / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(args.tokenizer_dir / name, staging / name)

    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
