//! `qwen3 generate`: one answer to one prompt.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use qwen3_model::Sampler;
use qwen3_tokenizer::{ChatMessage, TemplateOptions};

use crate::args::{Format, GenerateArgs, GenerationLimitArgs};
use crate::model_source;
use crate::runner::{
    Answer, AnswerOptions, Display, Runner, install_interrupt_handler, run_answer,
};

pub fn run(args: &GenerateArgs, out: &mut impl Write) -> Result<()> {
    let model_dir = model_source::resolve(&args.model.model)?;
    let runner = Runner::load(&model_dir, &args.runtime, args.prompt.is_some())?;
    install_interrupt_handler();

    // The prompt: rendered from messages, or raw ids.
    let (prompt_ids, prompt_text) = match (&args.prompt, &args.input_ids) {
        (Some(prompt), _) => {
            let Some(tokenizer) = &runner.tokenizer else {
                bail!(
                    "--prompt needs tokenizer.json and tokenizer_config.json in {}",
                    model_dir.display()
                );
            };
            let mut messages = Vec::new();
            if let Some(system) = &args.system {
                messages.push(ChatMessage::system(system.as_str()));
            }
            messages.push(ChatMessage::user(prompt.as_str()));
            let options = TemplateOptions {
                add_generation_prompt: true,
                enable_thinking: args.no_think.then_some(false),
            };
            let text = tokenizer.apply_chat_template(&messages, None, &options)?;
            (tokenizer.encode(&text)?.ids, Some(text))
        }
        (None, Some(ids)) => {
            // With a tokenizer, the decoded ids tell whether the prompt opened <think>.
            let text = match &runner.tokenizer {
                Some(tokenizer) => Some(tokenizer.decode(ids, false)?),
                None => None,
            };
            (ids.clone(), text)
        }
        (None, None) => bail!("pass --prompt TEXT or --input-ids IDS"),
    };
    check_text_options(&args.limits, runner.tokenizer.is_some())?;

    let capacity = context_capacity(
        &args.limits,
        prompt_ids.len(),
        runner.model.config().max_position_embeddings,
    )?;
    let params = runner.sampling_params(&args.sampling, args.no_think)?;
    let seed = params.seed;
    let mut sampler = Sampler::new(params);

    let stdout_is_terminal = std::io::stdout().is_terminal();
    let options = AnswerOptions {
        max_new_tokens: args.limits.max_new_tokens,
        stop_strings: &args.limits.stop,
        thinking_budget: args.limits.thinking_budget,
        display: Display {
            stream: args.format == Format::Text,
            show_reasoning: !args.limits.hide_thinking,
            dim_reasoning: stdout_is_terminal,
        },
    };
    let answer = run_answer(
        &runner,
        &prompt_ids,
        prompt_text.as_deref(),
        &mut sampler,
        capacity,
        &options,
    )?;

    match args.format {
        Format::Text => {
            if runner.tokenizer.is_none() {
                // Without tokenizer files there is no text to stream: print the ids.
                let ids: Vec<String> = answer.token_ids.iter().map(u32::to_string).collect();
                writeln!(out, "{}", ids.join(","))?;
            }
            // A closed stderr loses the statistics, not the generated text.
            let _ = writeln!(std::io::stderr(), "{}", stats_line(&runner, &answer, seed));
        }
        Format::Json => writeln!(out, "{}", answer_json(&runner, &answer, seed))?,
    }
    Ok(())
}

/// Stop strings and thinking budgets work on text, which needs the tokenizer.
pub fn check_text_options(limits: &GenerationLimitArgs, has_tokenizer: bool) -> Result<()> {
    if has_tokenizer {
        return Ok(());
    }
    if !limits.stop.is_empty() {
        bail!(
            "--stop needs the tokenizer files (tokenizer.json, tokenizer_config.json) in the model folder"
        );
    }
    if limits.thinking_budget.is_some() {
        bail!(
            "--thinking-budget needs the tokenizer files (tokenizer.json, tokenizer_config.json) in the model folder"
        );
    }
    Ok(())
}

/// KV cache size: `--max-context`, or the prompt plus `--max-new-tokens`,
/// never above `max_position_embeddings`.
pub fn context_capacity(
    limits: &GenerationLimitArgs,
    prompt_len: usize,
    max_positions: usize,
) -> Result<usize> {
    let capacity = match limits.max_context {
        Some(tokens) if tokens > max_positions => bail!(
            "--max-context {tokens} exceeds the model's max_position_embeddings ({max_positions})"
        ),
        Some(tokens) => tokens,
        None => prompt_len
            .saturating_add(limits.max_new_tokens)
            .min(max_positions),
    };
    if prompt_len > capacity {
        bail!(
            "the prompt has {prompt_len} tokens, which leaves no room in a context of {capacity}; \
             raise --max-context (at most {max_positions}) or shorten the prompt; /clear in chat"
        );
    }
    Ok(capacity)
}

fn stats_line(runner: &Runner, answer: &Answer, seed: u64) -> String {
    let generation = &answer.generation;
    let mut line = format!(
        "prompt tokens: {}, generated tokens: {}, load: {:.2} s, prefill: {:.1} tok/s, decode: {:.1} tok/s, stop: {}, seed: {seed}",
        generation.prompt_tokens,
        answer.token_ids.len(),
        runner.load_seconds,
        generation.prefill_tokens_per_second(),
        generation.decode_tokens_per_second(),
        answer.stop_reason.as_str(),
    );
    if answer.thinking_budget_reached {
        line.push_str(", thinking budget reached");
    }
    line
}

fn answer_json(runner: &Runner, answer: &Answer, seed: u64) -> serde_json::Value {
    let generation = &answer.generation;
    serde_json::json!({
        "token_ids": answer.token_ids,
        "text": answer.text,
        "reasoning": answer.reasoning,
        "answer": answer.answer,
        "stop_reason": answer.stop_reason.as_str(),
        "stats": {
            "prompt_tokens": generation.prompt_tokens,
            "generated_tokens": answer.token_ids.len(),
            "load_s": runner.load_seconds,
            "prefill_tok_s": generation.prefill_tokens_per_second(),
            "decode_tok_s": generation.decode_tokens_per_second(),
            "thinking_budget_reached": answer.thinking_budget_reached,
            "seed": seed,
        },
    })
}
