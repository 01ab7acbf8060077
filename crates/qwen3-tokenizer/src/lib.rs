//! Text side of Qwen3: the tokenizer, the chat template, streaming detokenization
//! and the split between reasoning and answer.
//!
//! It reads `tokenizer.json` and `tokenizer_config.json` from a Hugging Face
//! checkpoint folder and gives the same token ids, decoded text and rendered
//! prompts as `transformers`. It knows nothing about tensors or model weights:
//! the `qwen3-model` crate takes the ids it produces.
//!
//! ```no_run
//! use qwen3_tokenizer::{ChatMessage, Qwen3Tokenizer, TemplateOptions};
//!
//! let tokenizer = Qwen3Tokenizer::from_dir("Qwen3-4B")?;
//! let messages = [ChatMessage::user("你会说中文吗？")];
//! let prompt = tokenizer.apply_chat_template(&messages, None, &TemplateOptions::default())?;
//! let ids = tokenizer.encode(&prompt)?.ids;
//! # Ok::<(), qwen3_tokenizer::TokenizerError>(())
//! ```

mod config;
mod error;
mod messages;
mod reasoning;
mod stream;
mod template;
mod tojson;
mod tokenizer;

pub use config::{CHAT_TEMPLATE_FILE, TOKENIZER_CONFIG_FILE, TokenizerConfig};
pub use error::TokenizerError;
pub use messages::{ChatMessage, parse_tools};
pub use reasoning::{ReasoningSplitter, Segment, SplitOutput, THINK_END, THINK_START};
pub use stream::StreamDecoder;
pub use template::{ChatTemplate, TemplateOptions};
pub use tokenizer::{Encoded, Qwen3Tokenizer, TOKENIZER_FILE};
