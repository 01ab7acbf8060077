//! The safetensors files of a checkpoint: memory maps, headers and the shard index.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{DType, TensorData};
use memmap2::{Advice, Mmap, MmapMut, UncheckedAdvice};
use qwen3_model::{HostMatrix, SharedBytes};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::error::WeightsError;

/// Single-file checkpoints.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Index of sharded checkpoints.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Location of one tensor: its shard, dtype, shape and byte range in the mapped file.
#[derive(Debug, Clone)]
pub struct TensorEntry {
    /// Index into [`Shards::files`].
    pub shard: usize,
    /// Dtype on disk.
    pub dtype: Dtype,
    /// Shape on disk.
    pub shape: Vec<usize>,
    /// Byte range in the whole file (header included).
    pub range: std::ops::Range<usize>,
}

/// One mapped safetensors file.
#[derive(Debug)]
pub struct ShardFile {
    /// Path of the file.
    pub path: PathBuf,
    mmap: Arc<Mmap>,
}

/// All safetensors files of a checkpoint, mapped, with every tensor header parsed.
#[derive(Debug)]
pub struct Shards {
    /// The mapped files.
    pub files: Vec<ShardFile>,
    /// Every tensor by name. A name found in two files is reported in `duplicates`.
    pub tensors: BTreeMap<String, TensorEntry>,
    /// Names stored in more than one file, with the files.
    pub duplicates: Vec<(String, Vec<PathBuf>)>,
}

#[derive(Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

impl Shards {
    /// Maps `model.safetensors`, or every shard named in `model.safetensors.index.json`.
    pub fn open(dir: &Path) -> Result<Self, WeightsError> {
        let single = dir.join(SINGLE_FILE);
        let index_path = dir.join(INDEX_FILE);
        if index_path.is_file() {
            Self::open_indexed(dir, &index_path)
        } else if single.is_file() {
            Self::open_files(vec![single])
        } else {
            Err(WeightsError::MissingFile {
                path: single,
                hint: "the checkpoint folder must contain model.safetensors or model.safetensors.index.json with its shards",
            })
        }
    }

    fn open_indexed(dir: &Path, index_path: &Path) -> Result<Self, WeightsError> {
        let invalid = |message: String| WeightsError::InvalidIndex {
            path: index_path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(index_path).map_err(|source| WeightsError::Io {
            path: index_path.to_path_buf(),
            source,
        })?;
        let index: Index = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;

        // Shard names must be plain file names in the checkpoint folder.
        let mut shard_names: Vec<&String> = index.weight_map.values().collect();
        shard_names.sort();
        shard_names.dedup();
        let mut paths = Vec::new();
        for name in &shard_names {
            if Path::new(name.as_str()).components().count() != 1 || name.contains("..") {
                return Err(invalid(format!(
                    "shard name {name:?} is not a file name in the checkpoint folder"
                )));
            }
            let path = dir.join(name.as_str());
            if !path.is_file() {
                return Err(invalid(format!(
                    "it names the shard {name}, which is not in {}",
                    dir.display()
                )));
            }
            paths.push(path);
        }

        let shards = Self::open_files(paths)?;

        // The index must agree with the headers of the shards.
        for (tensor, shard_name) in &index.weight_map {
            let Some(entry) = shards.tensors.get(tensor) else {
                return Err(invalid(format!(
                    "it places {tensor} in {shard_name}, but no shard contains it"
                )));
            };
            let actual = &shards.files[entry.shard].path;
            if actual.file_name().and_then(|n| n.to_str()) != Some(shard_name.as_str()) {
                return Err(invalid(format!(
                    "it places {tensor} in {shard_name}, but it is in {}",
                    actual.display()
                )));
            }
        }
        if let Some(unlisted) = shards
            .tensors
            .keys()
            .find(|name| !index.weight_map.contains_key(*name))
        {
            return Err(invalid(format!(
                "the shards contain {unlisted}, which the index does not list"
            )));
        }
        Ok(shards)
    }

    fn open_files(paths: Vec<PathBuf>) -> Result<Self, WeightsError> {
        let mut files = Vec::with_capacity(paths.len());
        let mut tensors = BTreeMap::new();
        let mut seen: HashMap<String, Vec<PathBuf>> = HashMap::new();

        for (shard, path) in paths.into_iter().enumerate() {
            let file = File::open(&path).map_err(|source| WeightsError::Io {
                path: path.clone(),
                source,
            })?;
            // SAFETY: the map is read-only and private. Another process that
            // truncates the file during the load can still crash this one with
            // SIGBUS, which is the accepted cost of reading without a copy.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|source| WeightsError::Io {
                path: path.clone(),
                source,
            })?;

            let (header_len, metadata) = SafeTensors::read_metadata(&mmap).map_err(|e| {
                WeightsError::InvalidSafetensors {
                    path: path.clone(),
                    message: e.to_string(),
                }
            })?;
            let data_start = 8 + header_len;
            for (name, info) in metadata.tensors() {
                let (start, end) = info.data_offsets;
                seen.entry(name.clone()).or_default().push(path.clone());
                tensors.insert(
                    name,
                    TensorEntry {
                        shard,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        range: data_start + start..data_start + end,
                    },
                );
            }
            files.push(ShardFile {
                path,
                mmap: Arc::new(mmap),
            });
        }

