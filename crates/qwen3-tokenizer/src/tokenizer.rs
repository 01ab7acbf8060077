//! The Qwen3 tokenizer: `tokenizer.json` and `tokenizer_config.json` of a checkpoint.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::config::{TokenizerConfig, io_error};
use crate::error::TokenizerError;
use crate::messages::ChatMessage;
use crate::stream::StreamDecoder;
use crate::template::{ChatTemplate, TemplateOptions};

/// File name of the Hugging Face tokenizer in a checkpoint folder.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Token ids and their vocabulary strings, as `Encoding.ids` and `Encoding.tokens`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Byte-level vocabulary strings, one per id (a space is `Ġ`, a newline `Ċ`).
    pub tokens: Vec<String>,
}

/// A loaded Qwen3 tokenizer with its chat template.
#[derive(Debug)]
pub struct Qwen3Tokenizer {
    tokenizer: Tokenizer,
    config: TokenizerConfig,
    /// The compiled template, or why there is none. Encoding and decoding work
    /// without a template, so its errors surface only when it is applied.
    template: Result<ChatTemplate, TemplateUnavailable>,
    dir: PathBuf,
}

/// Reason a tokenizer has no usable chat template.
#[derive(Debug, Clone)]
enum TemplateUnavailable {
    Missing,
    Invalid {
        source_name: String,
        line: Option<usize>,
        message: String,
    },
}

impl Qwen3Tokenizer {
    /// Loads `tokenizer.json` and `tokenizer_config.json` (and
    /// `chat_template.jinja` when present) from a checkpoint folder.
    ///
    /// The chat template is compiled here, but a template that is missing or
    /// does not parse fails only [`apply_chat_template`](Self::apply_chat_template)
    /// and [`check_chat_template`](Self::check_chat_template), as in
    /// `transformers`: encoding and decoding do not need it.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let dir = dir.as_ref();
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        let bytes = std::fs::read(&tokenizer_path).map_err(|e| io_error(&tokenizer_path, e))?;
        let tokenizer =
            Tokenizer::from_bytes(&bytes).map_err(|e| TokenizerError::InvalidTokenizer {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;

        let config = TokenizerConfig::from_dir(dir)?;
        let template = match config.chat_template {
            None => Err(TemplateUnavailable::Missing),
            Some(_) => ChatTemplate::from_config(&config).map_err(|error| match error {
                TokenizerError::Template {
                    source_name,
                    line,
                    message,
                } => TemplateUnavailable::Invalid {
                    source_name,
                    line,
                    message,
                },
                other => TemplateUnavailable::Invalid {
                    source_name: config.chat_template_source.clone(),
                    line: None,
                    message: other.to_string(),
                },
            }),
        };
        if let Err(TemplateUnavailable::Invalid {
            source_name,
            line,
            message,
        }) = &template
        {
            tracing::warn!(source = %source_name, ?line, %message, "chat template does not compile");
        }

        tracing::debug!(
            dir = %dir.display(),
            vocab_size = tokenizer.get_vocab_size(true),
            has_chat_template = template.is_ok(),
            "tokenizer loaded"
        );
        Ok(Qwen3Tokenizer {
            tokenizer,
            config,
            template,
            dir: dir.to_path_buf(),
        })
    }

    /// Encodes text as `tokenizer(text)` does in `transformers`: special tokens
    /// written in the text (`<|im_start|>`, `<think>`) become their ids, and no
    /// BOS token is added because Qwen3 has none.
    pub fn encode(&self, text: &str) -> Result<Encoded, TokenizerError> {
        let encoding =
            self.tokenizer
                .encode(text, true)
                .map_err(|e| TokenizerError::Tokenizers {
                    operation: "encode",
                    message: e.to_string(),
                })?;
        Ok(Encoded {
            ids: encoding.get_ids().to_vec(),
            tokens: encoding.get_tokens().to_vec(),
        })
    }

    /// Decodes ids to text. With `skip_special_tokens`, tokens marked special
    /// (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`) are dropped and added
    /// tokens that are not special (`<think>`, `</think>`) are kept, as in
    /// `transformers`. Ids outside the vocabulary are dropped, as the
    /// `tokenizers` library does.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Tokenizers {
                operation: "decode",
                message: e.to_string(),
            })
    }

    /// Starts an incremental decoder for ids that arrive one at a time.
    pub fn stream_decoder(&self, skip_special_tokens: bool) -> StreamDecoder<'_> {
        StreamDecoder::new(self, skip_special_tokens)
    }

    /// Renders messages (and tool schemas) with the checkpoint's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        tools: Option<&[Value]>,
        options: &TemplateOptions,
    ) -> Result<String, TokenizerError> {
        if messages.is_empty() {
            return Err(TokenizerError::EmptyConversation);
        }
        self.chat_template()?.render(messages, tools, options)
    }

    /// Fails as [`apply_chat_template`](Self::apply_chat_template) would when
    /// the template is missing or does not parse.
    pub fn check_chat_template(&self) -> Result<(), TokenizerError> {
        self.chat_template().map(|_| ())
    }

    fn chat_template(&self) -> Result<&ChatTemplate, TokenizerError> {
        match &self.template {
            Ok(template) => Ok(template),
            Err(TemplateUnavailable::Missing) => Err(TokenizerError::MissingTemplate {
                path: self.config.chat_template_source.clone().into(),
            }),
            Err(TemplateUnavailable::Invalid {
                source_name,
                line,
                message,
            }) => Err(TokenizerError::Template {
                source_name: source_name.clone(),
                line: *line,
                message: message.clone(),
            }),
        }
    }

    /// Returns the id of `eos_token` from `tokenizer_config.json` (151645,
    /// `<|im_end|>`, for Qwen3), `None` when the config names none, and an
    /// error when the token is not in the vocabulary.
    pub fn eos_token_id(&self) -> Result<Option<u32>, TokenizerError> {
        let Some(token) = &self.config.eos_token else {
            return Ok(None);
        };
        match self.tokenizer.token_to_id(token) {
            Some(id) => Ok(Some(id)),
            None => Err(TokenizerError::UnknownToken {
                field: "eos_token".into(),
                token: token.clone(),
                path: self.dir.join(crate::config::TOKENIZER_CONFIG_FILE),
            }),
        }
    }

    /// Returns the id of a token string, including added tokens such as `</think>`.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Returns the vocabulary string of an id.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// Returns the number of ids the tokenizer can produce, added tokens included (151,669 for Qwen3).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Returns the parsed `tokenizer_config.json`.
    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// Returns the folder the files were loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.tokenizer
    }
}
