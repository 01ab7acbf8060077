//! Weight matrices in host memory and their products, for the CPU backends.
//!
//! burn's CPU backends read 16-bit weights slowly (flex converts bf16 to f32
//! on every matmul) and ndarray cannot hold them at all. On the CPU the linear
//! layers, the embedding and the LM head therefore keep their weights here.
//! A buffer already in the requested dtype is borrowed (qwen3-weights passes
//! a huge-page copy of the checkpoint tensor); any other is converted once at
//! load. Products take f32 activations, widen each weight to f32 as it is
//! read, accumulate in f32 and split the output rows across rayon's threads.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use burn::tensor::{DType, TensorData};
use half::{bf16, f16};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod amx;

/// A byte range of a buffer owned elsewhere, such as one tensor of a
/// memory-mapped checkpoint file.
#[derive(Clone)]
pub struct SharedBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    range: Range<usize>,
}

impl SharedBytes {
    /// Wraps `range` of `owner`; returns `None` when the range is out of bounds.
    pub fn new(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, range: Range<usize>) -> Option<Self> {
        (*owner).as_ref().get(range.clone())?;
        Some(SharedBytes { owner, range })
    }

    /// Returns the bytes.
    pub fn as_slice(&self) -> &[u8] {
        &(*self.owner).as_ref()[self.range.clone()]
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("range", &self.range)
            .finish()
    }
}

/// Error building a [`HostMatrix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostMatrixError {
    /// The dtype is not one of f32, bf16 and f16.
    #[error("dtype {0:?} is not supported for CPU weights; use f32, bf16 or f16")]
    UnsupportedDtype(DType),
    /// The shape is not two-dimensional.
    #[error("a weight matrix must have 2 dimensions, found shape {0:?}")]
    NotAMatrix(Vec<usize>),
    /// The byte count does not match the shape and dtype.
    #[error("{bytes} bytes do not hold a {rows} x {cols} matrix of {dtype:?}")]
    SizeMismatch {
        /// Bytes given.
        bytes: usize,
        /// Rows of the shape.
        rows: usize,
        /// Columns of the shape.
        cols: usize,
        /// Dtype of the bytes.
        dtype: DType,
    },
}

/// Elements stored in the process or borrowed from a shared buffer.
#[derive(Debug, Clone)]
enum Storage<T> {
    Owned(Arc<[T]>),
    Shared(SharedBytes),
}

impl<T: bytemuck::Pod> Storage<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Storage::Owned(values) => values,
            // Alignment and length were checked when the storage was built.
            Storage::Shared(bytes) => bytemuck::cast_slice(bytes.as_slice()),
        }
    }
}

#[derive(Debug, Clone)]
enum Elements {
    F32(Storage<f32>),
    Bf16(Storage<bf16>),
    F16(Storage<f16>),
}

/// A row-major `[rows, cols]` weight matrix in host memory, in f32, bf16 or
/// f16, in PyTorch's `[out_features, in_features]` layout, so that each
/// output of a product reads one contiguous row.
#[derive(Debug, Clone)]
pub struct HostMatrix {
    rows: usize,
    cols: usize,
    elements: Elements,
}

impl HostMatrix {
    /// Builds the matrix from little-endian `bytes` of `file_dtype` and
    /// `shape`, stored as `dtype`. The bytes are borrowed, not copied, when
    /// the dtypes agree and the bytes are aligned for it; otherwise they are
    /// converted into a new buffer.
    pub fn from_shared(
        bytes: SharedBytes,
        file_dtype: DType,
        shape: &[usize],
        dtype: DType,
    ) -> Result<Self, HostMatrixError> {
        let (rows, cols) = matrix_shape(shape)?;
        check_dtype(dtype)?;
        check_dtype(file_dtype)?;
        let expected = rows * cols * file_dtype.size();
        let len = bytes.as_slice().len();
        if len != expected {
            return Err(HostMatrixError::SizeMismatch {
                bytes: len,
                rows,
                cols,
                dtype: file_dtype,
            });
        }

        let borrowable = cfg!(target_endian = "little")
            && file_dtype == dtype
            && (bytes.as_slice().as_ptr() as usize).is_multiple_of(dtype.size());
        let elements = if borrowable {
            match dtype {
                DType::F32 => Elements::F32(Storage::Shared(bytes)),
                DType::BF16 => Elements::Bf16(Storage::Shared(bytes)),
                _ => Elements::F16(Storage::Shared(bytes)),
            }
        } else {
            convert(bytes.as_slice(), file_dtype, dtype)
        };
        Ok(HostMatrix {
            rows,
            cols,
            elements,
        })
    }

