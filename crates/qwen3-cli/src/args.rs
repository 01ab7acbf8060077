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
    /// Answer one prompt, streaming the text to stdout and statistics to stderr.
    Generate(GenerateArgs),
    /// Talk with the model in the terminal, keeping the conversation history.
    Chat(ChatArgs),
    /// Measure load time, time to first token, prefill and decode speed and
    /// peak memory on a fixed greedy workload.
    Bench(BenchArgs),
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
    /// Checkpoint folder in the Hugging Face layout (config.json, safetensors
    /// files, tokenizer.json, tokenizer_config.json), or a Hugging Face model
    /// id such as Qwen/Qwen3-4B, looked up in the local Hugging Face cache
    /// (HF_HOME) and downloaded when missing unless HF_HUB_OFFLINE=1.
    #[arg(long, value_name = "DIR|ID")]
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
    /// give an error naming the cargo feature to enable. [default: flex, or
    /// ndarray when built without flex]
    #[arg(long, value_enum)]
    pub device: Option<DeviceName>,

    /// Precision of the weights. The checkpoint is cast to it while loading
    /// unless it already has it. On the CPU the activations are f32 whatever
    /// the choice. On a GPU they take this dtype, with norms, softmax and the
    /// residual stream in f32. [default:
    /// the checkpoint's dtype on the CPU; on a GPU bf16 where it has bf16
    /// arithmetic, otherwise f16]
    #[arg(long, value_enum)]
    pub dtype: Option<DTypeName>,

    /// CPU threads for the matrix products and burn's CPU backends.
    /// [default: one per core, or RAYON_NUM_THREADS]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Token ids to score, comma-separated (for example 151644,872,198). Each
    /// position after the first is predicted from the ones before it; no
    /// chat template is applied and no tokenizer is needed.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1.., required = true,
        value_parser = parse_token_id)]
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

#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Softmax temperature (> 0). [default: generation_config.json, or 0.6;
    /// 0.7 with --no-think]
    #[arg(long)]
    pub temperature: Option<f32>,

    /// Sample among the K most likely tokens; 0 keeps all. [default:
    /// generation_config.json, or 20]
    #[arg(long, value_name = "K")]
    pub top_k: Option<usize>,

    /// Sample among the most likely tokens whose probabilities sum to P
    /// (0 < P <= 1). [default: generation_config.json, or 0.95; 0.8 with --no-think]
    #[arg(long, value_name = "P")]
    pub top_p: Option<f32>,

    /// Drop tokens less likely than P times the most likely one (0 <= P < 1).
    /// [default: generation_config.json, or 0]
    #[arg(long, value_name = "P")]
    pub min_p: Option<f32>,

    /// Divide positive logits and multiply negative logits of tokens in the
    /// prompt or output by this factor, as transformers does; 1 is off.
    /// [default: generation_config.json, or 1]
    #[arg(long, value_name = "FACTOR")]
    pub repetition_penalty: Option<f32>,

    /// Subtract this from the logit of every token already generated, as the
    /// OpenAI API does; 0 is off. [default: 0]
    #[arg(long, value_name = "PENALTY", allow_negative_numbers = true)]
    pub presence_penalty: Option<f32>,

    /// Seed of the sampler; the same seed, model and prompt give the same
    /// output. [default: random, printed with the statistics]
    #[arg(long)]
    pub seed: Option<u64>,

    /// Take the most likely token at each step (after the penalties) instead
    /// of sampling. Qwen3's model card advises against it: it tends to repeat.
    #[arg(long)]
    pub greedy: bool,
}

#[derive(Debug, Args)]
pub struct GenerationLimitArgs {
    /// Maximum number of tokens to generate, reasoning included (at least 1).
    #[arg(long, value_name = "N", default_value_t = 2048, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_new_tokens: usize,

    /// KV cache size in tokens (prompt and answer together), at most the
    /// model's max_position_embeddings. [default: prompt length plus
    /// --max-new-tokens, capped at max_position_embeddings]
    #[arg(long, value_name = "TOKENS")]
    pub max_context: Option<usize>,

