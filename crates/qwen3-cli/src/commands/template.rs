//! `qwen3 template`: a conversation rendered with the model's chat template.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use qwen3_tokenizer::{ChatMessage, Qwen3Tokenizer, TemplateOptions, parse_tools};

use crate::args::TemplateArgs;

pub fn run(args: &TemplateArgs, out: &mut impl Write) -> Result<()> {
    let model_dir = crate::model_source::resolve(&args.model.model)?;
    let tokenizer = Qwen3Tokenizer::from_dir(&model_dir)?;

    let messages_json = read_file(&args.messages, "messages")?;
    let messages = ChatMessage::parse_list(
        &messages_json,
        &format!("messages file {}", args.messages.display()),
    )?;

    let tools = match &args.tools {
        Some(path) => {
            let json = read_file(path, "tools")?;
            Some(parse_tools(
                &json,
                &format!("tools file {}", path.display()),
            )?)
        }
        None => None,
    };

    let enable_thinking = match (args.think, args.no_think) {
        (_, true) => Some(false),
        (true, false) => Some(true),
        (false, false) => None,
    };
    let options = TemplateOptions {
        add_generation_prompt: !args.no_generation_prompt,
        enable_thinking,
    };

    let prompt = tokenizer.apply_chat_template(&messages, tools.as_deref(), &options)?;
    // The prompt is printed byte for byte, without a trailing newline.
    out.write_all(prompt.as_bytes())?;
    Ok(())
}

fn read_file(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the {what} file {}", path.display()))
}