    /// Builds the matrix from host tensor data, converted to `dtype`.
    pub fn from_data(data: &TensorData, dtype: DType) -> Result<Self, HostMatrixError> {
        let (rows, cols) = matrix_shape(data.shape().as_slice())?;
        check_dtype(dtype)?;
        check_dtype(data.dtype())?;
        Ok(HostMatrix {
            rows,
            cols,
            elements: convert(data.as_bytes(), data.dtype(), dtype),
        })
    }

    /// Returns the number of rows (output features).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Returns the number of columns (input features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Returns the dtype of the stored elements.
    pub fn dtype(&self) -> DType {
        match self.elements {
            Elements::F32(_) => DType::F32,
            Elements::Bf16(_) => DType::BF16,
            Elements::F16(_) => DType::F16,
        }
    }

    /// Returns whether the elements are borrowed from a shared buffer.
    pub fn is_shared(&self) -> bool {
        matches!(
            self.elements,
            Elements::F32(Storage::Shared(_))
                | Elements::Bf16(Storage::Shared(_))
                | Elements::F16(Storage::Shared(_))
        )
    }

    /// Writes row `index`, widened to f32, into `out` (`cols` values).
    ///
    /// # Panics
    ///
    /// When `index` is not a row or `out` does not have `cols` values.
    pub fn row_into(&self, index: usize, out: &mut [f32]) {
        assert!(index < self.rows, "row {index} of {} rows", self.rows);
        let range = index * self.cols..(index + 1) * self.cols;
        match &self.elements {
            Elements::F32(s) => out.copy_from_slice(&s.as_slice()[range]),
            Elements::Bf16(s) => widen_into(&s.as_slice()[range], out),
            Elements::F16(s) => widen_into(&s.as_slice()[range], out),
        }
    }

    /// Multiplies `m` input rows by the transposed matrix: `input` is
    /// `[m, cols]`, the result `[m, rows]`, both row-major f32.
    ///
    /// # Panics
    ///
    /// When `input` does not hold `m * cols` values.
    pub fn matmul(&self, input: &[f32], m: usize) -> Vec<f32> {
        let [product] = matmul_many([self], input, m);
        product
    }
}

/// Multiplies the same `m` input rows (`[m, cols]`) by several matrices with
/// `cols` columns each, such as `q_proj`, `k_proj` and `v_proj`: returns one
/// `[m, rows]` product per matrix, as [`HostMatrix::matmul`] would up to
/// rounding. One kernel serves all the matrices, so a matrix that alone
/// would run on the AMX tiles takes the AVX-512 kernel beside one that
/// does not fit them.
///
/// The inputs are prepared once and all products share one parallel
/// section, so the threads start and stop once instead of once per matrix.
///
/// # Panics
///
/// When the matrices have different column counts or `input` does not hold
/// `m * cols` values.
pub fn matmul_many<const N: usize>(
    matrices: [&HostMatrix; N],
    input: &[f32],
    m: usize,
) -> [Vec<f32>; N] {
    let k = matrices.first().map_or(0, |matrix| matrix.cols);
    assert!(
        matrices.iter().all(|matrix| matrix.cols == k),
        "matrices with different column counts"
    );
    assert_eq!(input.len(), m * k, "input of {m} rows of {k}");
    #[cfg(target_arch = "x86_64")]
    if tiles_fit(&matrices, k, m) {
        return tile_products(matrices, input, m, k);
    }
    let mut transposed: [Vec<f32>; N] =
        std::array::from_fn(|index| vec![0.0f32; matrices[index].rows * m]);
    if m == 0 {
        return transposed;
    }

    // Each task takes a band of weight rows of one matrix and writes its
    // outputs as a contiguous `[band, m]` block of that matrix's transposed
    // product.
    let band = band_rows(&matrices, 4);
    let mut tasks = Vec::new();
    for (matrix, product) in matrices.iter().zip(transposed.iter_mut()) {
        for (index, out) in product.chunks_mut(band * m).enumerate() {
            tasks.push((*matrix, index * band, out));
        }
    }
    let inputs = Inputs::new(input, m, k);
    tasks.into_par_iter().for_each(|(matrix, first, out)| {
        let weights = first * k..first * k + out.len() / m * k;
        match &matrix.elements {
            Elements::F32(s) => rows_times(&s.as_slice()[weights], &inputs, out),
            Elements::Bf16(s) => rows_times(&s.as_slice()[weights], &inputs, out),
            Elements::F16(s) => rows_times(&s.as_slice()[weights], &inputs, out),
        }
    });

    if m == 1 {
        return transposed;
    }
    transposed.map(|product| {
        let n = product.len() / m;
        let mut result = vec![0.0f32; m * n];
        for (row, outputs) in product.chunks_exact(m).enumerate() {
            for (i, &value) in outputs.iter().enumerate() {
                result[i * n + row] = value;
            }
        }
        result
    })
}

