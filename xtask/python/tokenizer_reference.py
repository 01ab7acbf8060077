"""Write the expected tokenizer and chat-template outputs from Hugging Face.

Reads the cases in tests/fixtures/tokenizer/cases.json and records, for the
real Qwen3 tokenizer files, what `tokenizers` and `transformers` produce:
ids, tokens and decodes of each string, and the rendered prompt (and its ids)
of each chat. Run it through `cargo xtask tokenizer-reference`, which creates
the virtual environment with the pinned versions.
"""

import argparse
import hashlib
import json
import pathlib

import tokenizers
import transformers
from transformers import AutoTokenizer


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def normalize_message(message: dict) -> dict:
    """Apply the two input conventions of qwen3-tokenizer that transformers lacks.

    transformers raises on `content: null` (sent by OpenAI clients beside
    tool_calls) and on a list of text parts; qwen3-tokenizer renders them as ""
    and as the joined text, so the reference renders the same normalized input.
    """
    message = dict(message)
    content = message.get("content")
    if content is None:
        message["content"] = ""
    elif isinstance(content, list):
        message["content"] = "".join(part["text"] for part in content)
    return message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokenizer-dir", required=True, type=pathlib.Path)
    parser.add_argument("--cases", required=True, type=pathlib.Path)
    parser.add_argument("--out", required=True, type=pathlib.Path)
    args = parser.parse_args()

    cases = json.loads(args.cases.read_text(encoding="utf-8"))
    raw = tokenizers.Tokenizer.from_file(str(args.tokenizer_dir / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(args.tokenizer_dir))

    strings = []
    for case in cases["strings"]:
        encoding = raw.encode(case["text"])
        ids = encoding.ids
        # transformers' tokenizer must agree with the raw tokenizers library.
        assert hf(case["text"])["input_ids"] == ids, case["name"]
        strings.append(
            {
                "name": case["name"],
                "ids": ids,
                "tokens": encoding.tokens,
                "decoded": hf.decode(ids, skip_special_tokens=False),
                "decoded_skip_special": hf.decode(ids, skip_special_tokens=True),
            }
        )

    chats = []
    for case in cases["chats"]:
        kwargs = {"add_generation_prompt": case["add_generation_prompt"]}
        if "enable_thinking" in case:
            kwargs["enable_thinking"] = case["enable_thinking"]
        messages = [normalize_message(m) for m in case["messages"]]
        prompt = hf.apply_chat_template(messages, tools=case.get("tools"), tokenize=False, **kwargs)
        chats.append({"name": case["name"], "prompt": prompt, "ids": raw.encode(prompt).ids})

    expected = {
        "generated_by": "xtask/python/tokenizer_reference.py",
        "tokenizers_version": tokenizers.__version__,
        "transformers_version": transformers.__version__,
        "tokenizer_json_sha256": sha256(args.tokenizer_dir / "tokenizer.json"),
        "tokenizer_config_json_sha256": sha256(args.tokenizer_dir / "tokenizer_config.json"),
        "eos_token_id": hf.eos_token_id,
        "strings": strings,
        "chats": chats,
    }
    args.out.write_text(json.dumps(expected, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
