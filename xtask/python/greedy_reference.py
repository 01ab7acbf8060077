"""Record the greedy tokens transformers generates on a checkpoint, with the logit margins.

For each of --new-tokens steps (prefill, then one token at a time with the KV
cache) the file gets the argmax token, the largest logit and its margin over
the second largest. A runtime fed the same tokens (teacher forcing) should
pick the same argmax wherever the margin is clearly above its rounding error.
"""

import argparse
import json
import pathlib

import torch
from transformers import DynamicCache, Qwen3ForCausalLM

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


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

    tokens, margins, top_logits = [], [], []
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        ids = torch.tensor([prompt])
        for _ in range(args.new_tokens):
            logits = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1).logits
            top = logits[0, -1].float().topk(2)
            tokens.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            top_logits.append(float(top.values[0]))
            ids = top.indices[:1].view(1, 1)

    reference = {
        "dtype": args.dtype,
        "threads": args.threads,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
        "prompt_ids": prompt,
        "tokens": tokens,
        "margins": margins,
        "top_logits": top_logits,
    }
    staging = args.out.with_name(args.out.name + ".partial")
    staging.write_text(json.dumps(reference, indent=1) + "\n")
    staging.rename(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