/// Returns how many weight rows each task of a product takes: a multiple of
/// `multiple`, and a few bands per thread, which evens out the load when one
/// core is busy elsewhere.
fn band_rows(matrices: &[&HostMatrix], multiple: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    let total_rows: usize = matrices.iter().map(|matrix| matrix.rows).sum();
    total_rows
        .div_ceil(threads * 4)
        .next_multiple_of(multiple)
        .max(multiple)
}

/// Returns whether the products of `m` tokens by `matrices` (of `k`
/// columns) run on the AMX tiles: bf16 weights in whole tiles, on a CPU
/// that has them.
#[cfg(target_arch = "x86_64")]
fn tiles_fit(matrices: &[&HostMatrix], k: usize, m: usize) -> bool {
    !matrices.is_empty()
        && matrices.iter().all(|matrix| {
            matches!(matrix.elements, Elements::Bf16(_)) && amx::fits(matrix.rows, k, m)
        })
        && amx::available()
}

/// [`matmul_many`] on the AMX tiles, for products that [`tiles_fit`].
#[cfg(target_arch = "x86_64")]
fn tile_products<const N: usize>(
    matrices: [&HostMatrix; N],
    input: &[f32],
    m: usize,
    k: usize,
) -> [Vec<f32>; N] {
    let mut products: [Vec<f32>; N] =
        std::array::from_fn(|index| vec![0.0f32; m * matrices[index].rows]);
    let band = band_rows(&matrices, amx::ROWS);
    let mut tasks = Vec::new();
    for (matrix, product) in matrices.iter().zip(products.iter_mut()) {
        let Elements::Bf16(weights) = &matrix.elements else {
            unreachable!("tiles_fit checked the dtype")
        };
        let columns = amx::OutputColumns::new(product, matrix.rows);
        for first in (0..matrix.rows).step_by(band) {
            let rows = first..(first + band).min(matrix.rows);
            tasks.push((
                &weights.as_slice()[rows.start * k..rows.end * k],
                columns.from(first),
            ));
        }
    }
    let packed = amx::pack_inputs(input, m, k);
    tasks.into_par_iter().for_each(|(weights, out)| {
        // SAFETY: `tiles_fit` checked the CPU and the shapes, `packed` contains
        // the `m` tokens packed for the tiles, and the tasks write disjoint
        // columns of the products, which outlive them.
        unsafe { amx::rows_times(weights, k, &packed, m, out) };
    });
    products
}

fn matrix_shape(shape: &[usize]) -> Result<(usize, usize), HostMatrixError> {
    match shape {
        [rows, cols] => Ok((*rows, *cols)),
        _ => Err(HostMatrixError::NotAMatrix(shape.to_vec())),
    }
}

fn check_dtype(dtype: DType) -> Result<(), HostMatrixError> {
    match dtype {
        DType::F32 | DType::BF16 | DType::F16 => Ok(()),
        other => Err(HostMatrixError::UnsupportedDtype(other)),
    }
}

/// Decodes little-endian `bytes` of `from` (f32, bf16 or f16) and stores them as `to`.
fn convert(bytes: &[u8], from: DType, to: DType) -> Elements {
    let values = bytes.chunks_exact(from.size()).map(|chunk| match from {
        DType::F32 => f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]),
        DType::BF16 => bf16::from_le_bytes([chunk[0], chunk[1]]).to_f32(),
        _ => f16::from_le_bytes([chunk[0], chunk[1]]).to_f32(),
    });
    match to {
        DType::F32 => Elements::F32(Storage::Owned(values.collect())),
        DType::BF16 => Elements::Bf16(Storage::Owned(values.map(bf16::from_f32).collect())),
        _ => Elements::F16(Storage::Owned(values.map(f16::from_f32).collect())),
    }
}

/// A weight element that widens to f32.
trait Element: bytemuck::Pod + Send + Sync {
    fn widen(self) -> f32;
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }
}

