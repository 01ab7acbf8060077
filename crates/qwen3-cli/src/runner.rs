//! What `generate` and `chat` share: loading, sampling defaults, stop tokens,
//! and running one answer while streaming its text.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use qwen3_model::{
    FinishReason, GenerateOptions, Generation, Qwen3ForCausalLM, Sampler, SamplingParams, Step,
    generate,
};
use qwen3_tokenizer::{
    Qwen3Tokenizer, ReasoningSplitter, Segment, THINK_END, THINK_START, TOKENIZER_FILE,
};
use qwen3_weights::Checkpoint;

use crate::args::{RuntimeArgs, SamplingArgs};

/// Set by Ctrl-C while an answer is being generated.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether an answer is being generated; Ctrl-C outside one exits the program.
pub static GENERATING: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler: during generation it stops the answer,
/// otherwise it exits with status 130, the status shells report for a SIGINT.
pub fn install_interrupt_handler() {
    let result = ctrlc::set_handler(|| {
        if GENERATING.load(Ordering::SeqCst) {
            INTERRUPTED.store(true, Ordering::SeqCst);
        } else {
            std::process::exit(130);
        }
    });
    if let Err(error) = result {
        tracing::warn!(%error, "failed to install the Ctrl-C handler; Ctrl-C will end the program");
    }
}

/// Text appended to close reasoning when a thinking budget runs out.
pub const CLOSE_THINKING: &str = "\n</think>\n\n";

/// A loaded model with its tokenizer and generation defaults.
pub struct Runner {
    pub checkpoint: Checkpoint,
    pub model: Qwen3ForCausalLM,
    /// `None` when the folder has no tokenizer files (raw ids only).
    pub tokenizer: Option<Qwen3Tokenizer>,
    /// Union of the stop ids in config.json, generation_config.json and tokenizer_config.json.
    pub stop_ids: Vec<u32>,
    /// Seconds spent loading the model and the tokenizer.
    pub load_seconds: f64,
}

impl Runner {
    /// Loads the checkpoint (with a progress bar on a terminal) and, when
    /// present, its tokenizer.
    pub fn load(model_dir: &Path, runtime: &RuntimeArgs, need_tokenizer: bool) -> Result<Self> {
        let start = Instant::now();
        crate::device::set_threads(runtime.threads)?;
        let checkpoint = Checkpoint::open(model_dir)?;
        let (device, dtype) =
            crate::device::open(runtime.device, runtime.dtype, checkpoint.stored_dtype())?;

        let tokenizer = if need_tokenizer || model_dir.join(TOKENIZER_FILE).is_file() {
            Some(Qwen3Tokenizer::from_dir(model_dir)?)
        } else {
            None
        };

        let bar = progress_bar();
        let (model, _) = checkpoint.load_with_progress(&device, dtype, &mut |done, total| {
            if let Some(bar) = &bar {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            }
        })?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }

        let mut stop_ids = checkpoint.eos_token_ids();
        if let Some(tokenizer) = &tokenizer
            && let Some(id) = tokenizer.eos_token_id()?
            && !stop_ids.contains(&id)
        {
            stop_ids.push(id);
        }
        if stop_ids.is_empty() {
            tracing::warn!(
                "no eos_token_id in any config file; generation ends only on limits and stop strings"
            );
        }

        Ok(Runner {
            checkpoint,
            model,
            tokenizer,
            stop_ids,
            load_seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Sampling settings: the user's values over `generation_config.json`,
    /// and over Qwen3's non-thinking preset (temperature 0.7, top-p 0.8,
    /// top-k 20, min-p 0) when thinking is off.
    pub fn sampling_params(
        &self,
        args: &SamplingArgs,
        thinking_off: bool,
    ) -> Result<SamplingParams> {
        let published = &self.checkpoint.generation_config;
        let thinking_default = SamplingParams::default();
        let (temperature, top_p, top_k, min_p) = if thinking_off {
            (0.7, 0.8, 20, 0.0)
        } else {
            (
                published
                    .temperature
                    .map_or(thinking_default.temperature, |t| t as f32),
                published.top_p.map_or(thinking_default.top_p, |p| p as f32),
                published.top_k.unwrap_or(thinking_default.top_k),
                published.min_p.map_or(thinking_default.min_p, |p| p as f32),
            )
        };
        let params = SamplingParams {
            greedy: args.greedy,
            temperature: args.temperature.unwrap_or(temperature),
            top_k: args.top_k.unwrap_or(top_k),
            top_p: args.top_p.unwrap_or(top_p),
            min_p: args.min_p.unwrap_or(min_p),
            repetition_penalty: args
                .repetition_penalty
                .or(published.repetition_penalty.map(|p| p as f32))
                .unwrap_or(1.0),
            presence_penalty: args.presence_penalty.unwrap_or(0.0),
            seed: args.seed.unwrap_or_else(rand::random),
        };
        params.validate().map_err(|message| {
            anyhow::anyhow!(
                "invalid sampling setting: {message} (from the options or generation_config.json)"
            )
        })?;
        Ok(params)
    }
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("loading weights {bar:40} {pos}/{len} tensors ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Reason an answer ended, as printed in statistics and JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    StopString,
    MaxNewTokens,
    ContextFull,
    Interrupted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::StopString => "stop_string",
            StopReason::MaxNewTokens => "max_new_tokens",
            StopReason::ContextFull => "context_full",
            StopReason::Interrupted => "interrupted",
        }
    }
}

/// Display settings of an answer's text while it streams.
#[derive(Debug, Clone, Copy)]
pub struct Display {
    /// Print text as it arrives (off for `--format json`).
    pub stream: bool,
    /// Print reasoning at all.
    pub show_reasoning: bool,
    /// Dim reasoning with ANSI escape codes (on a terminal).
    pub dim_reasoning: bool,
}

/// Settings of one answer.
pub struct AnswerOptions<'a> {
    pub max_new_tokens: usize,
    pub stop_strings: &'a [String],
    pub thinking_budget: Option<usize>,
    pub display: Display,
}

