//! The CLI and the model on checkpoints with the real Qwen3 shapes (random
//! weights, made by `cargo xtask real-shape-checkpoint --preset 0.6b`, and
//! `--preset 4b` for the 4B test), against greedy tokens of transformers
//! (`cargo xtask greedy-reference`). The checkpoints are 1.2 and 8 GB and
//! need Python to make, so the tests are ignored by default. `.ci/run` makes
//! both and runs them with `--ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qwen3_model::burn::tensor::{DType, Device};
use qwen3_model::{Logits, argmax_last};
use qwen3_tests::workspace_root;
use qwen3_weights::Checkpoint;
use serde_json::Value;

/// `QWEN3_REAL_SHAPE_0_6B`, or `models/qwen3-0.6b-random` in the workspace.
fn checkpoint_dir() -> PathBuf {
    let dir = std::env::var_os("QWEN3_REAL_SHAPE_0_6B")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models").join("qwen3-0.6b-random"));
    assert!(
        dir.join("config.json").is_file(),
        "no real-shape checkpoint in {}; run `cargo xtask real-shape-checkpoint --preset 0.6b`",
        dir.display()
    );
    dir
}

/// Margin between the top two logits of transformers above which our
/// argmax must agree with theirs.
const DECISIVE_MARGIN: f64 = 1e-2;

/// Peak RSS that `/usr/bin/time -v` printed for a finished command.
fn peak_rss_bytes(output: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kib: u64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|value| value.parse().ok())
        .expect("/usr/bin/time -v output has the maximum resident set size");
    kib * 1024
}

/// Runs `qwen3 bench` under `/usr/bin/time -v`: returns its JSON report and the peak RSS.
fn bench(dir: &Path, extra: &[&str]) -> (Value, u64) {
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_qwen3"))
        .args(["bench", "--model", &dir.display().to_string()])
        .args(["--format", "json"])
        .args(extra)
        .output()
        .expect("failed to start /usr/bin/time (Debian package `time`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "qwen3 bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    (report, peak_rss_bytes(&output))
}

/// "<|im_start|>user\n你会说中文吗？<|im_end|>\n<|im_start|>assistant\n" in Qwen3 ids.
const PROMPT_IDS: &str =
    "151644,872,198,105043,100134,104811,101037,11319,151645,198,151644,77091,198";

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint"]
fn score_on_real_shape_within_memory_bound() {
    let dir = checkpoint_dir();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "score",
            "--model",
            &dir.display().to_string(),
            "--input-ids",
            PROMPT_IDS,
            "--format",
            "json",
        ])
        .output()
        .expect("failed to start /usr/bin/time (Debian package `time`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qwen3 score failed: {stderr}");

    let json: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(
        json["tokens"],
        Value::from(PROMPT_IDS.split(',').count() - 1)
    );
    let mean_nll = json["mean_nll"].as_f64().expect("mean_nll");
    assert!(
        mean_nll.is_finite() && mean_nll > 0.0,
        "mean_nll {mean_nll}"
    );

    // Peak RSS as /usr/bin/time reports it, mapped file pages included. The
    // bf16 weights are copied once and their mapped pages released, so the
    // peak is one copy plus activations, logits and the allocator's slack.
    let peak = peak_rss_bytes(&output);
    let checkpoint = Checkpoint::open(&dir).expect("config");
    let model_bytes = checkpoint.config.num_parameters() as u64 * 2;
    let ratio = peak as f64 / model_bytes as f64;
    eprintln!("peak RSS {peak} bytes, bf16 model {model_bytes} bytes, ratio {ratio:.3}");
    assert!(
        ratio <= 1.25,
        "peak RSS {peak} bytes is {ratio:.3} x the bf16 model ({model_bytes} bytes)"
    );
}

/// One greedy step of a transformers reference where our argmax differs.
#[derive(Debug)]
struct Disagreement {
    step: usize,
    ours: u32,
    theirs: u32,
    /// Their top-1/top-2 logit margin.
    margin: f64,
}

/// A file written by `cargo xtask greedy-reference`.
struct GreedyReference {
    path: PathBuf,
    json: Value,
}

