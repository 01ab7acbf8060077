//! Reference fixtures written by Hugging Face `tokenizers` and `transformers`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::python::{ensure_venv, run};
use crate::workspace_root;

/// Runs `xtask/python/tokenizer_reference.py` on the cases file and writes (or,
/// with `check`, compares against) `tests/fixtures/tokenizer/expected.json`.
pub fn tokenizer_reference(tokenizer_dir: &Path, check: bool) -> Result<()> {
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    let fixtures = root.join("tests").join("fixtures").join("tokenizer");
    let expected_path = fixtures.join("expected.json");

    if !tokenizer_dir.join("tokenizer.json").is_file() {
        bail!(
            "no tokenizer.json in {}; run `cargo xtask fetch-tokenizer` first",
            tokenizer_dir.display()
        );
    }
    let python = ensure_venv("tokenizer", &scripts.join("requirements-tokenizer.txt"))?;

    let output =
        tempfile::NamedTempFile::new_in(&fixtures).context("failed to create a temporary file")?;
    run(Command::new(&python)
        .arg(scripts.join("tokenizer_reference.py"))
        .arg("--tokenizer-dir")
        .arg(tokenizer_dir)
        .arg("--cases")
        .arg(fixtures.join("cases.json"))
        .arg("--out")
        .arg(output.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error"))?;

    if check {
        let fresh = std::fs::read_to_string(output.path())?;
        let committed = std::fs::read_to_string(&expected_path)
            .with_context(|| format!("failed to read {}", expected_path.display()))?;
        if fresh != committed {
            bail!(
                "{} differs from what transformers produces now; run `cargo xtask tokenizer-reference` and review the diff",
                expected_path.display()
            );
        }
        eprintln!("{} matches transformers", expected_path.display());
    } else {
        output
            .persist(&expected_path)
            .with_context(|| format!("failed to write {}", expected_path.display()))?;
        eprintln!("wrote {}", expected_path.display());
    }
    Ok(())
}

/// Runs `xtask/python/model_reference.py`, which writes tiny random Qwen3
/// checkpoints and their `transformers` outputs to `tests/fixtures/models`.
pub fn model_fixtures() -> Result<()> {
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    let out_dir = root.join("tests").join("fixtures").join("models");
    let python = ensure_venv("model", &scripts.join("requirements-model.txt"))?;

    run(Command::new(&python)
        .arg(scripts.join("model_reference.py"))
        .arg("--out-dir")
        .arg(&out_dir)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error"))?;
    eprintln!("wrote {}", out_dir.display());
    Ok(())
}
