//! `qwen3 chat`: a conversation in the terminal.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use qwen3_model::Sampler;
use qwen3_tokenizer::{ChatMessage, TemplateOptions};

use crate::args::ChatArgs;
use crate::commands::generate::context_capacity;
use crate::model_source;
use crate::runner::{
    Answer, AnswerOptions, Display, Runner, install_interrupt_handler, run_answer,
};

const HELP: &str =
    "commands: /think, /no_think, /system TEXT, /clear, /stats, /exit (or end of input)";

pub fn run(args: &ChatArgs) -> Result<()> {
    let model_dir = model_source::resolve(&args.model.model)?;
    let runner = Runner::load(&model_dir, &args.runtime, true)?;
    let Some(tokenizer) = &runner.tokenizer else {
        bail!(
            "chat needs tokenizer.json and tokenizer_config.json in {}",
            model_dir.display()
        );
    };
    tokenizer.check_chat_template()?;
    install_interrupt_handler();

    let interactive = std::io::stdin().is_terminal();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let mut system = args.system.clone();
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut thinking = !args.no_think;
    let mut last: Option<(Answer, u64)> = None;

    if interactive {
        eprintln!("{HELP}");
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else {
            break;
        };
        let line = line?;
        let input = line.trim();
        if input.is_empty() {
            continue;
        }

        // `//text` sends `/text` as a message.
        let message = input.strip_prefix("//").map(|rest| format!("/{rest}"));
        if let (None, Some(command)) = (&message, input.strip_prefix('/')) {
            let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
            match name {
                "exit" | "quit" => break,
                "think" => {
                    thinking = true;
                    eprintln!("reasoning on");
                }
                "no_think" => {
                    thinking = false;
                    eprintln!("reasoning off");
                }
                "system" => {
                    let text = rest.trim();
                    system = (!text.is_empty()).then(|| text.to_string());
                    eprintln!(
                        "{}",
                        if system.is_some() {
                            "system message set"
                        } else {
                            "system message removed"
                        }
                    );
                }
                "clear" => {
                    history.clear();
                    eprintln!("history cleared");
                }
                "stats" => match &last {
                    Some((answer, seed)) => eprintln!("{}, seed: {seed}", turn_stats(answer)),
                    None => eprintln!("no answer yet"),
                },
                _ => eprintln!("unknown command /{name}; {HELP}"),
            }
            continue;
        }

        history.push(ChatMessage::user(
            message.unwrap_or_else(|| input.to_string()),
        ));
        let mut messages = Vec::with_capacity(history.len() + 1);
        if let Some(system) = &system {
            messages.push(ChatMessage::system(system.as_str()));
        }
        messages.extend(history.iter().cloned());

        let options = TemplateOptions {
            add_generation_prompt: true,
            enable_thinking: (!thinking).then_some(false),
        };
        let prompt = tokenizer.apply_chat_template(&messages, None, &options)?;
        if args.show_prompt {
            eprintln!("--- prompt ---\n{prompt}\n--- end of prompt ---");
        }
        let prompt_ids = tokenizer.encode(&prompt)?.ids;
        let capacity = match context_capacity(
            &args.limits,
            prompt_ids.len(),
            runner.model.config().max_position_embeddings,
        ) {
            Ok(capacity) => capacity,
            Err(error) => {
                history.pop();
                eprintln!("error: {error:#}; /clear starts a new conversation");
                continue;
            }
        };

        let params = runner.sampling_params(&args.sampling, !thinking)?;
        let seed = params.seed;
        let mut sampler = Sampler::new(params);
        let answer_options = AnswerOptions {
            max_new_tokens: args.limits.max_new_tokens,
            stop_strings: &args.limits.stop,
            thinking_budget: args.limits.thinking_budget,
            display: Display {
                stream: true,
                show_reasoning: !args.limits.hide_thinking,
                dim_reasoning: stdout_is_terminal,
            },
        };
        // NOTE: each turn prefills the whole history into a new KV cache,
        // because the template rewrites earlier turns (it drops their reasoning).
        let answer = run_answer(
            &runner,
            &prompt_ids,
            Some(&prompt),
            &mut sampler,
            capacity,
            &answer_options,
        )?;

        let mut reply = ChatMessage::assistant(answer.answer.clone());
        if !answer.reasoning.is_empty() {
            reply.reasoning_content = Some(answer.reasoning.clone());
        }
        history.push(reply);
        if answer.stop_reason == crate::runner::StopReason::Interrupted {
            eprintln!("(answer interrupted)");
        }
        last = Some((answer, seed));
    }
    Ok(())
}

fn turn_stats(answer: &Answer) -> String {
    let generation = &answer.generation;
    format!(
        "prompt tokens: {}, generated tokens: {}, prefill: {:.1} tok/s, decode: {:.1} tok/s, stop: {}",
        generation.prompt_tokens,
        answer.token_ids.len(),
        generation.prefill_tokens_per_second(),
        generation.decode_tokens_per_second(),
        answer.stop_reason.as_str()
    )
}