impl GreedyReference {
    fn read(dir: &Path, name: &str) -> Self {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{}: {error}; run `cargo xtask greedy-reference`",
                path.display()
            )
        });
        let json = serde_json::from_str(&text).expect("valid JSON");
        Self { path, json }
    }

    /// Returns the numbers under `keys`, a path of object keys.
    fn numbers(&self, keys: &[&str]) -> Vec<f64> {
        let value = keys.iter().fold(&self.json, |value, key| &value[key]);
        value
            .as_array()
            .unwrap_or_else(|| panic!("{}: {keys:?} is missing or not a list", self.path.display()))
            .iter()
            .map(|n| n.as_f64().expect("a number"))
            .collect()
    }

    fn ids(&self, keys: &[&str]) -> Vec<u32> {
        self.numbers(keys).iter().map(|&id| id as u32).collect()
    }
}

/// Feeds the prompt and the greedy tokens of `reference` to the checkpoint
/// loaded with bf16 weights, one token per step as in decoding. Prints and
/// returns the steps whose argmax differs from the reference token.
fn teacher_forcing(dir: &Path, reference: &GreedyReference) -> Vec<Disagreement> {
    let prompt = reference.ids(&["prompt_ids"]);
    let tokens = reference.ids(&["tokens"]);
    let margins = reference.numbers(&["margins"]);
    assert_eq!(tokens.len(), 64, "the reference has 64 greedy steps");
    assert_eq!(margins.len(), tokens.len());

    let checkpoint = Checkpoint::open(dir).expect("config");
    let (model, _) = checkpoint
        .load(&Device::default(), DType::BF16)
        .expect("load in bf16");
    let mut cache = model.new_cache(prompt.len() + tokens.len()).expect("cache");

    // Step i reads the prompt and the reference tokens before i and predicts token i.
    let mut input = prompt;
    let mut disagreements = Vec::new();
    for (step, &theirs) in tokens.iter().enumerate() {
        let logits = model
            .forward(&input, &mut cache, Logits::Last)
            .expect("forward");
        let ours = argmax_last(logits).expect("argmax");
        if ours != theirs {
            disagreements.push(Disagreement {
                step,
                ours,
                theirs,
                margin: margins[step],
            });
        }
        input = vec![theirs];
    }

    eprintln!(
        "{}: {} of {} steps differ",
        reference.path.display(),
        disagreements.len(),
        tokens.len(),
    );
    for d in &disagreements {
        eprintln!(
            "step {}: ours {}, transformers {}, their top-1/top-2 margin {:.4}",
            d.step, d.ours, d.theirs, d.margin
        );
    }
    disagreements
}

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint and its greedy references"]
fn teacher_forcing_matches_transformers_f32() {
    // transformers in f32 on the bf16-stored weights computes what our CPU
    // path computes (bf16 weights widened exactly, f32 activations), so
    // every step with a margin clearly above rounding must agree.
    let reference = GreedyReference::read(&checkpoint_dir(), "greedy-reference-f32.json");
    let disagreements = teacher_forcing(&checkpoint_dir(), &reference);
    let decisive: Vec<&Disagreement> = disagreements
        .iter()
        .filter(|d| d.margin > DECISIVE_MARGIN)
        .collect();
    assert!(
        decisive.is_empty(),
        "argmax differs where the margin of transformers f32 exceeds {DECISIVE_MARGIN}: {decisive:?}"
    );
}

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint and its greedy references"]
fn teacher_forcing_against_transformers_bf16() {
    // transformers in bf16 rounds every activation and its logits to bf16.
    // The reference file also records its own argmax at each step computed
    // without the KV cache, and in f32 on the same weights. A step where we
    // differ with a margin above 1e-2 passes only if one of those argmaxes
    // is our token. Such a step is decided by the reference's own rounding.
    let reference = GreedyReference::read(&checkpoint_dir(), "greedy-reference-bf16.json");
    // Only these two computations may explain a disagreement.
    let checks: Vec<(&str, Vec<u32>)> = ["bf16_without_cache", "f32_same_weights"]
        .into_iter()
        .map(|name| (name, reference.ids(&["cross_checks", name, "tokens"])))
        .collect();
    let tokens = reference.ids(&["tokens"]);
    let margins = reference.numbers(&["margins"]);
    for (name, answers) in &checks {
        assert_eq!(answers.len(), tokens.len(), "cross check {name}");
    }
    for (name, answers) in &checks {
        let steps: Vec<String> = (0..tokens.len())
            .filter(|&step| answers[step] != tokens[step])
            .map(|step| format!("{step} (margin {:.4})", margins[step]))
            .collect();
        eprintln!(
            "transformers {name} differs from the bf16 greedy token at {} steps: {}",
            steps.len(),
            steps.join(", ")
        );
    }

    let disagreements = teacher_forcing(&checkpoint_dir(), &reference);
    let mut unexplained = Vec::new();
    for d in disagreements.iter().filter(|d| d.margin > DECISIVE_MARGIN) {
        match checks.iter().find(|(_, answers)| answers[d.step] == d.ours) {
            Some((name, _)) => eprintln!(
                "step {} has margin {:.4} > {DECISIVE_MARGIN}; transformers {name} also picks our token {}",
                d.step, d.margin, d.ours
            ),
            None => unexplained.push(d),
        }
    }
    assert!(
        unexplained.is_empty(),
        "argmax differs where the margin of transformers bf16 exceeds {DECISIVE_MARGIN} \
         and no other computation of transformers picks our token: {unexplained:?}"
    );
}

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint"]
fn bench_reports_every_figure() {
    let dir = checkpoint_dir();
    let (report, peak) = bench(
        &dir,
        &[
            "--prompt-tokens",
            "8",
            "--new-tokens",
            "4",
            "--runs",
            "2",
            "--threads",
            "2",
        ],
    );
    eprintln!("{report}");

    for key in ["load_s", "ttft_s", "prefill_tok_s", "decode_tok_s"] {
        let median = report[key]["median"].as_f64().expect(key);
        let min = report[key]["min"].as_f64().expect(key);
        let max = report[key]["max"].as_f64().expect(key);
        assert!(median > 0.0, "{key} median {median}");
        assert!(min <= median, "{key}: min {min} above median {median}");
        assert!(median <= max, "{key}: median {median} above max {max}");
    }

    assert_eq!(
        report["dtype"], "bf16",
        "the checkpoint's dtype is the CPU default"
    );
    assert_eq!(report["threads"], 2);
    assert_eq!(report["runs"], 2);
    assert_eq!(report["prompt_tokens"], 8);
    assert_eq!(report["new_tokens"], 4);
    assert_eq!(report["model"], dir.display().to_string());

    let reported = report["peak_rss_bytes"].as_u64().expect("peak_rss_bytes");
    // Both read the kernel's high-water mark of the resident set.
    let difference = reported.abs_diff(peak) as f64 / peak as f64;
    assert!(
        difference < 0.05,
        "bench reports {reported} bytes, /usr/bin/time {peak}"
    );
}

