//! `qwen3 tokenize`: text to token ids.

use std::io::Write;

use anyhow::Result;
use qwen3_tokenizer::Qwen3Tokenizer;

use crate::args::{Format, TokenizeArgs};

pub fn run(args: &TokenizeArgs, out: &mut impl Write) -> Result<()> {
    let model_dir = crate::model_source::resolve(&args.model.model)?;
    let tokenizer = Qwen3Tokenizer::from_dir(&model_dir)?;
    let encoded = tokenizer.encode(&args.text)?;

    match args.format {
        Format::Text => {
            for (id, token) in encoded.ids.iter().zip(&encoded.tokens) {
                writeln!(out, "{id}\t{token}")?;
            }
        }
        Format::Json => {
            let json = serde_json::json!({ "ids": encoded.ids, "tokens": encoded.tokens });
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}
