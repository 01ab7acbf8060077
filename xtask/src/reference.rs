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
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("TQDM_DISABLE", "1"))?;

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
/// checkpoints and their `transformers` outputs to `tests/fixtures/models`;
/// with `check`, writes them to a temporary folder and fails unless every
/// file equals the committed one byte for byte.
pub fn model_fixtures(check: bool, tokenizer_dir: &Path) -> Result<()> {
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    let fixtures = root.join("tests").join("fixtures").join("models");
    let python = ensure_venv("model", &scripts.join("requirements-model.txt"))?;

    let scratch = tempfile::tempdir().context("failed to create a temporary folder")?;
    let out_dir = if check {
        scratch.path().to_path_buf()
    } else {
        fixtures.clone()
    };
    run(Command::new(&python)
        .arg(scripts.join("model_reference.py"))
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--tokenizer-dir")
        .arg(tokenizer_dir)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("TQDM_DISABLE", "1"))?;

    if check {
        let differences = compare_trees(&out_dir, &fixtures)?;
        if !differences.is_empty() {
            bail!(
                "tests/fixtures/models differs from what transformers produces now ({}); run `cargo xtask model-fixtures` and review the diff",
                differences.join(", ")
            );
        }
        eprintln!("{} matches transformers", fixtures.display());
    } else {
        eprintln!("wrote {}", fixtures.display());
    }
    Ok(())
}

/// Relative paths of files that differ between two folders or exist in only one.
fn compare_trees(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    for root in [fresh, committed] {
        for folder in
            std::fs::read_dir(root).with_context(|| format!("failed to list {}", root.display()))?
        {
            let folder = folder?.path();
            let relative = folder.strip_prefix(root)?.to_path_buf();
            if folder.is_dir() {
                for file in std::fs::read_dir(&folder)? {
                    names.insert(relative.join(file?.file_name()));
                }
            } else {
                names.insert(relative);
            }
        }
    }
    let mut differences = Vec::new();
    for name in names {
        let a = std::fs::read(fresh.join(&name)).ok();
        let b = std::fs::read(committed.join(&name)).ok();
        if a.is_none() || a != b {
            differences.push(name.display().to_string());
        }
    }
    Ok(differences)
}

/// Runs `xtask/python/real_shape_checkpoint.py`: a checkpoint with the shapes
/// and config files of a released Qwen3 size, random bf16 weights and the real
/// tokenizer files, written to `out`.
pub fn real_shape_checkpoint(preset: &str, out: &Path, tokenizer_dir: &Path) -> Result<()> {
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    if !tokenizer_dir.join("tokenizer.json").is_file() {
        bail!(
            "no tokenizer.json in {}; run `cargo xtask fetch-tokenizer` first",
            tokenizer_dir.display()
        );
    }
    let python = ensure_venv("model", &scripts.join("requirements-model.txt"))?;
    run(Command::new(&python)
        .arg(scripts.join("real_shape_checkpoint.py"))
        .arg("--preset")
        .arg(preset)
        .arg("--out")
        .arg(out)
        .arg("--tokenizer-dir")
        .arg(tokenizer_dir)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_VERBOSITY", "error")
        .env("TQDM_DISABLE", "1"))
}
