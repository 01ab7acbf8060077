//! `qwen3 bench`: load time, time to first token, prefill and decode speed
//! and peak memory, on a fixed greedy workload.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use qwen3_model::{Logits, Qwen3Config, argmax_last};
use qwen3_weights::Checkpoint;
use serde_json::json;

use crate::args::{BenchArgs, Format};
use crate::device::{default_device_name, dtype_flag_value, flag_value, open, set_threads};

/// Figures of one run of the workload.
#[derive(Debug, Clone, Copy)]
struct Run {
    load_s: f64,
    ttft_s: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
}

/// Median and range of one figure over the runs.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: impl Iterator<Item = f64>) -> Spread {
        let mut values: Vec<f64> = values.collect();
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        let median = if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        };
        Spread {
            median,
            min: values[0],
            max: values[values.len() - 1],
        }
    }

    fn to_json(self) -> serde_json::Value {
        json!({ "median": self.median, "min": self.min, "max": self.max })
    }
}

pub fn run(args: &BenchArgs, out: &mut impl Write) -> Result<()> {
    set_threads(args.runtime.threads)?;
    let model_dir = crate::model_source::resolve(&args.model.model)?;
    let checkpoint = Checkpoint::open(&model_dir)?;
    let config = &checkpoint.config;
    let device_name = args.runtime.device.unwrap_or_else(default_device_name);
    let (device, dtype) = open(
        Some(device_name),
        args.runtime.dtype,
        checkpoint.stored_dtype(),
    )?;

    let prompt = match &args.input_ids {
        Some(ids) => {
            super::check_input_ids(ids, config.vocab_size)?;
            ids.clone()
        }
        None => spread_ids(args.prompt_tokens as usize, config.vocab_size),
    };
    let new_tokens = args.new_tokens as usize;
    let context = prompt.len() + new_tokens;
    if context > config.max_position_embeddings {
        bail!(
            "the prompt ({} tokens) and --new-tokens {new_tokens} need a context of {context}, \
             more than the model's max_position_embeddings ({})",
            prompt.len(),
            config.max_position_embeddings
        );
    }

    let mut runs = Vec::with_capacity(args.runs as usize);
    for index in 0..args.runs {
        let start = Instant::now();
        let (model, _) = checkpoint.load(&device, dtype)?;
        let load_s = start.elapsed().as_secs_f64();

        let mut cache = model.new_cache(context)?;
        let start = Instant::now();
        let logits = model
            .forward(&prompt, &mut cache, Logits::Last)
            .context("prefill failed")?;
        let mut token = argmax_last(logits)?;
        let ttft_s = start.elapsed().as_secs_f64();

        let start = Instant::now();
        for _ in 1..new_tokens {
            let logits = model.forward(&[token], &mut cache, Logits::Last)?;
            token = argmax_last(logits)?;
        }
        let decode_s = start.elapsed().as_secs_f64();

        let run = Run {
            load_s,
            ttft_s,
            prefill_tok_s: prompt.len() as f64 / ttft_s,
            decode_tok_s: (new_tokens - 1) as f64 / decode_s,
        };
        tracing::info!(run = index + 1, ?run, "bench run finished");
        runs.push(run);
    }

    let report = Report {
        load_s: Spread::of(runs.iter().map(|r| r.load_s)),
        ttft_s: Spread::of(runs.iter().map(|r| r.ttft_s)),
        prefill_tok_s: Spread::of(runs.iter().map(|r| r.prefill_tok_s)),
        decode_tok_s: Spread::of(runs.iter().map(|r| r.decode_tok_s)),
        peak_rss_bytes: peak_rss_bytes(),
        model: args.model.model.display().to_string(),
        dtype: dtype_flag_value(dtype),
        device: flag_value(device_name),
        threads: rayon::current_num_threads(),
        prompt_tokens: prompt.len(),
        new_tokens,
        runs: runs.len(),
    };
    match args.format {
        Format::Json => writeln!(out, "{}", report.to_json(config))?,
        Format::Text => report.write_text(config, out)?,
    }
    Ok(())
}

