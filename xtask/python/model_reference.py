"""Write tiny random Qwen3 checkpoints and their transformers reference outputs.

Each fixture is a checkpoint folder in the Hugging Face layout plus
`reference.safetensors` with what `Qwen3ForCausalLM` computes in float32 on
that checkpoint: the input ids, the logits of every position, the hidden state
after every decoder layer, 20 greedy tokens generated with the cache with the
logits of each of those steps, and 20 greedy tokens under a repetition penalty
of 1.3.
Run it through `cargo xtask model-fixtures`, which creates the virtual
environment with the pinned versions.
"""

import argparse
import json
import pathlib
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import Qwen3Config, Qwen3ForCausalLM

INPUT_IDS = [3, 17, 250, 101, 42, 7, 199, 64, 311, 5, 128, 90, 222, 11, 300, 56]
GREEDY_TOKENS = 20
REPETITION_PENALTY = 1.3
MIN_MARGIN = 1e-3
# The residual stream of this fixture must exceed this, so that f16 backends
# show they keep it (and the squares RMSNorm sums) out of f16's range limit.
LARGE_ACTIVATION = 1e4

BASE = dict(
    vocab_size=384,
    hidden_size=32,
    intermediate_size=96,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=128,
    rms_norm_eps=1e-6,
    rope_theta=1000000.0,
    tie_word_embeddings=True,
    hidden_act="silu",
    attention_bias=False,
    bos_token_id=151643,
    eos_token_id=151645,
)

# name -> (config overrides, dtype on disk, config.json layout, max shard size)
FIXTURES = {
    "tied-gqa-f32": ({}, torch.float32, "hub", None),
    "untied-mha-f32": (
        dict(num_key_value_heads=4, tie_word_embeddings=False, rope_theta=10000.0),
        torch.float32,
        "transformers5",
        None,
    ),
    "head-dim-32-f32": (
        dict(head_dim=32, num_attention_heads=4, num_key_value_heads=1),
        torch.float32,
        "transformers5",
        None,
    ),
    "tied-gqa-bf16": ({}, torch.bfloat16, "hub", None),
    "sharded-untied-f32": (
        dict(tie_word_embeddings=False, num_hidden_layers=4),
        torch.float32,
        "hub",
        "60KB",
    ),
    "untied-mha-f16": (
        dict(num_key_value_heads=4, tie_word_embeddings=False),
        torch.float16,
        "transformers5",
        None,
    ),
    # Untied, so the huge embedding does not also scale the logits.
    "large-activations-f32": (dict(tie_word_embeddings=False), torch.float32, "hub", None),
}

# Standard deviation of the token embedding; 0.3 unless named here. 4000 puts
# residual stream values above LARGE_ACTIVATION while every weight stays well
# inside f16's range (65504).
EMBED_STD = {"large-activations-f32": 4000.0}


