"""Run the workload of `qwen3 bench` in transformers and print the same JSON figures.

One run: load the checkpoint, prefill the prompt with the KV cache, then
decode greedily, ignoring end-of-sequence, until --new-tokens tokens exist.
The first token comes from the prefill (time to first token); decode speed is
measured over the others. Only the last position gets logits, as in qwen3-burn.
"""

import argparse
import json
import resource
import statistics
import time

import torch
from transformers import DynamicCache, Qwen3ForCausalLM

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def one_run(model_dir: str, dtype: torch.dtype, prompt: list[int], new_tokens: int) -> dict:
    start = time.perf_counter()
    model = Qwen3ForCausalLM.from_pretrained(model_dir, dtype=dtype).eval()
    load_s = time.perf_counter() - start

    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        ids = torch.tensor([prompt])
        start = time.perf_counter()
        out = model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        token = out.logits[0, -1].argmax()
        ttft_s = time.perf_counter() - start

        start = time.perf_counter()
        for _ in range(new_tokens - 1):
            out = model(input_ids=token.view(1, 1), cache=cache, use_cache=True, logits_to_keep=1)
            token = out.logits[0, -1].argmax()
        decode_s = time.perf_counter() - start

    return {
        "load_s": load_s,
        "ttft_s": ttft_s,
        "prefill_tok_s": len(prompt) / ttft_s,
        "decode_tok_s": (new_tokens - 1) / decode_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--input-ids", required=True, help="comma-separated prompt ids")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    prompt = [int(i) for i in args.input_ids.split(",")]
    runs = [one_run(args.model, DTYPES[args.dtype], prompt, args.new_tokens) for _ in range(args.runs)]

    report = {key: spread([run[key] for run in runs]) for key in runs[0]}
    # ru_maxrss is in KiB on Linux: the peak resident set, mapped file pages included.
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report.update(
        model=args.model,
        dtype=args.dtype,
        device="cpu",
        threads=torch.get_num_threads(),
        prompt_tokens=len(prompt),
        new_tokens=args.new_tokens,
        runs=args.runs,
        versions={"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
