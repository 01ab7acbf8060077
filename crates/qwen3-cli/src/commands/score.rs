//! `qwen3 score`: log-likelihood of a token sequence under the model.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use qwen3_model::Logits;
use qwen3_model::burn::tensor::DType;
use qwen3_weights::Checkpoint;

use crate::args::{Format, ScoreArgs};

pub fn run(args: &ScoreArgs, out: &mut impl Write) -> Result<()> {
    let ids = &args.input_ids;
    if ids.len() < 2 {
        bail!(
            "--input-ids has {} id; scoring needs at least 2, because each id is predicted from the ones before it",
            ids.len()
        );
    }

    if let Some(path) = &args.logits_out {
        check_output_path(path)?;
        remove_partial_file_on_interrupt();
    }

    crate::device::set_threads(args.runtime.threads)?;
    let model_dir = crate::model_source::resolve(&args.model.model)?;
    let checkpoint = Checkpoint::open(&model_dir)?;
    super::check_input_ids(ids, checkpoint.config.vocab_size)?;
    let (device, dtype) = crate::device::open(
        args.runtime.device,
        args.runtime.dtype,
        checkpoint.stored_dtype(),
    )?;
    let (model, _) = checkpoint.load(&device, dtype)?;

    let mut cache = model.new_cache(ids.len()).with_context(|| {
        format!(
            "{} ids do not fit the model's context of {} tokens",
            ids.len(),
            model.config().max_position_embeddings
        )
    })?;
    let logits = model.forward(ids, &mut cache, Logits::All)?;
    let vocab_size = model.config().vocab_size;
    let logits = logits
        .cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("failed to read the logits back from the device: {e:?}"))?;

    let mean_nll = mean_negative_log_likelihood(&logits, vocab_size, ids);
    let predicted = ids.len() - 1;

    if let Some(path) = &args.logits_out {
        write_logits(path, &logits, ids.len(), vocab_size)?;
    }

    match args.format {
        Format::Text => {
            writeln!(out, "tokens: {predicted}")?;
            writeln!(out, "mean_nll: {mean_nll:.6}")?;
            writeln!(out, "perplexity: {:.6}", mean_nll.exp())?;
        }
        Format::Json => {
            let json = serde_json::json!({
                "tokens": predicted,
                "mean_nll": mean_nll,
                "perplexity": mean_nll.exp(),
            });
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}

/// Mean over positions `1..n` of `-log softmax(logits[i - 1])[ids[i]]`, in nats,
/// with the log-sum-exp taken in f64.
fn mean_negative_log_likelihood(logits: &[f32], vocab_size: usize, ids: &[u32]) -> f64 {
    let mut total = 0.0;
    for (position, &target) in ids.iter().enumerate().skip(1) {
        let row = &logits[(position - 1) * vocab_size..position * vocab_size];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        let log_sum_exp = max + sum.ln();
        total += log_sum_exp - row[target as usize] as f64;
    }
    total / (ids.len() - 1) as f64
}

/// Rejects, before the model loads and runs, a `--logits-out` path whose
/// folder is missing or unreadable, or which is itself a folder.
fn check_output_path(path: &Path) -> Result<()> {
    let folder = output_folder(path);
    match std::fs::metadata(folder) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => bail!(
            "--logits-out {}: {} is not a folder; choose another path",
            path.display(),
            folder.display()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "--logits-out {}: the folder {} does not exist; create it or choose another path",
            path.display(),
            folder.display()
        ),
        Err(error) => bail!(
            "--logits-out {}: cannot read the folder {}: {error}",
            path.display(),
            folder.display()
        ),
    }
    if path.is_dir() {
        bail!(
            "--logits-out {} is a folder; give a file path such as {}",
            path.display(),
            path.join("logits.safetensors").display()
        );
    }
    Ok(())
}

fn output_folder(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The temporary file that `write_logits` is filling, if any.
static PARTIAL_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Makes Ctrl-C remove the temporary logits file before it ends the program
/// with status 130, the status shells report for a SIGINT.
fn remove_partial_file_on_interrupt() {
    let result = ctrlc::set_handler(|| {
        remove_partial_file();
        std::process::exit(130);
    });
    if let Err(error) = result {
        tracing::warn!(%error, "failed to install the Ctrl-C handler; Ctrl-C may leave a temporary file");
    }
}

fn remove_partial_file() {
    let partial = PARTIAL_FILE.lock().map(|mut path| path.take());
    if let Ok(Some(path)) = partial {
        // The file may already have been renamed to its final path.
        let _ = std::fs::remove_file(path);
    }
}

/// Writes the logits as a safetensors file through a temporary file in the
/// same folder, so a failure never leaves a partial file at `path`. A new
/// file gets the permissions the umask allows, as `touch` would give it; a
/// replaced file keeps its own, within the umask.
fn write_logits(path: &Path, logits: &[f32], sequence: usize, vocab_size: usize) -> Result<()> {
    let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![sequence, vocab_size],
        &bytes,
    )
    .context("failed to describe the logits tensor")?;
    let serialized = safetensors::serialize([("logits", view)], None)
        .context("failed to serialize the logits")?;

    let folder = output_folder(path);
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            std::fs::metadata(path).map_or(0o666, |existing| existing.permissions().mode() & 0o777);
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let mut file = builder
        .tempfile_in(folder)
        .with_context(|| format!("failed to create a temporary file in {}", folder.display()))?;
    if let Ok(mut partial) = PARTIAL_FILE.lock() {
        *partial = Some(file.path().to_path_buf());
    }
    let written = file
        .write_all(&serialized)
        .with_context(|| format!("failed to write the logits to {}", path.display()))
        .and_then(|()| {
            file.persist(path)
                .with_context(|| format!("failed to write the logits to {}", path.display()))
        });
    if let Ok(mut partial) = PARTIAL_FILE.lock() {
        *partial = None;
    }
    written?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_removes_partial_file() {
        let folder = tempfile::tempdir().expect("temporary folder");
        let partial = folder.path().join(".tmp-logits");
        std::fs::write(&partial, b"partial").expect("write");
        *PARTIAL_FILE.lock().expect("lock") = Some(partial.clone());
        remove_partial_file();
        assert!(!partial.exists());
        assert!(PARTIAL_FILE.lock().expect("lock").is_none());
    }

    #[test]
    fn nll_of_uniform_logits_is_log_vocab() {
        let vocab_size = 8;
        let logits = vec![0.0f32; 3 * vocab_size];
        let nll = mean_negative_log_likelihood(&logits, vocab_size, &[1, 2, 3]);
        assert!((nll - (8f64).ln()).abs() < 1e-12, "{nll}");
    }

    #[test]
    fn nll_uses_previous_position() {
        // Position 0 predicts id 1 with certainty; position 1 would predict id 0.
        let logits = vec![-100.0f32, 100.0, 100.0, -100.0];
        let nll = mean_negative_log_likelihood(&logits, 2, &[0, 1]);
        assert!(nll < 1e-6, "{nll}");
    }
}