#[test]
#[ignore = "needs the 8 GB real-shape Qwen3-4B checkpoint (cargo xtask real-shape-checkpoint --preset 4b)"]
fn qwen3_4b_generates_16_tokens_under_10_gb() {
    let dir = std::env::var_os("QWEN3_REAL_SHAPE_4B")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models").join("qwen3-4b-random"));
    assert!(
        dir.join("config.json").is_file(),
        "no real-shape checkpoint in {}; run `cargo xtask real-shape-checkpoint --preset 4b`",
        dir.display()
    );
    let (report, peak) = bench(
        &dir,
        &["--prompt-tokens", "16", "--new-tokens", "16", "--runs", "1"],
    );
    eprintln!("{report}");
    eprintln!("peak RSS {peak} bytes");
    assert_eq!(report["shape"]["hidden_size"], 2560);
    assert_eq!(report["new_tokens"], 16);
    assert!(peak < 10_000_000_000, "peak RSS {peak} bytes");
}

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint"]
fn generate_on_real_shape_prints_statistics() {
    let dir = checkpoint_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "generate",
            "--model",
            &dir.display().to_string(),
            "--prompt",
            "你会说中文吗？",
        ])
        .args(["--max-new-tokens", "32", "--seed", "1"])
        .output()
        .expect("start qwen3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qwen3 generate failed: {stderr}");
    eprintln!("{stderr}");
    assert!(stderr.contains("prompt tokens: 13"), "{stderr}");
    assert!(stderr.contains("decode:"), "{stderr}");
}