        let mut duplicates: Vec<(String, Vec<PathBuf>)> = seen
            .into_iter()
            .filter(|(_, paths)| paths.len() > 1)
            .collect();
        duplicates.sort();
        Ok(Shards {
            files,
            tensors,
            duplicates,
        })
    }

    /// Copies a tensor out of its map into host data, then releases the
    /// mapped pages so they do not count twice in resident memory.
    pub fn tensor_data(&self, name: &str) -> Option<TensorData> {
        let entry = self.tensors.get(name)?;
        let file = &self.files[entry.shard];
        let bytes = file.mmap.get(entry.range.clone())?.to_vec();
        let dtype = burn_dtype(entry.dtype)?;
        let data = TensorData::from_bytes_vec(bytes, entry.shape.clone(), dtype);

        file.release(entry.range.clone());
        Some(data)
    }
}

impl Shards {
    /// Reads a 2-D tensor into a host matrix in `dtype`.
    ///
    /// When the file already stores `dtype`, the bytes are copied into
    /// memory that Linux may back with 2 MiB pages, which the products read
    /// faster than 4 KiB file pages (measured: 25 against 32 GB/s with 2
    /// threads). Otherwise they are converted into a new buffer. Either way
    /// the mapped pages are released afterwards, so the file does not stay
    /// resident beside the copy.
    pub fn host_matrix(&self, name: &str, dtype: DType) -> Result<HostMatrix, String> {
        let entry = self
            .tensors
            .get(name)
            .ok_or_else(|| "it is not in the checkpoint".to_string())?;
        let file = &self.files[entry.shard];
        let file_dtype = burn_dtype(entry.dtype)
            .ok_or_else(|| format!("dtype {:?} is not a float type", entry.dtype))?;
        let bytes = file
            .mmap
            .get(entry.range.clone())
            .ok_or_else(|| "its byte range lies outside the file".to_string())?;

        let copied = if file_dtype == dtype {
            match copy_to_huge_pages(bytes) {
                Ok(copied) => Some(copied),
                Err(error) => {
                    tracing::debug!(%error, "anonymous map failed; {name} is read from the file map");
                    None
                }
            }
        } else {
            None
        };
        let reads_file = copied.is_none() && file_dtype == dtype;
        let source = match copied {
            Some(copied) => copied,
            None => {
                let mmap: Arc<dyn AsRef<[u8]> + Send + Sync> = file.mmap.clone();
                SharedBytes::new(mmap, entry.range.clone())
                    .ok_or_else(|| "its byte range lies outside the file".to_string())?
            }
        };
        let matrix = HostMatrix::from_shared(source, file_dtype, &entry.shape, dtype)
            .map_err(|error| error.to_string())?;

        // A converted matrix or a copy no longer needs the mapped pages.
        if !reads_file {
            file.release(entry.range.clone());
        }
        Ok(matrix)
    }
}

impl ShardFile {
    /// Drops the resident pages of `range`; later reads fetch them from the file again.
    fn release(&self, range: std::ops::Range<usize>) {
        // SAFETY: no slice of this range is borrowed any more (its bytes were
        // copied), and for a read-only file map MADV_DONTNEED only drops pages
        // that the kernel reads back from the file on the next access.
        let released = unsafe {
            self.mmap
                .unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len())
        };
        if let Err(error) = released {
            tracing::debug!(path = %self.path.display(), %error, "madvise(DONTNEED) failed; pages stay resident");
        }
    }
}

/// Copies `bytes` into a new anonymous map, starting on a 2 MiB boundary and
/// marked for transparent huge pages where the system has them.
fn copy_to_huge_pages(bytes: &[u8]) -> std::io::Result<SharedBytes> {
    const HUGE_PAGE: usize = 2 << 20;
    // The extra 2 MiB lets the copy start on a huge-page boundary; pages
    // never written are never made resident.
    let mut map = MmapMut::map_anon(bytes.len() + HUGE_PAGE)?;
    #[cfg(target_os = "linux")]
    if let Err(error) = map.advise(Advice::HugePage) {
        tracing::debug!(%error, "madvise(HUGEPAGE) failed; weights use 4 KiB pages");
    }
    let start = map.as_ptr().align_offset(HUGE_PAGE).min(HUGE_PAGE);
    let range = start..start + bytes.len();
    map[range.clone()].copy_from_slice(bytes);
    let map: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(map.make_read_only()?);
    SharedBytes::new(map, range).ok_or_else(|| std::io::Error::other("copy range outside its map"))
}

/// Returns the burn dtype of a safetensors dtype, for the float types checkpoints use.
pub fn burn_dtype(dtype: Dtype) -> Option<DType> {
    match dtype {
        Dtype::F32 => Some(DType::F32),
        Dtype::F16 => Some(DType::F16),
        Dtype::BF16 => Some(DType::BF16),
        _ => None,
    }
}
