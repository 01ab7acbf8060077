//! The Python virtual environment that runs the reference scripts.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::workspace_root;

/// Creates (once) a virtual environment under `.venv-reference/NAME` with the
/// packages of `requirements`, and returns the path of its Python interpreter.
///
/// The requirements file pins every package, so pip installs it with
/// `--no-deps`. `--no-cache-dir` stops the downloaded wheels (gigabytes, for
/// torch) from staying on disk after the install.
pub fn ensure_venv(name: &str, requirements: &Path) -> Result<PathBuf> {
    let venv = workspace_root().join(".venv-reference").join(name);
    let python = venv.join("bin").join("python");
    let stamp = venv.join("requirements.txt");
    let requested = std::fs::read_to_string(requirements)
        .with_context(|| format!("failed to read {}", requirements.display()))?;

    if python.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(requested.as_str())
    {
        return Ok(python);
    }

    eprintln!("creating the Python environment {}", venv.display());
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-cache-dir",
            "-r",
        ])
        .arg(requirements))?;
    std::fs::write(&stamp, requested)
        .with_context(|| format!("failed to write {}", stamp.display()))?;
    Ok(python)
}

/// Runs a command and fails with its name when it does not succeed.
pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("failed to start {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
