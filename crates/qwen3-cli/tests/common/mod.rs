//! Helpers shared by the CLI test binaries.

use std::process::{Command, Output};

/// Runs the built `qwen3` binary with `args`, with logging left at its default.
pub fn qwen3(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("failed to start qwen3")
}

/// Returns stdout of a run that must have succeeded.
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "qwen3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}