impl Element for bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Element for f16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

fn widen_into<W: Element>(values: &[W], out: &mut [f32]) {
    for (out, &value) in out.iter_mut().zip(values) {
        *out = value.widen();
    }
}

/// The activations of one product, `[m, k]` row-major, with the transposed
/// copy that the AVX-512 kernel for many tokens reads, made once per product.
struct Inputs<'a> {
    values: &'a [f32],
    m: usize,
    k: usize,
    /// `[k, padded]`: column `c` of every token, zero past `m`; empty when unused.
    packed: Vec<f32>,
    padded: usize,
}

impl<'a> Inputs<'a> {
    fn new(values: &'a [f32], m: usize, k: usize) -> Self {
        let mut inputs = Inputs {
            values,
            m,
            k,
            packed: Vec::new(),
            padded: 0,
        };
        #[cfg(target_arch = "x86_64")]
        if avx512::available() && m >= avx512::MANY_TOKENS {
            inputs.padded = m.next_multiple_of(avx512::LANES);
            inputs.packed = avx512::pack_inputs(values, m, k, inputs.padded);
        }
        inputs
    }
}

/// Computes `out[r * m + i] = dot(weights row r, input row i)` for every
/// weight row of `weights` (`[rows, k]`) and input row.
fn rows_times<W: Element + avx512::Load>(weights: &[W], inputs: &Inputs, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: the CPU has the features `avx512::rows_times` is compiled
        // for, and the slices have the lengths it reads.
        unsafe { avx512::rows_times(weights, inputs, out) };
        return;
    }
    portable::rows_times(weights, inputs.values, inputs.m, inputs.k, out);
}

/// The plain Rust kernel, which compilers vectorize: each of the lanes
/// accumulates its own partial sum, so no reassociation is needed.
mod portable {
    use super::Element;

    const LANES: usize = 16;

    pub(super) fn rows_times<W: Element>(
        weights: &[W],
        input: &[f32],
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2.
            unsafe { rows_times_avx2(weights, input, m, k, out) };
            return;
        }
        rows_times_generic(weights, input, m, k, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn rows_times_avx2<W: Element>(
        weights: &[W],
        input: &[f32],
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        rows_times_generic(weights, input, m, k, out);
    }

    #[inline(always)]
    fn rows_times_generic<W: Element>(
        weights: &[W],
        input: &[f32],
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        for (row, outputs) in weights.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
            for (output, input) in outputs.iter_mut().zip(input.chunks_exact(k)) {
                *output = dot(row, input);
            }
        }
    }

    #[inline(always)]
    fn dot<W: Element>(weights: &[W], input: &[f32]) -> f32 {
        let mut lanes = [0.0f32; LANES];
        let whole = weights.len() / LANES * LANES;
        for (w, x) in weights[..whole]
            .chunks_exact(LANES)
            .zip(input[..whole].chunks_exact(LANES))
        {
            for lane in 0..LANES {
                lanes[lane] += w[lane].widen() * x[lane];
            }
        }
        let mut sum: f32 = lanes.iter().sum();
        for (w, x) in weights[whole..].iter().zip(&input[whole..]) {
            sum += w.widen() * x;
        }
        sum
    }
}

