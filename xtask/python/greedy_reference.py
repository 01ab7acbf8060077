"""Record the greedy tokens transformers generates on a checkpoint, with the logit margins.

For each of --new-tokens steps (prefill, then one token at a time with the KV
cache) the file gets the argmax token, the largest logit and its margin over
the second largest. A runtime fed the same tokens (teacher forcing) should
pick the same argmax wherever the margin is clearly above its rounding error.

In bf16 and f16 the file also records the argmax transformers itself computes at
each step in two other ways, fed the same tokens: in the same dtype
without the KV cache (the whole sequence at every step), and in f32 on the
same weights. Where these disagree with the greedy token, the step is decided
by the rounding of the reference itself, not by the model.
"""

import argparse
import json
import pathlib

import torch
from transformers import DynamicCache, Qwen3ForCausalLM

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def top_two(logits: torch.Tensor) -> tuple[int, float, float]:
    """Returns the argmax of a logit row, its logit and its margin over the runner-up."""
    top = logits.float().topk(2)
    return int(top.indices[0]), float(top.values[0]), float(top.values[0] - top.values[1])


def greedy(model, prompt: list[int], new_tokens: int) -> list[tuple[int, float, float]]:
    """Generates greedily with the KV cache, one token per step after the prompt."""
    steps = []
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([prompt])
    for _ in range(new_tokens):
        logits = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1).logits
        steps.append(top_two(logits[0, -1]))
        ids = torch.tensor([[steps[-1][0]]])
    return steps


def forced_with_cache(model, prompt: list[int], tokens: list[int]) -> list[tuple[int, float, float]]:
    """Computes the top two logits of each step with the KV cache, fed `tokens` instead of its own picks."""
    steps = []
    cache = DynamicCache(config=model.config)
    ids = torch.tensor([prompt])
    for token in tokens:
        logits = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1).logits
        steps.append(top_two(logits[0, -1]))
        ids = torch.tensor([[token]])
    return steps


def forced_without_cache(model, prompt: list[int], tokens: list[int]) -> list[tuple[int, float, float]]:
    """Computes the top two logits of each step from the whole sequence so far, with no KV cache."""
    steps = []
    sequence = list(prompt)
    for token in tokens:
        logits = model(input_ids=torch.tensor([sequence]), use_cache=False, logits_to_keep=1).logits
        steps.append(top_two(logits[0, -1]))
        sequence.append(token)
    return steps


def as_record(steps: list[tuple[int, float, float]]) -> dict:
    return {"tokens": [s[0] for s in steps], "margins": [s[2] for s in steps]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input-ids", required=True, help="comma-separated prompt ids")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    prompt = [int(i) for i in args.input_ids.split(",")]
    model = Qwen3ForCausalLM.from_pretrained(args.model, dtype=DTYPES[args.dtype]).eval()

    with torch.inference_mode():
        steps = greedy(model, prompt, args.new_tokens)
        tokens = [s[0] for s in steps]
        cross_checks = {}
        if args.dtype != "f32":
            cross_checks[f"{args.dtype}_without_cache"] = as_record(forced_without_cache(model, prompt, tokens))
            del model
            f32 = Qwen3ForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
            cross_checks["f32_same_weights"] = as_record(forced_with_cache(f32, prompt, tokens))

    reference = {
        "dtype": args.dtype,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "prompt_ids": prompt,
        "tokens": tokens,
        "margins": [s[2] for s in steps],
        "top_logits": [s[1] for s in steps],
    }
    if cross_checks:
        reference["cross_checks"] = cross_checks
    staging = args.out.with_name(args.out.name + ".partial")
    staging.write_text(json.dumps(reference, indent=1) + "\n")
    staging.rename(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
