//! `tokenizer_config.json`: special tokens and the chat template.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::TokenizerError;

/// File name of the tokenizer configuration in a checkpoint folder.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// File that transformers 4.43 and later write the chat template to; it takes
/// precedence over the `chat_template` key, as in `transformers`.
pub const CHAT_TEMPLATE_FILE: &str = "chat_template.jinja";

/// The parts of `tokenizer_config.json` that inference uses.
#[derive(Debug, Clone, Default)]
pub struct TokenizerConfig {
    /// `bos_token`, as text (Qwen3 has none).
    pub bos_token: Option<String>,
    /// `eos_token`, as text (`<|im_end|>` for Qwen3 chat models).
    pub eos_token: Option<String>,
    /// `pad_token`, as text.
    pub pad_token: Option<String>,
    /// `unk_token`, as text.
    pub unk_token: Option<String>,
    /// The Jinja chat template source.
    pub chat_template: Option<String>,
    /// Path `chat_template` was read from, for error messages.
    pub chat_template_source: String,
}

impl TokenizerConfig {
    /// Reads `tokenizer_config.json` from `dir`, and `chat_template.jinja` when it exists.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let path = dir.join(TOKENIZER_CONFIG_FILE);
        let text = read_to_string(&path)?;
        let mut config = Self::from_json_str(&text, &path)?;

        let template_path = dir.join(CHAT_TEMPLATE_FILE);
        if template_path.is_file() {
            config.chat_template = Some(read_to_string(&template_path)?);
            config.chat_template_source = template_path.display().to_string();
        }
        Ok(config)
    }

    /// Parses the text of a `tokenizer_config.json`; `path` is only used in errors.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self, TokenizerError> {
        let invalid = |message: String| TokenizerError::InvalidJson {
            path: path.to_path_buf(),
            message,
        };

        let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(invalid("expected a JSON object at the top level".into()));
        };

        let token = |key: &str| special_token(object.get(key), key).map_err(&invalid);
        let chat_template = match object.get("chat_template") {
            None | Some(Value::Null) => None,
            Some(Value::String(template)) => Some(template.clone()),
            Some(Value::Array(entries)) => {
                Some(select_default_template(entries).map_err(&invalid)?)
            }
            Some(other) => {
                return Err(invalid(format!(
                    "\"chat_template\" must be a string or a list of {{\"name\", \"template\"}} objects, found {other}"
                )));
            }
        };

        Ok(TokenizerConfig {
            bos_token: token("bos_token")?,
            eos_token: token("eos_token")?,
            pad_token: token("pad_token")?,
            unk_token: token("unk_token")?,
            chat_template,
            chat_template_source: path.display().to_string(),
        })
    }
}

/// Reads a special token: a string, or an `AddedToken` object with a `content` string.
fn special_token(value: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Object(token)) => match token.get("content") {
            Some(Value::String(text)) => Ok(Some(text.clone())),
            _ => Err(format!(
                "\"{key}\" is an object without a \"content\" string"
            )),
        },
        Some(other) => Err(format!(
            "\"{key}\" must be a string or an object with \"content\", found {other}"
        )),
    }
}

/// Picks the template named `default` from a list, as `transformers` does when
/// no template name is requested.
fn select_default_template(entries: &[Value]) -> Result<String, String> {
    let mut names = Vec::new();
    for entry in entries {
        let name = entry.get("name").and_then(Value::as_str);
        let template = entry.get("template").and_then(Value::as_str);
        match (name, template) {
            (Some("default"), Some(template)) => return Ok(template.to_string()),
            (Some(name), Some(_)) => names.push(name.to_string()),
            _ => {
                return Err(format!(
                    "\"chat_template\" entries must be {{\"name\": string, \"template\": string}} objects, found {entry}"
                ));
            }
        }
    }
    Err(format!(
        "chat_template lists the templates {names:?} but none is named \"default\""
    ))
}

pub(crate) fn read_to_string(path: &Path) -> Result<String, TokenizerError> {
    std::fs::read_to_string(path).map_err(|source| io_error(path, source))
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> TokenizerError {
    if source.kind() == std::io::ErrorKind::NotFound {
        TokenizerError::MissingFile {
            path: PathBuf::from(path),
        }
    } else {
        TokenizerError::Io {
            path: PathBuf::from(path),
            source,
        }
    }
}
