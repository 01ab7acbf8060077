//! Side-by-side speed and memory of `qwen3 bench` and `transformers`, and
//! the greedy reference tokens of a checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::python::{ensure_venv, run};
use crate::workspace_root;

/// Checkpoint, prompt length and generated tokens of `cargo xtask
/// bench-compare` and `cargo xtask greedy-reference`.
#[derive(clap::Args)]
pub struct Workload {
    /// Checkpoint folder.
    #[arg(long, default_value_os_t = default_real_shape_dir())]
    pub model: PathBuf,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 32)]
    pub prompt_tokens: usize,
    /// Tokens generated (greedy steps recorded) per run.
    #[arg(long, default_value_t = 64)]
    pub new_tokens: usize,
}

/// `models/qwen3-0.6b-random` in the workspace.
fn default_real_shape_dir() -> PathBuf {
    workspace_root().join("models").join("qwen3-0.6b-random")
}

/// Settings of `cargo xtask bench-compare`.
pub struct CompareOptions {
    pub workload: Workload,
    pub threads: usize,
    pub rounds: usize,
    pub runs: usize,
    pub qwen3: Option<PathBuf>,
    pub out: Option<PathBuf>,
}

/// The figures both sides report, in the order they are printed.
const FIGURES: [(&str, &str, bool); 4] = [
    ("load_s", "load (s)", false),
    ("ttft_s", "time to first token (s)", false),
    ("prefill_tok_s", "prefill (tok/s)", true),
    ("decode_tok_s", "decode (tok/s)", true),
];

