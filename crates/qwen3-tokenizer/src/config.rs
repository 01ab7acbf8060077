//! `tokenizer_config.json`: special tokens and the chat template.

use std::path::{Path, PathBuf};

use serde::Deserialize;
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
    /// Where `chat_template` was read from, for error messages.
    pub chat_template_source: String,
}

/// A special token in `tokenizer_config.json`: a plain string or an
/// `AddedToken` object with a `content` field.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenEntry {
    Text(String),
    Object { content: String },
}

/// `chat_template` in `tokenizer_config.json`: one template, or a list of named ones.
#[derive(Deserialize)]
#[serde(untagged)]
enum TemplateEntry {
    Single(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

#[derive(Deserialize)]
struct RawConfig {
    bos_token: Option<TokenEntry>,
    eos_token: Option<TokenEntry>,
    pad_token: Option<TokenEntry>,
    unk_token: Option<TokenEntry>,
    chat_template: Option<TemplateEntry>,
}

impl TokenEntry {
    fn into_text(self) -> String {
        match self {
            TokenEntry::Text(text) => text,
            TokenEntry::Object { content } => content,
        }
    }
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
        if !value.is_object() {
            return Err(invalid("expected a JSON object at the top level".into()));
        }
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| {
            invalid(format!(
                "{e} (special tokens must be strings or objects with \"content\"; \
                 chat_template must be a string or a list of {{\"name\", \"template\"}})"
            ))
        })?;

        let chat_template = match raw.chat_template {
            None => None,
            Some(TemplateEntry::Single(template)) => Some(template),
            Some(TemplateEntry::Named(templates)) => {
                Some(select_default_template(templates, path)?)
            }
        };

        Ok(TokenizerConfig {
            bos_token: raw.bos_token.map(TokenEntry::into_text),
            eos_token: raw.eos_token.map(TokenEntry::into_text),
            pad_token: raw.pad_token.map(TokenEntry::into_text),
            unk_token: raw.unk_token.map(TokenEntry::into_text),
            chat_template,
            chat_template_source: path.display().to_string(),
        })
    }
}

/// Picks the template named `default` from a list, as `transformers` does when
/// no template name is requested.
fn select_default_template(
    templates: Vec<NamedTemplate>,
    path: &Path,
) -> Result<String, TokenizerError> {
    let names: Vec<String> = templates.iter().map(|t| t.name.clone()).collect();
    templates
        .into_iter()
        .find(|t| t.name == "default")
        .map(|t| t.template)
        .ok_or_else(|| TokenizerError::InvalidJson {
            path: path.to_path_buf(),
            message: format!(
                "chat_template lists the templates {names:?} but none is named \"default\""
            ),
        })
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