/// One finished answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub reasoning: String,
    pub answer: String,
    pub stop_reason: StopReason,
    pub thinking_budget_reached: bool,
    pub generation: Generation,
}

/// Generates an answer to `prompt_ids`, streaming its text to stdout as `display` says.
pub fn run_answer(
    runner: &Runner,
    prompt_ids: &[u32],
    prompt_text: Option<&str>,
    sampler: &mut Sampler,
    capacity: usize,
    options: &AnswerOptions<'_>,
) -> Result<Answer> {
    let mut cache = runner.model.new_cache(capacity)?;
    let mut text = runner
        .tokenizer
        .as_ref()
        .map(|tokenizer| TextStream::new(tokenizer, prompt_text.unwrap_or(""), options));
    let close_ids = match (&runner.tokenizer, options.thinking_budget) {
        (Some(tokenizer), Some(_)) => tokenizer.encode(CLOSE_THINKING)?.ids,
        _ => Vec::new(),
    };

    let mut stop_reason = None;
    let mut produced = 0usize;
    let mut reasoning_tokens = 0usize;
    let mut budget_reached = false;
    let mut stream_error = None;

    INTERRUPTED.store(false, Ordering::SeqCst);
    GENERATING.store(true, Ordering::SeqCst);
    let generation = generate(
        &runner.model,
        &mut cache,
        prompt_ids,
        sampler,
        GenerateOptions {
            max_new_tokens: options.max_new_tokens,
        },
        |token| {
            produced += 1;
            if runner.stop_ids.contains(&token) {
                stop_reason = Some(StopReason::Eos);
                return Step::Stop;
            }
            if let Some(text) = &mut text {
                if let Some(stop) =
                    stop_on_text(text.push(&[token]), &mut stop_reason, &mut stream_error)
                {
                    return stop;
                }
                if text.in_reasoning() {
                    reasoning_tokens += 1;
                    if let Some(budget) = options.thinking_budget
                        && reasoning_tokens >= budget
                        && !budget_reached
                    {
                        budget_reached = true;
                        // The loop feeds only what fits in max_new_tokens; the text must match.
                        let room = options.max_new_tokens.saturating_sub(produced);
                        let fed = &close_ids[..close_ids.len().min(room)];
                        produced += fed.len();
                        if let Some(stop) =
                            stop_on_text(text.push(fed), &mut stop_reason, &mut stream_error)
                        {
                            return stop;
                        }
                        return Step::Feed(fed.to_vec());
                    }
                }
            }
            if INTERRUPTED.load(Ordering::SeqCst) {
                stop_reason = Some(StopReason::Interrupted);
                return Step::Stop;
            }
            Step::Continue
        },
    );
    GENERATING.store(false, Ordering::SeqCst);
    let generation = generation?;
    if let Some(error) = stream_error {
        return Err(error);
    }

    let stop_reason = stop_reason.unwrap_or(match generation.finish_reason {
        FinishReason::ContextFull => StopReason::ContextFull,
        FinishReason::MaxNewTokens | FinishReason::Stopped => StopReason::MaxNewTokens,
    });
    let (reasoning, answer, text) = match &mut text {
        Some(stream) => stream.finish()?,
        None => (String::new(), String::new(), String::new()),
    };
    Ok(Answer {
        token_ids: generation.token_ids.clone(),
        text,
        reasoning,
        answer,
        stop_reason,
        thinking_budget_reached: budget_reached,
        generation,
    })
}

/// Turns the result of pushing ids into the text stream into `Step::Stop`
/// when a stop string matched or printing failed, recording why.
fn stop_on_text(
    pushed: Result<bool>,
    stop_reason: &mut Option<StopReason>,
    stream_error: &mut Option<anyhow::Error>,
) -> Option<Step> {
    match pushed {
        Ok(false) => None,
        Ok(true) => {
            *stop_reason = Some(StopReason::StopString);
            Some(Step::Stop)
        }
        Err(error) => {
            *stream_error = Some(error);
            Some(Step::Stop)
        }
    }
}