/// Runs `qwen3 bench` and `xtask/python/transformers_bench.py` alternately,
/// `rounds` times each, with the same prompt ids, greedy tokens, threads and
/// dtype (bf16). Prints the medians, the ratios ours/theirs, and the decode
/// speed as a fraction of the memory-bandwidth ceiling measured in this run.
pub fn compare(options: &CompareOptions) -> Result<()> {
    let Workload {
        model,
        prompt_tokens,
        new_tokens,
    } = &options.workload;
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    let config_path = model.join("config.json");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("failed to read {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", config_path.display()))?;
    let vocab_size = config["vocab_size"].as_u64().unwrap_or(151_936) as usize;

    let qwen3 = match &options.qwen3 {
        Some(path) => path.clone(),
        None => build_qwen3()?,
    };
    let python = ensure_venv("model", &scripts.join("requirements-model.txt"))?;
    let ids = prompt_ids(*prompt_tokens, vocab_size);
    let ids_arg = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let threads = options.threads.to_string();
    let new_tokens_arg = new_tokens.to_string();
    let runs = options.runs.to_string();

    eprintln!("measuring the memory read bandwidth with {threads} threads");
    let bandwidth = read_bandwidth(options.threads);

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for round in 1..=options.rounds {
        eprintln!("round {round}/{}: qwen3 bench", options.rounds);
        let mut command = Command::new(&qwen3);
        command
            .arg("bench")
            .arg("--model")
            .arg(model)
            .args(["--input-ids", &ids_arg, "--new-tokens", &new_tokens_arg])
            .args(["--threads", &threads, "--runs", &runs])
            .args(["--dtype", "bf16", "--device", "flex", "--format", "json"]);
        ours.push(measured(&mut command)?);

        eprintln!("round {round}/{}: transformers", options.rounds);
        let mut command = Command::new(&python);
        command
            .arg(scripts.join("transformers_bench.py"))
            .arg("--model")
            .arg(model)
            .args(["--input-ids", &ids_arg, "--new-tokens", &new_tokens_arg])
            .args(["--threads", &threads, "--runs", &runs, "--dtype", "bf16"])
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_VERBOSITY", "error")
            .env("TQDM_DISABLE", "1")
            .env("PYTHONWARNINGS", "ignore");
        theirs.push(measured(&mut command)?);
    }

    let parameters = ours[0]["shape"]["parameters"].as_f64().unwrap_or(0.0);
    let weight_bytes = parameters * 2.0;
    let ceiling = bandwidth / weight_bytes;

    println!(
        "model {} ({:.2}B parameters), bf16, {} threads, {} prompt tokens, {} new tokens, \
         {} rounds of {} runs each side",
        model.display(),
        parameters / 1e9,
        options.threads,
        ids.len(),
        new_tokens,
        options.rounds,
        options.runs,
    );
    println!(
        "{:<26} {:>12} {:>14} {:>12}",
        "figure (median)", "qwen3-burn", "transformers", "ours/theirs"
    );
    let mut summary = serde_json::Map::new();
    for (key, label, _higher_is_better) in FIGURES {
        let our = median(&ours, |report| report[key]["median"].as_f64())?;
        let their = median(&theirs, |report| report[key]["median"].as_f64())?;
        println!(
            "{label:<26} {our:>12.3} {their:>14.3} {:>12.3}",
            our / their
        );
        summary.insert(
            key.into(),
            serde_json::json!({ "ours": our, "theirs": their, "ratio": our / their }),
        );
    }
    let our_rss = median(&ours, |report| report["time_max_rss_bytes"].as_f64())?;
    let their_rss = median(&theirs, |report| report["time_max_rss_bytes"].as_f64())?;
    println!(
        "{:<26} {:>12.3} {:>14.3} {:>12.3}",
        "peak RSS (GB, time -v)",
        our_rss / 1e9,
        their_rss / 1e9,
        our_rss / their_rss
    );
    summary.insert(
        "peak_rss_bytes".into(),
        serde_json::json!({ "ours": our_rss, "theirs": their_rss, "ratio": our_rss / their_rss }),
    );

    let our_decode = summary["decode_tok_s"]["ours"].as_f64().unwrap_or(0.0);
    println!(
        "memory read bandwidth: {:.1} GB/s with {} threads, so decoding {:.2} GB of bf16 \
         weights per token is bounded near {:.1} tok/s; qwen3-burn decodes at {:.0}% of that",
        bandwidth / 1e9,
        options.threads,
        weight_bytes / 1e9,
        ceiling,
        100.0 * our_decode / ceiling
    );
    summary.insert(
        "bandwidth".into(),
        serde_json::json!({
            "read_bytes_per_s": bandwidth,
            "decode_ceiling_tok_s": ceiling,
            "decode_fraction_of_ceiling": our_decode / ceiling,
        }),
    );

    if let Some(out) = &options.out {
        let record = serde_json::json!({
            "summary": summary,
            "qwen3_burn": ours,
            "transformers": theirs,
        });
        std::fs::write(out, serde_json::to_string_pretty(&record)? + "\n")
            .with_context(|| format!("failed to write {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

/// Runs `xtask/python/greedy_reference.py` twice on `model`: the tokens
/// transformers picks greedily in bf16, and in f32 on the same (bf16-stored)
/// weights, with their margins, into `model/greedy-reference-bf16.json` and
/// `model/greedy-reference-f32.json`.
pub fn greedy_reference(workload: &Workload) -> Result<()> {
    let Workload {
        model,
        prompt_tokens,
        new_tokens,
    } = workload;
    let root = workspace_root();
    let scripts = root.join("xtask").join("python");
    let python = ensure_venv("model", &scripts.join("requirements-model.txt"))?;
    let ids = prompt_ids(*prompt_tokens, 151_936);
    let ids_arg = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    for dtype in ["bf16", "f32"] {
        run(Command::new(&python)
            .arg(scripts.join("greedy_reference.py"))
            .arg("--model")
            .arg(model)
            .args(["--input-ids", &ids_arg])
            .args(["--new-tokens", &new_tokens.to_string()])
            .args(["--dtype", dtype])
            .arg("--out")
            .arg(model.join(format!("greedy-reference-{dtype}.json")))
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_VERBOSITY", "error")
            .env("TQDM_DISABLE", "1")
            .env("PYTHONWARNINGS", "ignore"))?;
    }
    Ok(())
}

/// Returns the prompt ids `qwen3 bench --prompt-tokens` uses: spread over
/// the regular vocabulary, below the first special token (151643).
fn prompt_ids(count: usize, vocab_size: usize) -> Vec<u32> {
    let regular = vocab_size.min(151_643) as u64;
    (0..count as u64)
        .map(|i| ((i * 7919 + 17) % regular) as u32)
        .collect()
}

/// Builds the release `qwen3` binary and returns its path.
fn build_qwen3() -> Result<PathBuf> {
    let root = workspace_root();
    eprintln!("building qwen3 (release)");
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--locked", "-p", "qwen3-cli"])
            .current_dir(&root),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release").join("qwen3"))
}

/// Runs `command` under `/usr/bin/time -v` and returns the JSON it prints,
/// with `time_max_rss_bytes` added from GNU time's report.
fn measured(command: &mut Command) -> Result<Value> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        bail!("/usr/bin/time is missing; install GNU time (Debian package `time`)");
    }

    let mut timed = Command::new(time);
    timed
        .arg("-v")
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => timed.env(key, value),
            None => timed.env_remove(key),
        };
    }

    let output = timed
        .output()
        .with_context(|| format!("failed to start {command:?}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{stderr}", output.status);
    }

    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .with_context(|| format!("{command:?} printed no JSON object:\n{stdout}"))?;
    let mut report: Value = serde_json::from_str(line)
        .with_context(|| format!("{command:?} printed invalid JSON: {line}"))?;

    let max_rss_kib = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
        })
        .and_then(|value| value.trim().parse::<u64>().ok())
        .with_context(|| format!("GNU time printed no maximum resident set size:\n{stderr}"))?;
    report["time_max_rss_bytes"] = Value::from(max_rss_kib * 1024);
    Ok(report)
}

fn median(reports: &[Value], figure: impl Fn(&Value) -> Option<f64>) -> Result<f64> {
    let mut values = reports
        .iter()
        .map(|report| figure(report).context("a report lacks a figure"))
        .collect::<Result<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Ok(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// Measures how fast `threads` threads read a 1 GiB buffer, far larger than
/// the caches: the best of 5 passes, in bytes per second.
fn read_bandwidth(threads: usize) -> f64 {
    const BYTES: usize = 1 << 30;
    let words = vec![1u64; BYTES / 8];
    let chunk = words.len().div_ceil(threads.max(1));
    let mut best = f64::INFINITY;
    let mut checksum = 0u64;
    for _ in 0..5 {
        let start = Instant::now();
        checksum ^= std::thread::scope(|scope| {
            let handles: Vec<_> = words
                .chunks(chunk)
                .map(|part| scope.spawn(move || sum_words(part)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or(0))
                .fold(0, u64::wrapping_add)
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(checksum);
    BYTES as f64 / best
}

/// Sums words in 8 independent lanes, which the compiler turns into vector adds.
fn sum_words(words: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    for chunk in words.chunks_exact(8) {
        for (lane, &word) in lanes.iter_mut().zip(chunk) {
            *lane = lane.wrapping_add(word);
        }
    }
    lanes.iter().fold(0, |sum, &lane| sum.wrapping_add(lane))
}
