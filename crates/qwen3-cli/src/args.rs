//! Command-line arguments of the `qwen3` binary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::device::{DTypeName, DeviceName};

/// Run Qwen3 language models locally.
#[derive(Debug, Parser)]
#[command(name = "qwen3", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the token ids and vocabulary strings of a text.
    Tokenize(TokenizeArgs),
    /// Print the prompt that the model's chat template renders for a conversation.
    Template(TemplateArgs),
    /// Score a sequence of token ids: mean negative log-likelihood and perplexity.
    Score(ScoreArgs),
}

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object.
    Json,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Checkpoint folder in the Hugging Face layout (tokenizer.json,
    /// tokenizer_config.json, ...).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
}

#[derive(Debug, Args)]
pub struct TokenizeArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Text to tokenize. Special tokens written in it, such as <|im_start|> or
    /// <think>, become their single ids, as in transformers.
    #[arg(long, allow_hyphen_values = true)]
    pub text: String,

    /// `text`: one line per token, the id and the vocabulary string separated
    /// by a tab. `json`: {"ids": [...], "tokens": [...]}.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// JSON file with a list of messages, as in the OpenAI and transformers
    /// chat format: [{"role": "user", "content": "..."}, ...].
    #[arg(long, value_name = "FILE.json")]
    pub messages: PathBuf,

    /// JSON file with a list of tool schemas, rendered into the system turn.
    #[arg(long, value_name = "FILE.json")]
    pub tools: Option<PathBuf>,

    /// Turn reasoning off (enable_thinking=false): the prompt then ends with
    /// an empty <think></think> block. By default enable_thinking is not set,
    /// which Qwen3's template treats as on.
    #[arg(long, conflicts_with = "think")]
    pub no_think: bool,

    /// Set enable_thinking=true explicitly.
    #[arg(long)]
    pub think: bool,

    /// Do not append the opening of the assistant turn (add_generation_prompt=false).
    #[arg(long)]
    pub no_generation_prompt: bool,
}

#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Backend that runs the model. Backends not compiled into this binary
    /// give an error naming the cargo feature to enable. [default: ndarray,
    /// or flex when built without ndarray]
    #[arg(long, value_enum)]
    pub device: Option<DeviceName>,

    /// Precision of weights and activations on the device. The checkpoint is
    /// cast to it while loading; ndarray runs f32 only.
    #[arg(long, value_enum, default_value_t = DTypeName::F32)]
    pub dtype: DTypeName,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Token ids to score, comma-separated (for example 151644,872,198). Each
    /// position after the first is predicted from the ones before it; no
    /// chat template is applied and no tokenizer is needed.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1.., required = true)]
    pub input_ids: Vec<u32>,

    /// Also write the logits of every position to this safetensors file: one
    /// f32 tensor named `logits`, shape [sequence, vocab_size].
    #[arg(long, value_name = "FILE.safetensors")]
    pub logits_out: Option<PathBuf>,

    /// `text`: one `key: value` line per figure. `json`: {"tokens", "mean_nll", "perplexity"}.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