/// Returns `count` prompt ids spread over the regular vocabulary (below the
/// first special token, 151643 in Qwen3), the same on every run.
fn spread_ids(count: usize, vocab_size: usize) -> Vec<u32> {
    let regular = vocab_size.min(151_643) as u64;
    (0..count as u64)
        .map(|i| ((i * 7919 + 17) % regular) as u32)
        .collect()
}

/// Returns the largest resident set of this process so far, mapped file
/// pages included (`VmHWM`, the figure `/usr/bin/time -v` reports). Only
/// Linux provides it, through `/proc/self/status`.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

struct Report {
    load_s: Spread,
    ttft_s: Spread,
    prefill_tok_s: Spread,
    decode_tok_s: Spread,
    peak_rss_bytes: Option<u64>,
    model: String,
    dtype: String,
    device: String,
    threads: usize,
    prompt_tokens: usize,
    new_tokens: usize,
    runs: usize,
}

impl Report {
    fn to_json(&self, config: &Qwen3Config) -> serde_json::Value {
        json!({
            "load_s": self.load_s.to_json(),
            "ttft_s": self.ttft_s.to_json(),
            "prefill_tok_s": self.prefill_tok_s.to_json(),
            "decode_tok_s": self.decode_tok_s.to_json(),
            "peak_rss_bytes": self.peak_rss_bytes,
            "model": self.model,
            "dtype": self.dtype,
            "device": self.device,
            "threads": self.threads,
            "prompt_tokens": self.prompt_tokens,
            "new_tokens": self.new_tokens,
            "runs": self.runs,
            "shape": {
                "num_hidden_layers": config.num_hidden_layers,
                "hidden_size": config.hidden_size,
                "intermediate_size": config.intermediate_size,
                "num_attention_heads": config.num_attention_heads,
                "num_key_value_heads": config.num_key_value_heads,
                "head_dim": config.head_dim,
                "vocab_size": config.vocab_size,
                "parameters": config.num_parameters(),
            },
        })
    }

    fn write_text(&self, config: &Qwen3Config, out: &mut impl Write) -> Result<()> {
        writeln!(out, "model: {}", self.model)?;
        writeln!(
            out,
            "shape: {:.2}B parameters, {} layers, hidden {}, intermediate {}, {} heads ({} key/value), vocab {}",
            config.num_parameters() as f64 / 1e9,
            config.num_hidden_layers,
            config.hidden_size,
            config.intermediate_size,
            config.num_attention_heads,
            config.num_key_value_heads,
            config.vocab_size,
        )?;
        writeln!(
            out,
            "device: {}, dtype: {}, threads: {}",
            self.device, self.dtype, self.threads
        )?;
        writeln!(
            out,
            "workload: {} prompt tokens, {} new tokens, {} {} (median, min-max)",
            self.prompt_tokens,
            self.new_tokens,
            self.runs,
            if self.runs == 1 { "run" } else { "runs" }
        )?;
        let line = |name: &str, spread: Spread, unit: &str| {
            format!(
                "{name}: {:.3} {unit} ({:.3}-{:.3})",
                spread.median, spread.min, spread.max
            )
        };
        writeln!(out, "{}", line("load", self.load_s, "s"))?;
        writeln!(out, "{}", line("ttft", self.ttft_s, "s"))?;
        writeln!(out, "{}", line("prefill", self.prefill_tok_s, "tok/s"))?;
        writeln!(out, "{}", line("decode", self.decode_tok_s, "tok/s"))?;
        match self.peak_rss_bytes {
            Some(bytes) => writeln!(out, "peak RSS: {:.2} GB", bytes as f64 / 1e9)?,
            None => writeln!(out, "peak RSS: not available on this system")?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_median_and_range() {
        let odd = Spread::of([3.0, 1.0, 2.0].into_iter());
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Spread::of([4.0, 1.0, 2.0, 3.0].into_iter());
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
    }

    #[test]
    fn spread_ids_stay_below_special_tokens() {
        let ids = spread_ids(1000, 151_936);
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|&id| id < 151_643));
        assert!(spread_ids(50, 100).iter().all(|&id| id < 100));
    }
}
