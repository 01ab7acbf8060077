//! The chat template: Jinja source from the checkpoint, rendered with minijinja
//! in the environment that `transformers` gives it.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value as JinjaValue};
use serde_json::{Map, Value};

use crate::config::TokenizerConfig;
use crate::error::TokenizerError;
use crate::messages::ChatMessage;
use crate::tojson::tojson_filter;

const TEMPLATE_NAME: &str = "chat_template";

/// Options of one rendering, named as in `apply_chat_template`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOptions {
    /// Append the opening of an assistant turn (`<|im_start|>assistant\n`).
    pub add_generation_prompt: bool,
    /// `Some(false)` turns Qwen3's reasoning off; `None` leaves the variable
    /// undefined, which the template treats as on.
    pub enable_thinking: Option<bool>,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        TemplateOptions {
            add_generation_prompt: true,
            enable_thinking: None,
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    source_name: String,
    special_tokens: Map<String, Value>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_name", &self.source_name)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; `source_name` (a file path) appears in errors.
    ///
    /// The environment mirrors `transformers`: `trim_blocks` and
    /// `lstrip_blocks` on, loop controls, Python string methods, a `tojson`
    /// that matches `json.dumps(ensure_ascii=False)`, and `raise_exception`.
    pub fn new(source: &str, source_name: &str) -> Result<Self, TokenizerError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| template_error(source_name, &e))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson_filter);
        env.add_function("raise_exception", raise_exception);

        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| template_error(source_name, &e))?;

        Ok(ChatTemplate {
            env,
            source_name: source_name.to_string(),
            special_tokens: Map::new(),
        })
    }

    /// Compiles the template of a tokenizer configuration and passes its
    /// special tokens (`eos_token`, ...) to the template as `transformers` does.
    pub fn from_config(config: &TokenizerConfig) -> Result<Self, TokenizerError> {
        let Some(source) = &config.chat_template else {
            return Err(TokenizerError::MissingTemplate {
                path: config.chat_template_source.clone().into(),
            });
        };
        let mut template = Self::new(source, &config.chat_template_source)?;

        let tokens = [
            ("bos_token", &config.bos_token),
            ("eos_token", &config.eos_token),
            ("pad_token", &config.pad_token),
            ("unk_token", &config.unk_token),
        ];
        for (name, token) in tokens {
            if let Some(token) = token {
                template
                    .special_tokens
                    .insert(name.into(), Value::String(token.clone()));
            }
        }
        Ok(template)
    }

    /// Renders a conversation into the prompt text.
    ///
    /// `tools` are JSON schemas; `None` and an empty list both render as no tools.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Value]>,
        options: &TemplateOptions,
    ) -> Result<String, TokenizerError> {
        let mut context = self.special_tokens.clone();
        let messages: Vec<Value> = messages
            .iter()
            .map(ChatMessage::to_template_value)
            .collect();
        context.insert("messages".into(), Value::Array(messages));
        context.insert(
            "tools".into(),
            tools.map_or(Value::Null, |t| Value::Array(t.to_vec())),
        );
        context.insert(
            "add_generation_prompt".into(),
            Value::Bool(options.add_generation_prompt),
        );
        if let Some(enable_thinking) = options.enable_thinking {
            context.insert("enable_thinking".into(), Value::Bool(enable_thinking));
        }

        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| template_error(&self.source_name, &e))?;
        template
            .render(JinjaValue::from(Serde(&context)))
            .map_err(|e| template_error(&self.source_name, &e))
    }
}

/// `raise_exception(message)`: lets a template reject its input with a message.
fn raise_exception(message: String) -> Result<JinjaValue, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

fn template_error(source_name: &str, error: &Error) -> TokenizerError {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(&format!(" ({cause})"));
        source = cause.source();
    }
    TokenizerError::Template {
        source_name: source_name.to_string(),
        line: error.line(),
        message,
    }
}
