//! The real Qwen3 tokenizer against Hugging Face: every expected value here was
//! written by `tokenizers` and `transformers` (`cargo xtask tokenizer-reference`).

use qwen3_tests::{joined_cases, sha256_file, tokenizer_dir, tokenizer_fixture};
use qwen3_tokenizer::{ChatMessage, Qwen3Tokenizer, TemplateOptions, parse_tools};
use serde_json::Value;

fn load() -> Qwen3Tokenizer {
    match Qwen3Tokenizer::from_dir(tokenizer_dir()) {
        Ok(tokenizer) => tokenizer,
        Err(e) => panic!("failed to load the real tokenizer: {e}"),
    }
}

fn ids_of(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_u64)
                .map(|id| id as u32)
                .collect()
        })
        .unwrap_or_default()
}

fn decode_stream(
    tokenizer: &Qwen3Tokenizer,
    ids: &[u32],
    skip_special_tokens: bool,
) -> (String, Vec<String>) {
    let mut decoder = tokenizer.stream_decoder(skip_special_tokens);
    let mut chunks = Vec::new();
    for &id in ids {
        if let Some(chunk) = decoder.push(id).expect("stream decode") {
            chunks.push(chunk);
        }
    }
    if let Some(chunk) = decoder.finish().expect("stream finish") {
        chunks.push(chunk);
    }
    (chunks.concat(), chunks)
}

#[test]
fn fixtures_match_tokenizer_files() {
    let expected = tokenizer_fixture("expected.json");
    let dir = tokenizer_dir();
    assert_eq!(
        sha256_file(&dir.join("tokenizer.json")),
        expected["tokenizer_json_sha256"]
            .as_str()
            .unwrap_or_default(),
        "tokenizer.json differs from the file the fixtures were made with"
    );
    assert_eq!(
        sha256_file(&dir.join("tokenizer_config.json")),
        expected["tokenizer_config_json_sha256"]
            .as_str()
            .unwrap_or_default(),
        "tokenizer_config.json differs from the file the fixtures were made with"
    );
}

#[test]
fn enough_cases_are_covered() {
    assert!(joined_cases("strings").len() >= 60);
    assert!(joined_cases("chats").len() >= 15);
}

#[test]
fn encode_ids_match_tokenizers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("strings") {
        let text = case["text"].as_str().unwrap_or_default();
        let encoded = tokenizer.encode(text).expect("encode");
        assert_eq!(
            encoded.ids,
            ids_of(&expected["ids"]),
            "ids of case {}",
            case["name"]
        );
    }
}

#[test]
fn encode_tokens_match_tokenizers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("strings") {
        let text = case["text"].as_str().unwrap_or_default();
        let encoded = tokenizer.encode(text).expect("encode");
        let tokens: Vec<String> =
            serde_json::from_value(expected["tokens"].clone()).unwrap_or_default();
        assert_eq!(encoded.tokens, tokens, "tokens of case {}", case["name"]);
    }
}

#[test]
fn decode_matches_transformers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("strings") {
        let ids = ids_of(&expected["ids"]);
        let decoded = tokenizer.decode(&ids, false).expect("decode");
        assert_eq!(
            decoded,
            expected["decoded"].as_str().unwrap_or_default(),
            "decode of case {}",
            case["name"]
        );
    }
}

#[test]
fn decode_skip_special_matches_transformers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("strings") {
        let ids = ids_of(&expected["ids"]);
        let decoded = tokenizer.decode(&ids, true).expect("decode");
        assert_eq!(
            decoded,
            expected["decoded_skip_special"]
                .as_str()
                .unwrap_or_default(),
            "decode with skip_special_tokens of case {}",
            case["name"]
        );
    }
}

#[test]
fn skip_special_drops_im_start_keeps_think() {
    let tokenizer = load();
    let ids = tokenizer
        .encode("<|im_start|>assistant\n<think>\nhmm\n</think>\n\nok<|im_end|>")
        .expect("encode")
        .ids;
    assert!(ids.contains(&151644), "<|im_start|> is one token");
    assert!(ids.contains(&151667), "<think> is one token");
    let decoded = tokenizer.decode(&ids, true).expect("decode");
    assert_eq!(decoded, "assistant\n<think>\nhmm\n</think>\n\nok");
}