/// Streaming detokenization, stop strings and the reasoning split, printing as it goes.
struct TextStream<'a> {
    decoder: qwen3_tokenizer::StreamDecoder<'a>,
    splitter: ReasoningSplitter,
    stop_strings: &'a [String],
    /// Decoded text not yet released because it may start a stop string.
    pending: String,
    /// Released text (the output, without a matched stop string).
    released: String,
    display: Display,
    in_reasoning_style: bool,
    /// Whether any answer text has been printed (leading newlines are dropped
    /// when the reasoning before them is hidden).
    printed_answer: bool,
}

impl<'a> TextStream<'a> {
    fn new(tokenizer: &'a Qwen3Tokenizer, prompt: &str, options: &AnswerOptions<'a>) -> Self {
        TextStream {
            decoder: tokenizer.stream_decoder(true),
            splitter: ReasoningSplitter::for_prompt(prompt),
            stop_strings: options.stop_strings,
            pending: String::new(),
            released: String::new(),
            display: options.display,
            in_reasoning_style: false,
            printed_answer: false,
        }
    }

    fn in_reasoning(&self) -> bool {
        self.splitter.in_reasoning()
    }

    /// Adds ids; returns whether a stop string has been matched (its text and
    /// everything after it are dropped).
    fn push(&mut self, ids: &[u32]) -> Result<bool> {
        for &id in ids {
            if let Some(chunk) = self.decoder.push(id)? {
                self.pending.push_str(&chunk);
            }
        }
        if let Some(position) = self.earliest_stop() {
            let before = self.pending[..position].to_string();
            self.pending.clear();
            self.release(&before)?;
            return Ok(true);
        }
        let keep = self.partial_stop_len();
        let ready = self.pending[..self.pending.len() - keep].to_string();
        self.pending.drain(..self.pending.len() - keep);
        self.release(&ready)?;
        Ok(false)
    }

    /// Flushes held text; returns (reasoning, answer, full text).
    fn finish(&mut self) -> Result<(String, String, String)> {
        if let Some(chunk) = self.decoder.finish()? {
            self.pending.push_str(&chunk);
        }
        let rest = match self.earliest_stop() {
            Some(position) => self.pending[..position].to_string(),
            None => self.pending.clone(),
        };
        self.pending.clear();
        self.release(&rest)?;
        let (segments, output) = self.splitter.finish();
        self.print(&segments)?;
        self.end_style()?;
        if self.display.stream {
            let mut stdout = std::io::stdout().lock();
            if !self.released.ends_with('\n') {
                writeln!(stdout)?;
            }
            stdout.flush()?;
        }
        Ok((output.reasoning, output.answer, self.released.clone()))
    }

    fn release(&mut self, text: &str) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        self.released.push_str(text);
        let segments = self.splitter.push(text);
        self.print(&segments)
    }

    fn print(&mut self, segments: &[Segment]) -> Result<()> {
        if !self.display.stream {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        for segment in segments {
            match segment {
                Segment::Reasoning(text) if self.display.show_reasoning => {
                    // On a terminal reasoning is dimmed; elsewhere it keeps its tags.
                    if !self.in_reasoning_style {
                        let start = if self.display.dim_reasoning {
                            "\x1b[2m"
                        } else {
                            THINK_START
                        };
                        write!(stdout, "{start}")?;
                        self.in_reasoning_style = true;
                    }
                    write!(stdout, "{text}")?;
                }
                Segment::Reasoning(_) => {}
                Segment::Answer(text) => {
                    self.end_reasoning_style(&mut stdout)?;
                    let text = if self.display.show_reasoning || self.printed_answer {
                        text.as_str()
                    } else {
                        text.trim_start_matches('\n')
                    };
                    if !text.is_empty() {
                        self.printed_answer = true;
                        write!(stdout, "{text}")?;
                    }
                }
            }
        }
        stdout
            .flush()
            .context("failed to write the answer to stdout")?;
        Ok(())
    }

    fn end_style(&mut self) -> Result<()> {
        if self.display.stream {
            self.end_reasoning_style(&mut std::io::stdout().lock())?;
        }
        Ok(())
    }

    fn end_reasoning_style(&mut self, stdout: &mut impl Write) -> Result<()> {
        if self.in_reasoning_style {
            let end = if self.display.dim_reasoning {
                "\x1b[0m"
            } else {
                THINK_END
            };
            write!(stdout, "{end}")?;
            self.in_reasoning_style = false;
        }
        Ok(())
    }

    fn earliest_stop(&self) -> Option<usize> {
        self.stop_strings
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|stop| self.pending.find(stop.as_str()))
            .min()
    }

    /// Length of the longest end of `pending` that begins some stop string.
    fn partial_stop_len(&self) -> usize {
        let mut keep = 0;
        for stop in self.stop_strings {
            for (index, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..index];
                if self.pending.ends_with(prefix) {
                    keep = keep.max(prefix.len());
                }
            }
        }
        keep
    }
}