/// The AVX-512 kernels: a streamed dot product per weight row for one to
/// three tokens, and register blocks of 12 weight rows by 32 tokens for more.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use half::{bf16, f16};

    use super::Inputs;

    pub(super) const LANES: usize = 16;
    /// Below this many input rows the products are bound by memory, not arithmetic.
    pub(super) const MANY_TOKENS: usize = 4;
    /// Weight rows per register block of the many-token kernel.
    const BLOCK_ROWS: usize = 12;
    /// How far ahead of the current weights `dot` prefetches.
    const PREFETCH_BYTES: usize = 4096;

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
    }

    /// Loads 16 elements, or the first `len` of them, widened to f32.
    pub(super) trait Load: Copy {
        /// # Safety
        /// The CPU supports AVX-512 F, BW and VL, and `ptr` points to 16 readable elements.
        unsafe fn load(ptr: *const Self) -> __m512;

        /// # Safety
        /// As [`load`](Self::load), for `len < 16` readable elements.
        unsafe fn load_partial(ptr: *const Self, len: usize) -> __m512;
    }

    fn mask(len: usize) -> u16 {
        ((1u32 << len) - 1) as u16
    }

    impl Load for f32 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load(ptr: *const f32) -> __m512 {
            unsafe { _mm512_loadu_ps(ptr) }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load_partial(ptr: *const f32, len: usize) -> __m512 {
            unsafe { _mm512_maskz_loadu_ps(mask(len), ptr) }
        }
    }

    impl Load for bf16 {
        // bf16 is the upper half of an f32: zero-extend and shift left by 16.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load(ptr: *const bf16) -> __m512 {
            unsafe {
                let bits = _mm256_loadu_si256(ptr.cast());
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
            }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load_partial(ptr: *const bf16, len: usize) -> __m512 {
            unsafe {
                let bits = _mm256_maskz_loadu_epi16(mask(len), ptr.cast());
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(bits)))
            }
        }
    }

    impl Load for f16 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load(ptr: *const f16) -> __m512 {
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(ptr.cast())) }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
        unsafe fn load_partial(ptr: *const f16, len: usize) -> __m512 {
            unsafe { _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask(len), ptr.cast())) }
        }
    }

    /// # Safety
    /// The CPU supports AVX-512 F, BW and VL, and `inputs` was made with the
    /// packed copy. `weights` has whole rows of `k` values, and `out` one
    /// value per weight row and input row.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn rows_times<W: Load>(weights: &[W], inputs: &Inputs, out: &mut [f32]) {
        let (input, m, k) = (inputs.values, inputs.m, inputs.k);
        let rows = weights.len() / k;
        debug_assert_eq!(input.len(), m * k);
        debug_assert_eq!(out.len(), rows * m);

        // With fewer input rows than a tile, the product is bound by memory:
        // each weight row is streamed once per input row, in address order,
        // which the hardware prefetcher follows best.
        if m < MANY_TOKENS {
            for (row, outputs) in weights.chunks_exact(k).zip(out.chunks_exact_mut(m)) {
                for (output, input) in outputs.iter_mut().zip(input.chunks_exact(k)) {
                    *output = unsafe { dot(row.as_ptr(), input.as_ptr(), k) };
                }
            }
            return;
        }

        // With several input rows the kernel is bound by arithmetic. The
        // inputs come transposed to `[k, tokens]`, so one vector contains 16
        // tokens. Each block of weight rows is widened to f32 once, and the
        // register kernel broadcasts one weight against those vectors.
        let (packed, padded) = (&inputs.packed, inputs.padded);
        debug_assert_eq!(packed.len(), k * padded);
        let mut widened = vec![0.0f32; BLOCK_ROWS * k];
        let mut row = 0;
        while row < rows {
            let count = (rows - row).min(BLOCK_ROWS);
            unsafe {
                widen(
                    &weights[row * k..(row + count) * k],
                    &mut widened[..count * k],
                )
            };
            // Rows past the end of the matrix stay zero and are not stored.
            widened[count * k..].fill(0.0);
            let outputs = &mut out[row * m..(row + count) * m];

            // The first pass over the tokens also prefetches the next weight
            // rows, so that their widening does not wait on memory.
            let next = &weights[(row + count) * k..];
            let next_bytes = size_of_val(&next[..next.len().min(BLOCK_ROWS * k)]);
            let mut token = 0;
            while token < m {
                let tokens = (m - token).min(2 * LANES);
                let block = Block {
                    weights: widened.as_ptr(),
                    inputs: unsafe { packed.as_ptr().add(token) },
                    out: unsafe { outputs.as_mut_ptr().add(token) },
                    k,
                    padded,
                    m,
                    rows: count,
                    tokens,
                    prefetch: next.as_ptr().cast(),
                    prefetch_step: if token == 0 {
                        next_bytes.div_ceil(k)
                    } else {
                        0
                    },
                };
                unsafe {
                    if tokens > LANES {
                        block_product::<2>(&block);
                    } else {
                        block_product::<1>(&block);
                    }
                }
                token += tokens;
            }
            row += count;
        }
    }

    /// Returns `input` (`[m, k]`) transposed to `[k, padded]`, zero past `m`.
    pub(super) fn pack_inputs(input: &[f32], m: usize, k: usize, padded: usize) -> Vec<f32> {
        let mut packed = vec![0.0f32; k * padded];
        // Sixteen tokens at a time: sixteen read streams, contiguous writes.
        for first in (0..m).step_by(LANES) {
            let tokens = (m - first).min(LANES);
            for column in 0..k {
                let row = &mut packed[column * padded + first..][..tokens];
                for (token, value) in row.iter_mut().enumerate() {
                    *value = input[(first + token) * k + column];
                }
            }
        }
        packed
    }

    /// One register block of the many-token kernel: `BLOCK_ROWS` widened
    /// weight rows (row stride `k`) by up to `VECTORS * 16` tokens of the
    /// packed inputs (row stride `padded`), stored for the first `rows` rows
    /// and `tokens` tokens at `out[row * m + token]`.
    struct Block {
        weights: *const f32,
        inputs: *const f32,
        out: *mut f32,
        k: usize,
        padded: usize,
        m: usize,
        rows: usize,
        tokens: usize,
        /// Bytes to prefetch, `prefetch_step` more at each of the `k` steps (0: none).
        prefetch: *const i8,
        prefetch_step: usize,
    }

    // Index loops over the constant block sizes unroll into plain registers.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block_product<const VECTORS: usize>(block: &Block) {
        let mut sums = [[_mm512_setzero_ps(); VECTORS]; BLOCK_ROWS];
        let mut inputs = [_mm512_setzero_ps(); VECTORS];
        unsafe {
            for c in 0..block.k {
                if block.prefetch_step > 0 {
                    _mm_prefetch::<_MM_HINT_T0>(
                        block.prefetch.wrapping_add(c * block.prefetch_step),
                    );
                }
                let packed = block.inputs.add(c * block.padded);
                for v in 0..VECTORS {
                    inputs[v] = _mm512_loadu_ps(packed.add(v * LANES));
                }
                for r in 0..BLOCK_ROWS {
                    let weight = _mm512_set1_ps(*block.weights.add(r * block.k + c));
                    for v in 0..VECTORS {
                        sums[r][v] = _mm512_fmadd_ps(weight, inputs[v], sums[r][v]);
                    }
                }
            }
            for r in 0..block.rows {
                for v in 0..VECTORS {
                    let first = v * LANES;
                    if first >= block.tokens {
                        break;
                    }
                    let out = block.out.add(r * block.m + first);
                    let valid = (block.tokens - first).min(LANES);
                    if valid == LANES {
                        _mm512_storeu_ps(out, sums[r][v]);
                    } else {
                        _mm512_mask_storeu_ps(out, mask(valid), sums[r][v]);
                    }
                }
            }
        }
    }

    /// Returns the dot product of `k` weights at `w` and `k` inputs at `x`,
    /// with four independent sums so that the adds do not wait on each other.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn dot<W: Load>(w: *const W, x: *const f32, k: usize) -> f32 {
        const UNROLL: usize = 4;
        let mut sums = [_mm512_setzero_ps(); UNROLL];
        let mut c = 0;
        unsafe {
            while c + UNROLL * LANES <= k {
                // Asks for the weights a few cache lines ahead: the hardware
                // prefetcher alone left the loop waiting on memory.
                let ahead = w.add(c).cast::<i8>().add(PREFETCH_BYTES);
                for line in (0..UNROLL * LANES * size_of::<W>()).step_by(64) {
                    _mm_prefetch::<_MM_HINT_T0>(ahead.add(line));
                }
                for (u, sum) in sums.iter_mut().enumerate() {
                    let at = c + u * LANES;
                    *sum = _mm512_fmadd_ps(W::load(w.add(at)), _mm512_loadu_ps(x.add(at)), *sum);
                }
                c += UNROLL * LANES;
            }
            while c + LANES <= k {
                sums[0] = _mm512_fmadd_ps(W::load(w.add(c)), _mm512_loadu_ps(x.add(c)), sums[0]);
                c += LANES;
            }
            if c < k {
                let len = k - c;
                let weight = W::load_partial(w.add(c), len);
                let input = _mm512_maskz_loadu_ps(mask(len), x.add(c));
                sums[1] = _mm512_fmadd_ps(weight, input, sums[1]);
            }
        }
        let sum = _mm512_add_ps(
            _mm512_add_ps(sums[0], sums[1]),
            _mm512_add_ps(sums[2], sums[3]),
        );
        _mm512_reduce_add_ps(sum)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn widen<W: Load>(weights: &[W], out: &mut [f32]) {
        let whole = weights.len() / LANES * LANES;
        let mut i = 0;
        unsafe {
            while i < whole {
                _mm512_storeu_ps(out.as_mut_ptr().add(i), W::load(weights.as_ptr().add(i)));
                i += LANES;
            }
        }
        for (out, weight) in out[whole..].iter_mut().zip(&weights[whole..]) {
            // SAFETY: one element is readable; the lanes past it are masked off.
            let wide = unsafe { W::load_partial(weight, 1) };
            *out = _mm512_cvtss_f32(wide);
        }
    }
}

