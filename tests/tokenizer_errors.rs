//! Bad tokenizer files, templates and message lists give errors that name the
//! file or value, never a panic.

use std::path::Path;

use qwen3_tests::tokenizer_dir;
use qwen3_tokenizer::{ChatMessage, Qwen3Tokenizer, TemplateOptions, TokenizerError, parse_tools};

/// Copies the real tokenizer folder into a temporary folder that a test may damage.
fn copy_of_tokenizer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tokenizer_dir().join(name), dir.path().join(name))
            .expect("copy tokenizer file");
    }
    dir
}

fn load_error(dir: &Path) -> TokenizerError {
    match Qwen3Tokenizer::from_dir(dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e,
    }
}

fn set_template(dir: &Path, template: &str) {
    let path = dir.join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read config"))
            .expect("parse config");
    config["chat_template"] = serde_json::Value::String(template.to_string());
    std::fs::write(&path, config.to_string()).expect("write config");
}

#[test]
fn missing_tokenizer_json() {
    let dir = copy_of_tokenizer();
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    let error = load_error(dir.path());
    assert!(
        matches!(error, TokenizerError::MissingFile { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("tokenizer.json not found"),
        "{error}"
    );
}

#[test]
fn missing_model_folder() {
    let error = load_error(Path::new("/nonexistent/qwen3-model"));
    assert!(
        error
            .to_string()
            .contains("/nonexistent/qwen3-model/tokenizer.json"),
        "{error}"
    );
}

#[test]
fn truncated_tokenizer_json() {
    let dir = copy_of_tokenizer();
    let path = dir.path().join("tokenizer.json");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
    let error = load_error(dir.path());
    assert!(
        matches!(error, TokenizerError::InvalidTokenizer { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn garbage_tokenizer_json() {
    let dir = copy_of_tokenizer();
    std::fs::write(dir.path().join("tokenizer.json"), [0xff, 0xfe, 0x00, 0x42]).expect("write");
    let error = load_error(dir.path());
    assert!(
        matches!(error, TokenizerError::InvalidTokenizer { .. }),
        "{error:?}"
    );
}

#[test]
fn corrupt_tokenizer_config() {
    let dir = copy_of_tokenizer();
    std::fs::write(dir.path().join("tokenizer_config.json"), "{\"eos_token\": ").expect("write");
    let error = load_error(dir.path());
    assert!(
        matches!(error, TokenizerError::InvalidJson { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("tokenizer_config.json"),
        "{error}"
    );
}

#[test]
fn eos_token_not_in_vocabulary() {
    let dir = copy_of_tokenizer();
    let path = dir.path().join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    config["eos_token"] = serde_json::Value::String("<|no_such_token|>".into());
    std::fs::write(&path, config.to_string()).expect("write");
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("encoding does not need eos_token");
    let error = tokenizer.eos_token_id().expect_err("unknown eos_token");
    assert!(error.to_string().contains("<|no_such_token|>"), "{error}");
}

#[test]
fn eos_token_of_wrong_type_names_key() {
    let dir = copy_of_tokenizer();
    let path = dir.path().join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    config["eos_token"] = 5.into();
    std::fs::write(&path, config.to_string()).expect("write");
    let error = load_error(dir.path());
    assert!(
        error.to_string().contains("\"eos_token\" must be a string"),
        "{error}"
    );
}

#[test]
fn template_that_does_not_parse() {
    let dir = copy_of_tokenizer();
    set_template(
        dir.path(),
        "{%- for message in messages %}\n{{ message.content }\n{%- endfor %}",
    );
    let tokenizer =
        Qwen3Tokenizer::from_dir(dir.path()).expect("encoding does not need the template");
    assert!(tokenizer.encode("hi").is_ok());

    let error = tokenizer
        .apply_chat_template(
            &[ChatMessage::user("hi")],
            None,
            &TemplateOptions::default(),
        )
        .expect_err("the template does not parse");
    let TokenizerError::Template { line, .. } = &error else {
        panic!("expected a template error, got {error:?}");
    };
    assert_eq!(*line, Some(2), "{error}");
    assert!(error.to_string().contains("line 2"), "{error}");
    assert!(tokenizer.check_chat_template().is_err());
}

#[test]
fn empty_conversation() {
    let tokenizer = Qwen3Tokenizer::from_dir(tokenizer_dir()).expect("load");
    let error = tokenizer
        .apply_chat_template(&[], None, &TemplateOptions::default())
        .expect_err("no messages");
    assert!(
        matches!(error, TokenizerError::EmptyConversation),
        "{error:?}"
    );
}

#[test]
fn template_error_while_rendering_names_line() {
    let dir = copy_of_tokenizer();
    set_template(
        dir.path(),
        "{{ messages[0].content }}\n{{ raise_exception('only one message allowed') }}",
    );
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("load");
    let error = tokenizer
        .apply_chat_template(
            &[ChatMessage::user("hi")],
            None,
            &TemplateOptions::default(),
        )
        .expect_err("render should fail");
    assert!(
        error.to_string().contains("only one message allowed"),
        "{error}"
    );
    assert!(error.to_string().contains("line 2"), "{error}");
}

#[test]
fn chat_template_jinja_file_takes_precedence() {
    let dir = copy_of_tokenizer();
    std::fs::write(
        dir.path().join("chat_template.jinja"),
        "{{ messages[0].content | upper }}",
    )
    .expect("write");
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("load");
    let prompt = tokenizer
        .apply_chat_template(
            &[ChatMessage::user("hi")],
            None,
            &TemplateOptions::default(),
        )
        .expect("render");
    assert_eq!(prompt, "HI");
}

#[test]
fn missing_chat_template() {
    let dir = copy_of_tokenizer();
    let path = dir.path().join("tokenizer_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("parse");
    config
        .as_object_mut()
        .expect("object")
        .remove("chat_template");
    std::fs::write(&path, config.to_string()).expect("write");
    let tokenizer =
        Qwen3Tokenizer::from_dir(dir.path()).expect("a tokenizer without template still loads");
    let error = tokenizer
        .apply_chat_template(
            &[ChatMessage::user("hi")],
            None,
            &TemplateOptions::default(),
        )
        .expect_err("render should fail");
    assert!(
        matches!(error, TokenizerError::MissingTemplate { .. }),
        "{error:?}"
    );
}

#[test]
fn messages_not_a_list() {
    let error = ChatMessage::parse_list(
        r#"{"role": "user", "content": "hi"}"#,
        "messages file m.json",
    )
    .expect_err("an object is not a list");
    assert!(
        error.to_string().contains("messages file m.json"),
        "{error}"
    );
    assert!(
        error.to_string().contains("expected a JSON list"),
        "{error}"
    );
}

#[test]
fn messages_invalid_json() {
    let error = ChatMessage::parse_list("[{\"role\": ", "messages").expect_err("invalid JSON");
    assert!(
        matches!(error, TokenizerError::InvalidMessages { .. }),
        "{error:?}"
    );
}

#[test]
fn message_without_role() {
    let error = ChatMessage::parse_list(
        r#"[{"role": "user", "content": "a"}, {"content": "b"}]"#,
        "messages",
    )
    .expect_err("missing role");
    assert!(error.to_string().contains("message 1"), "{error}");
    assert!(error.to_string().contains("\"role\" is missing"), "{error}");
}

#[test]
fn message_that_is_a_string() {
    let error = ChatMessage::parse_list(r#"["hello"]"#, "messages").expect_err("not an object");
    assert!(error.to_string().contains("message 0"), "{error}");
}

#[test]
fn message_content_of_wrong_type() {
    let error = ChatMessage::parse_list(r#"[{"role": "user", "content": 42}]"#, "messages")
        .expect_err("number");
    assert!(
        error.to_string().contains("\"content\" must be a string"),
        "{error}"
    );
}

#[test]
fn message_with_image_part() {
    let json =
        r#"[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]"#;
    let error = ChatMessage::parse_list(json, "messages").expect_err("image part");
    assert!(error.to_string().contains("content[0]"), "{error}");
}

#[test]
fn message_without_content() {
    let error = ChatMessage::parse_list(r#"[{"role": "user", "contnet": "hi"}]"#, "messages")
        .expect_err("typo");
    assert!(
        error.to_string().contains("\"content\" is missing"),
        "{error}"
    );
    assert!(error.to_string().contains("contnet"), "{error}");
}

#[test]
fn assistant_tool_call_without_content() {
    let json =
        r#"[{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]"#;
    let messages = ChatMessage::parse_list(json, "messages")
        .expect("content may be omitted beside tool_calls");
    assert_eq!(messages[0].content, "");
}

#[test]
fn tool_call_without_arguments() {
    let json =
        r#"[{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]}]"#;
    let error = ChatMessage::parse_list(json, "messages").expect_err("no arguments");
    assert!(error.to_string().contains("tool_calls[0]"), "{error}");
}

#[test]
fn tool_call_without_name() {
    let json = r#"[{"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]}]"#;
    let error = ChatMessage::parse_list(json, "messages").expect_err("no name");
    assert!(error.to_string().contains("tool_calls[0]"), "{error}");
}

#[test]
fn tools_not_a_list_of_objects() {
    let error = parse_tools(r#"["get_weather"]"#, "tools file t.json").expect_err("string tool");
    assert!(error.to_string().contains("tool 0"), "{error}");
    assert!(error.to_string().contains("tools file t.json"), "{error}");
}