#[test]
fn eos_token_id_is_im_end() {
    let tokenizer = load();
    let expected = tokenizer_fixture("expected.json");
    let eos = tokenizer
        .eos_token_id()
        .expect("eos_token is in the vocabulary");
    assert_eq!(eos.map(u64::from), expected["eos_token_id"].as_u64());
    assert_eq!(eos, Some(151645));
}

#[test]
fn stream_decode_equals_full_decode() {
    let tokenizer = load();
    for (case, expected) in joined_cases("strings") {
        let ids = ids_of(&expected["ids"]);
        for skip in [false, true] {
            let (streamed, _) = decode_stream(&tokenizer, &ids, skip);
            assert_eq!(
                streamed,
                tokenizer.decode(&ids, skip).expect("decode"),
                "case {} (skip {skip})",
                case["name"]
            );
        }
    }
}

#[test]
fn stream_decode_of_chat_prompts() {
    let tokenizer = load();
    for (case, expected) in joined_cases("chats") {
        let ids = ids_of(&expected["ids"]);
        let (streamed, _) = decode_stream(&tokenizer, &ids, false);
        assert_eq!(
            streamed,
            expected["prompt"].as_str().unwrap_or_default(),
            "chat {}",
            case["name"]
        );
    }
}

#[test]
fn stream_chunks_never_split_characters() {
    let tokenizer = load();
    let mut split_cases = 0;
    for (case, expected) in joined_cases("strings") {
        let ids = ids_of(&expected["ids"]);
        let full = tokenizer.decode(&ids, false).expect("decode");
        // Tokens that decode to U+FFFD alone end or start inside a character.
        let splits_inside = ids.iter().any(|&id| {
            tokenizer
                .decode(&[id], false)
                .expect("decode")
                .contains(char::REPLACEMENT_CHARACTER)
        });
        if !splits_inside || full.contains(char::REPLACEMENT_CHARACTER) {
            continue;
        }
        split_cases += 1;
        let (_, chunks) = decode_stream(&tokenizer, &ids, false);
        for chunk in chunks {
            assert!(
                !chunk.contains(char::REPLACEMENT_CHARACTER),
                "case {}: chunk {chunk:?}",
                case["name"]
            );
        }
    }
    assert!(
        split_cases >= 5,
        "only {split_cases} cases have tokens that split a UTF-8 character"
    );
}

#[test]
fn stream_finish_flushes_incomplete_character() {
    let tokenizer = load();
    let ids = tokenizer.encode("🫠🫡").expect("encode").ids;
    let cut = &ids[..ids.len() - 1];
    let full = tokenizer.decode(cut, false).expect("decode");
    assert!(
        full.ends_with(char::REPLACEMENT_CHARACTER),
        "the cut must end inside a character: {full:?}"
    );
    let (streamed, _) = decode_stream(&tokenizer, cut, false);
    assert_eq!(streamed, full);
}

#[test]
fn chat_template_matches_transformers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("chats") {
        let name = &case["name"];
        let messages =
            ChatMessage::from_json_list(&case["messages"], "messages").expect("messages");
        let tools = case
            .get("tools")
            .map(|t| parse_tools(&t.to_string(), "tools").expect("tools"));
        let options = TemplateOptions {
            add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap_or(true),
            enable_thinking: case.get("enable_thinking").and_then(Value::as_bool),
        };
        let prompt = tokenizer
            .apply_chat_template(&messages, tools.as_deref(), &options)
            .expect("render");
        assert_eq!(
            prompt,
            expected["prompt"].as_str().unwrap_or_default(),
            "chat {name}"
        );
    }
}

#[test]
fn chat_prompt_ids_match_tokenizers() {
    let tokenizer = load();
    for (case, expected) in joined_cases("chats") {
        let prompt = expected["prompt"].as_str().unwrap_or_default();
        let ids = tokenizer.encode(prompt).expect("encode").ids;
        assert_eq!(ids, ids_of(&expected["ids"]), "chat {}", case["name"]);
    }
}