/// Stands in for the AVX-512 kernel on other architectures.
#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub(super) trait Load {}
    impl<T> Load for T {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) from a small linear congruential generator.
    fn values(count: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn bytes_of(values: &[f32], dtype: DType) -> Vec<u8> {
        match dtype {
            DType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            DType::BF16 => values
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
            _ => values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }

    /// Computes the product in f64 from the weights as stored in `dtype`,
    /// with the sum of the absolute values of each output's terms.
    fn reference(
        weights: &[f32],
        dtype: DType,
        input: &[f32],
        m: usize,
        k: usize,
    ) -> Vec<(f64, f64)> {
        let stored: Vec<f64> = weights
            .iter()
            .map(|&v| match dtype {
                DType::F32 => f64::from(v),
                DType::BF16 => f64::from(bf16::from_f32(v).to_f32()),
                _ => f64::from(f16::from_f32(v).to_f32()),
            })
            .collect();
        let n = weights.len() / k;
        let mut out = vec![(0.0, 0.0); m * n];
        for i in 0..m {
            for r in 0..n {
                let terms = (0..k).map(|c| stored[r * k + c] * f64::from(input[i * k + c]));
                out[i * n + r] = terms.fold((0.0, 0.0), |(sum, size), term| {
                    (sum + term, size + term.abs())
                });
            }
        }
        out
    }

    fn shared(bytes: Vec<u8>) -> SharedBytes {
        let len = bytes.len();
        SharedBytes::new(Arc::new(bytes), 0..len).expect("range inside the buffer")
    }

    #[test]
    fn matmul_matches_f64_for_every_dtype_and_shape() {
        // Bands of weight rows shrink with the thread count, so the test
        // fixes it: with 2 threads the largest matrix gets bands of 128 rows.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .expect("thread pool");
        pool.install(matmul_matches_f64_with_this_pool);
    }

    fn matmul_matches_f64_with_this_pool() {
        // Shapes cover every kernel and whole and partial blocks of rows,
        // tokens and lanes.
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            for (n, k, m) in [
                (1, 1, 1),
                (5, 17, 1),
                (8, 64, 3),
                (13, 100, 4),
                (9, 48, 11),
                (25, 70, 37),
                // Whole AMX tiles of bf16 weights, with partial token groups.
                (32, 64, 4),
                (48, 96, 17),
                (16, 32, 33),
                (64, 128, 50),
                // Bands long enough for two weight tiles per step, and an
                // odd tile at the end, with an even and an odd number of
                // token groups.
                (1008, 64, 20),
                (1008, 64, 40),
            ] {
                let weights = values(n * k, 1);
                let input = values(m * k, 2);
                let matrix = HostMatrix::from_shared(
                    shared(bytes_of(&weights, dtype)),
                    dtype,
                    &[n, k],
                    dtype,
                )
                .expect("valid matrix");
                let product = matrix.matmul(&input, m);
                let expected = reference(&weights, dtype, &input, m, k);
                assert_eq!(product.len(), expected.len());
                // f32 sums of these sizes stay near 2e-7 of the sum of the
                // terms' magnitudes. bf16 activations in two parts, not
                // three, would reach 1e-6.
                for (index, (&got, &(want, size))) in product.iter().zip(&expected).enumerate() {
                    assert!(
                        (f64::from(got) - want).abs() <= 1e-6 * size,
                        "{dtype:?} n={n} k={k} m={m} output {index}: {got} != {want}"
                    );
                }
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn bf16_tiles_are_used_where_the_cpu_has_them() {
        let matrix = |rows: usize, cols: usize, dtype: DType| {
            let bytes = shared(bytes_of(&values(rows * cols, 3), dtype));
            HostMatrix::from_shared(bytes, dtype, &[rows, cols], dtype).expect("valid matrix")
        };
        let whole = matrix(32, 64, DType::BF16);
        let expected = amx::available();
        eprintln!("AMX tiles available: {expected}");
        assert_eq!(tiles_fit(&[&whole], 64, 4), expected);

        // Too few tokens, a partial tile of rows or columns, or weights
        // other than bf16 take the AVX-512 kernels.
        assert!(!tiles_fit(&[&whole], 64, 3));
        assert!(!tiles_fit(&[&whole, &matrix(24, 64, DType::BF16)], 64, 8));
        assert!(!tiles_fit(&[&matrix(32, 48, DType::BF16)], 48, 8));
        assert!(!tiles_fit(&[&matrix(32, 64, DType::F32)], 64, 8));
    }

    #[test]
    fn matmul_many_equals_separate_products() {
        let k = 40;
        let shapes = [(7, DType::BF16), (20, DType::F32), (3, DType::F16)];
        let matrices: Vec<HostMatrix> = shapes
            .iter()
            .enumerate()
            .map(|(seed, &(rows, dtype))| {
                let bytes = shared(bytes_of(&values(rows * k, seed as u64 + 10), dtype));
                HostMatrix::from_shared(bytes, dtype, &[rows, k], dtype).expect("valid matrix")
            })
            .collect();
        for m in [1, 5] {
            let input = values(m * k, 20);
            let products = matmul_many([&matrices[0], &matrices[1], &matrices[2]], &input, m);
            for (matrix, product) in matrices.iter().zip(&products) {
                assert_eq!(product, &matrix.matmul(&input, m), "m={m}");
                assert_eq!(product.len(), m * matrix.rows());
            }
        }
    }

    #[test]
    fn portable_kernel_matches_f64() {
        // `matmul` takes the AVX-512 kernel where the CPU has it; this
        // checks the kernel other CPUs run.
        let (n, k, m) = (6, 37, 3);
        let weights = values(n * k, 4);
        let input = values(m * k, 5);
        let stored: Vec<bf16> = weights.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut transposed = vec![0.0f32; n * m];
        portable::rows_times(&stored, &input, m, k, &mut transposed);
        let expected = reference(&weights, DType::BF16, &input, m, k);
        for r in 0..n {
            for i in 0..m {
                let (got, (want, _)) = (transposed[r * m + i], expected[i * n + r]);
                assert!(
                    (f64::from(got) - want).abs() <= 1e-5 * (k as f64).sqrt(),
                    "row {r} input {i}: {got} != {want}"
                );
            }
        }
    }

    #[test]
    fn matching_dtype_borrows_and_other_dtype_converts() {
        let weights = values(6, 3);
        let bf16_bytes = shared(bytes_of(&weights, DType::BF16));

        let borrowed =
            HostMatrix::from_shared(bf16_bytes.clone(), DType::BF16, &[2, 3], DType::BF16)
                .expect("valid matrix");
        assert!(borrowed.is_shared());

        let converted = HostMatrix::from_shared(bf16_bytes, DType::BF16, &[2, 3], DType::F32)
            .expect("valid matrix");
        assert!(!converted.is_shared());
        assert_eq!(converted.dtype(), DType::F32);
        let mut row = [0.0f32; 3];
        converted.row_into(1, &mut row);
        for (got, &want) in row.iter().zip(&weights[3..]) {
            assert_eq!(*got, bf16::from_f32(want).to_f32());
        }
    }

    #[test]
    fn misaligned_bytes_are_copied() {
        let mut bytes = vec![0u8];
        bytes.extend(bytes_of(&[1.0, 2.0], DType::F32));
        let len = bytes.len();
        let misaligned =
            SharedBytes::new(Arc::new(bytes), 1..len).expect("range inside the buffer");
        let matrix = HostMatrix::from_shared(misaligned, DType::F32, &[1, 2], DType::F32)
            .expect("valid matrix");
        assert!(!matrix.is_shared());
        assert_eq!(matrix.matmul(&[1.0, 1.0], 1), vec![3.0]);
    }

    #[test]
    fn wrong_size_and_shape_are_rejected() {
        let bytes = shared(vec![0u8; 10]);
        assert_eq!(
            HostMatrix::from_shared(bytes.clone(), DType::BF16, &[2, 3], DType::BF16).unwrap_err(),
            HostMatrixError::SizeMismatch {
                bytes: 10,
                rows: 2,
                cols: 3,
                dtype: DType::BF16
            }
        );
        assert_eq!(
            HostMatrix::from_shared(bytes.clone(), DType::BF16, &[10], DType::BF16).unwrap_err(),
            HostMatrixError::NotAMatrix(vec![10])
        );
        assert_eq!(
            HostMatrix::from_shared(bytes, DType::I32, &[2, 3], DType::BF16).unwrap_err(),
            HostMatrixError::UnsupportedDtype(DType::I32)
        );
        assert!(SharedBytes::new(Arc::new(vec![0u8; 4]), 2..6).is_none());
    }
}