def randomize(model: Qwen3ForCausalLM, generator: torch.Generator, embed_std: float = 0.3) -> None:
    """Give weights scales that spread the logits out, and norm weights values near (not at) 1."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.2 * torch.randn(param.shape, generator=generator))
            elif param.dim() == 2 and "embed_tokens" in name:
                # Tied heads reuse this matrix: std 0.3 keeps logits within about +-10,
                # where f32 rounding stays far below the 1e-5 cache-consistency checks.
                param.copy_(embed_std * torch.randn(param.shape, generator=generator))
            elif param.dim() == 2:
                fan_in = param.shape[1]
                param.copy_(torch.randn(param.shape, generator=generator) * (1.5 / fan_in**0.5))


def hub_layout(config_path: pathlib.Path, dtype: torch.dtype) -> None:
    """Rewrite config.json as hub checkpoints have it: torch_dtype, top-level rope_theta, rope_scaling."""
    config = json.loads(config_path.read_text())
    rope = config.pop("rope_parameters", {}) or {}
    config.pop("dtype", None)
    config.pop("layer_types", None)
    config["torch_dtype"] = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
    config["rope_theta"] = rope.get("rope_theta", 1000000.0)
    config["rope_scaling"] = None
    config["use_sliding_window"] = False
    config["sliding_window"] = None
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def top2_margins(logits: torch.Tensor) -> torch.Tensor:
    top = torch.topk(logits, 2, dim=-1).values
    return top[..., 0] - top[..., 1]


def make_fixture(out_dir: pathlib.Path, name: str, seed: int) -> dict:
    overrides, dtype, layout, shard = FIXTURES[name]
    folder = out_dir / name
    for attempt in range(50):
        generator = torch.Generator().manual_seed(seed + attempt)
        config = Qwen3Config(**{**BASE, **overrides})
        model = Qwen3ForCausalLM(config).to(torch.float32).eval()
        randomize(model, generator, EMBED_STD.get(name, 0.3))
        model = model.to(dtype)

        if folder.exists():
            shutil.rmtree(folder)
        kwargs = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(folder, **kwargs)
        if layout == "hub":
            hub_layout(folder / "config.json", dtype)

        # Reference: transformers reading the saved files back, computing in float32.
        reference = Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        reference.generation_config.eos_token_id = None
        reference.generation_config.pad_token_id = None

        ids = torch.tensor([INPUT_IDS])
        hidden = []
        hooks = [layer.register_forward_hook(lambda m, i, o: hidden.append(o[0] if isinstance(o, tuple) else o))
                 for layer in reference.model.layers]
        with torch.no_grad():
            logits = reference(ids).logits[0]
        for hook in hooks:
            hook.remove()

        with torch.no_grad():
            out = reference.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=GREEDY_TOKENS,
                min_new_tokens=GREEDY_TOKENS,
                output_scores=True,
                return_dict_in_generate=True,
            )
        greedy = out.sequences[0, len(INPUT_IDS):]
        # Without sampling or a penalty, the scores are the raw logits of each step.
        greedy_logits = torch.stack([score[0] for score in out.scores])
        step_margins = top2_margins(greedy_logits)

        # Greedy after the repetition penalty, which transformers applies over
        # the prompt and the generated ids; `scores` are the penalized logits.
        with torch.no_grad():
            penalized = reference.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                repetition_penalty=REPETITION_PENALTY,
                max_new_tokens=GREEDY_TOKENS,
                min_new_tokens=GREEDY_TOKENS,
                output_scores=True,
                return_dict_in_generate=True,
            )
        penalized_greedy = penalized.sequences[0, len(INPUT_IDS):]
        penalized_margins = torch.stack([top2_margins(score[0]) for score in penalized.scores])

        smallest = min(step_margins.min(), penalized_margins.min(), top2_margins(logits).min())
        if smallest < MIN_MARGIN:
            continue
        largest_activation = float(max(h.abs().max() for h in hidden))
        if name in EMBED_STD and largest_activation <= LARGE_ACTIVATION:
            raise RuntimeError(f"{name}: largest residual value {largest_activation} is not above {LARGE_ACTIVATION}")

        save_file(
            {
                "input_ids": ids[0].to(torch.int64).contiguous(),
                "logits": logits.contiguous(),
                "hidden_states": torch.stack([h[0] for h in hidden]).contiguous(),
                "greedy_ids": greedy.to(torch.int64).contiguous(),
                "greedy_logits": greedy_logits.to(torch.float32).contiguous(),
                "greedy_ids_repetition_penalty": penalized_greedy.to(torch.int64).contiguous(),
            },
            str(folder / "reference.safetensors"),
        )
        return {
            "name": name,
            "dtype": str(dtype).removeprefix("torch."),
            "config_layout": layout,
            "sharded": shard is not None,
            "tie_word_embeddings": config.tie_word_embeddings,
            "seed": seed + attempt,
            "min_greedy_margin": float(step_margins.min()),
            "min_penalized_greedy_margin": float(penalized_margins.min()),
            "repetition_penalty": REPETITION_PENALTY,
            "min_logit_margin": float(top2_margins(logits).min()),
            "largest_activation": largest_activation,
        }
    raise RuntimeError(f"no seed gave top-1/top-2 margins above {MIN_MARGIN} for {name}")


E2E_NAME = "e2e-full-vocab-bf16"
E2E_PROMPT = "你会说中文吗？"
E2E_NEW_TOKENS = 24
E2E_CONFIG = dict(
    BASE,
    vocab_size=151936,
    hidden_size=8,
    intermediate_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
    max_position_embeddings=256,
)
E2E_GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
}


def make_e2e_fixture(out_dir: pathlib.Path, tokenizer_dir: pathlib.Path, seed: int) -> dict:
    """A checkpoint with the full Qwen3 vocabulary (bf16, no tokenizer files:
    tests copy the real ones in) and what transformers generates greedily for a
    Chinese chat prompt rendered by the real chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    folder = out_dir / E2E_NAME
    for attempt in range(50):
        generator = torch.Generator().manual_seed(seed + attempt)
        model = Qwen3ForCausalLM(Qwen3Config(**E2E_CONFIG)).to(torch.float32).eval()
        randomize(model, generator)
        model = model.to(torch.bfloat16)
        if folder.exists():
            shutil.rmtree(folder)
        model.save_pretrained(folder)
        hub_layout(folder / "config.json", torch.bfloat16)
        (folder / "generation_config.json").write_text(json.dumps(E2E_GENERATION_CONFIG, indent=2) + "\n")

        reference = Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        cases = []
        smallest = float("inf")
        for name, thinking, penalty in [
            ("thinking_unspecified", None, None),
            ("thinking_off", False, None),
            ("thinking_off_repetition_penalty", False, 1.3),
        ]:
            kwargs = {} if thinking is None else {"enable_thinking": thinking}
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": E2E_PROMPT}], tokenize=False, add_generation_prompt=True, **kwargs
            )
            ids = torch.tensor([tokenizer(prompt)["input_ids"]])
            generate_kwargs = {"repetition_penalty": penalty} if penalty else {}
            with torch.no_grad():
                out = reference.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=False,
                    max_new_tokens=E2E_NEW_TOKENS,
                    eos_token_id=E2E_GENERATION_CONFIG["eos_token_id"],
                    pad_token_id=E2E_GENERATION_CONFIG["pad_token_id"],
                    output_scores=True,
                    return_dict_in_generate=True,
                    **generate_kwargs,
                )
            generated = out.sequences[0, ids.shape[1]:].tolist()
            smallest = min(smallest, float(torch.stack([top2_margins(s[0]) for s in out.scores]).min()))
            cases.append(
                {
                    "name": name,
                    "prompt": E2E_PROMPT,
                    "enable_thinking": thinking,
                    "repetition_penalty": penalty,
                    "prompt_ids": ids[0].tolist(),
                    "token_ids": generated,
                    "text": tokenizer.decode(generated, skip_special_tokens=True),
                }
            )
        if smallest < MIN_MARGIN:
            continue
        (folder / "reference.json").write_text(json.dumps({"cases": cases}, ensure_ascii=False, indent=1) + "\n")
        return {"name": E2E_NAME, "seed": seed + attempt, "min_greedy_margin": smallest}
    raise RuntimeError(f"no seed gave top-1/top-2 margins above {MIN_MARGIN} for {E2E_NAME}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out-dir", required=True, type=pathlib.Path)
    parser.add_argument("--tokenizer-dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    torch.set_num_threads(2)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "generated_by": "xtask/python/model_reference.py",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "input_ids": INPUT_IDS,
        "fixtures": [make_fixture(args.out_dir, name, seed=1000 * i) for i, name in enumerate(FIXTURES)],
        "e2e": make_e2e_fixture(args.out_dir, args.tokenizer_dir, seed=90000),
    }
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