    /// End the answer where this text appears (not printed); repeatable.
    #[arg(long = "stop", value_name = "TEXT")]
    pub stop: Vec<String>,

    /// After N tokens (at least 1) of reasoning without </think>, insert
    /// "\n</think>\n\n" and continue with the answer. Tokens count from the
    /// opening <think>, which the model writes or the prompt ends with.
    /// [default: no limit]
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub thinking_budget: Option<usize>,

    /// Do not print the reasoning. Otherwise it is shown dimmed on a terminal,
    /// and between <think> and </think> tags when stdout is not a terminal.
    #[arg(long)]
    pub hide_thinking: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// The user message, rendered with the model's chat template.
    #[arg(
        long,
        allow_hyphen_values = true,
        required_unless_present = "input_ids",
        conflicts_with = "input_ids"
    )]
    pub prompt: Option<String>,

    /// Raw prompt token ids, comma-separated, fed without a chat template.
    /// Works without tokenizer files: text output is then the generated ids,
    /// and the JSON text, reasoning and answer are empty. One of --prompt and
    /// --input-ids is required.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..,
        value_parser = parse_token_id)]
    pub input_ids: Option<Vec<u32>>,

    /// System message placed before the prompt (not with --input-ids).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "input_ids")]
    pub system: Option<String>,

    /// Turn reasoning off (enable_thinking=false in the chat template) and use
    /// the non-thinking sampling preset.
    #[arg(long)]
    pub no_think: bool,

    #[command(flatten)]
    pub limits: GenerationLimitArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    /// `text`: the answer streams to stdout, statistics go to stderr. `json`:
    /// one object {"token_ids", "text", "reasoning", "answer", "stop_reason",
    /// "stats"} on stdout when done.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// System message for the conversation (change it with /system TEXT).
    #[arg(long, allow_hyphen_values = true)]
    pub system: Option<String>,

    /// Start with reasoning off. In the session, /think and /no_think switch
    /// reasoning, /system TEXT sets the system message (no TEXT removes it),
    /// /clear deletes the history, /stats prints the last answer's statistics
    /// and seed, /exit ends (as does end of input). A line starting with //
    /// is sent as a message starting with /.
    #[arg(long)]
    pub no_think: bool,

    /// Print each rendered prompt to stderr before the answer (for checking templates).
    #[arg(long)]
    pub show_prompt: bool,

    #[command(flatten)]
    pub limits: GenerationLimitArgs,

    #[command(flatten)]
    pub sampling: SamplingArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// Length of the prompt, made of fixed ids spread over the vocabulary.
    #[arg(long, value_name = "N", default_value_t = 32, conflicts_with = "input_ids",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub prompt_tokens: u32,

    /// Prompt token ids, comma-separated, in place of --prompt-tokens.
    #[arg(long, value_name = "IDS", value_delimiter = ',', num_args = 1..,
        value_parser = parse_token_id)]
    pub input_ids: Option<Vec<u32>>,

    /// Tokens to generate per run, at least 2, greedily and ignoring
    /// end-of-sequence, so every run decodes exactly this many. The first
    /// comes from the prefill; decode speed is measured over the others.
    #[arg(long, value_name = "N", default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(2..))]
    pub new_tokens: u32,

    /// Times the whole workload (load, prefill, decode) is repeated; figures
    /// are the median and range over the runs.
    #[arg(long, value_name = "N", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,

    /// `text`: one line per figure. `json`: one object with the keys load_s,
    /// ttft_s, prefill_tok_s, decode_tok_s ({median, min, max} each),
    /// peak_rss_bytes, model, dtype, device, threads and the workload.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Parses one id of `--input-ids`, allowing spaces around it ("1, 2").
fn parse_token_id(text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| "expected a token id: a whole number from 0 to 4294967295".to_string())
}
