//! The AMX kernel for bf16 weights and several tokens, on x86-64 CPUs with
//! Advanced Matrix Extensions (Sapphire Rapids and later Xeons).
//!
//! One `tdpbf16ps` multiplies a tile of 16 weight rows by 32 bf16 columns
//! with a tile of 32 columns by 16 tokens, accumulating in f32: 8,192
//! multiply-adds, where an AVX-512 instruction does 16. The activations are
//! f32, so each one is split into a bf16 value and the bf16 rounding of what
//! remains, and both halves go through the tile unit. Their sum carries 16
//! significant bits of the activation against the 8 of a plain bf16
//! rounding, so the product stays within f32 rounding of the exact one.
//!
//! Rust has no stable AMX intrinsics, so the tile instructions are written as
//! inline assembly. Linux lets a process use the tile registers only after it
//! requests them, which [`available`] does once.

use std::arch::asm;
use std::sync::OnceLock;

use half::bf16;

/// Tokens per tile: the columns of the activation tile and of the product tile.
pub(super) const TOKENS: usize = 16;
/// Weight rows per tile.
pub(super) const ROWS: usize = 16;
/// Weight columns per tile: 64 bytes of bf16.
pub(super) const COLUMNS: usize = 32;
/// Pairs of columns per tile (the rows of an activation tile).
const PAIRS: usize = COLUMNS / 2;

/// Returns whether the CPU has the AMX tile and bf16 units, the operating
/// system lets this process use them, and the AVX-512 kernels run here too.
pub(super) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE
        .get_or_init(|| cpu_has_amx_bf16() && super::avx512::available() && request_tile_data())
}

fn cpu_has_amx_bf16() -> bool {
    // CPUID leaf 7, subleaf 0: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
    let leaf = std::arch::x86_64::__cpuid_count(7, 0);
    leaf.edx & (1 << 22) != 0 && leaf.edx & (1 << 24) != 0
}

/// Asks Linux for permission to use the tile data registers
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), for the whole
/// process. Returns whether it was granted.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let status: i64;
    // SAFETY: the system call only changes which register state the kernel
    // saves for this process; it reads and writes no memory of ours.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => status,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if status != 0 {
        tracing::debug!(
            status,
            "Linux rejected the request for the AMX tile registers; prompts use the AVX-512 kernels"
        );
    }
    status == 0
}

#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// Returns whether a product of `m` tokens by matrices of `rows` rows and
/// `k` columns can run on the tiles: whole tiles of weights, and enough
/// tokens to fill part of one.
pub(super) fn fits(rows: usize, k: usize, m: usize) -> bool {
    rows.is_multiple_of(ROWS)
        && k.is_multiple_of(COLUMNS)
        && k > 0
        && m >= super::avx512::MANY_TOKENS
}

/// Returns the activations `[m, k]` as the activation tiles read them: for
/// each group of 16 tokens, first the bf16 roundings and then the bf16
/// remainders, each as `k / 2` rows of 16 tokens holding one pair of
/// adjacent columns each. Tokens past `m` are zero.
pub(super) fn pack_inputs(input: &[f32], m: usize, k: usize) -> Vec<u32> {
    let half = k / 2 * TOKENS;
    let mut packed = vec![0u32; m.div_ceil(TOKENS) * 2 * half];
    for (token, values) in input.chunks_exact(k).enumerate().take(m) {
        let group = &mut packed[token / TOKENS * 2 * half..][..2 * half];
        let (rounded, remainders) = group.split_at_mut(half);
        for (pair, columns) in values.chunks_exact(2).enumerate() {
            let index = pair * TOKENS + token % TOKENS;
            let (high, low) = split(columns[0]);
            let (high_next, low_next) = split(columns[1]);
            rounded[index] = u32::from(high) | u32::from(high_next) << 16;
            remainders[index] = u32::from(low) | u32::from(low_next) << 16;
        }
    }
    packed
}

/// Splits `value` into its bf16 rounding and the bf16 rounding of the rest, as bits.
fn split(value: f32) -> (u16, u16) {
    let high = bf16::from_f32(value);
    let low = bf16::from_f32(value - high.to_f32());
    (high.to_bits(), low.to_bits())
}

/// Output columns of one task: a range of columns of a `[m, columns]`
/// row-major matrix whose other columns other tasks write.
#[derive(Clone, Copy)]
pub(super) struct OutputColumns {
    first: *mut f32,
    stride: usize,
}

// SAFETY: tasks hold `OutputColumns` of disjoint column ranges (see
// `tile_products`), so no two threads write the same value.
unsafe impl Send for OutputColumns {}

impl OutputColumns {
    /// Returns all columns of `product`, a `[m, columns]` matrix.
    pub(super) fn new(product: &mut [f32], columns: usize) -> Self {
        Self {
            first: product.as_mut_ptr(),
            stride: columns,
        }
    }

    /// Returns the columns from `column` on.
    pub(super) fn from(self, column: usize) -> Self {
        Self {
            first: self.first.wrapping_add(column),
            stride: self.stride,
        }
    }
}

/// The shape of every tile: 16 rows of 64 bytes (palette 1).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    fn all_full() -> Self {
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        for tile in 0..8 {
            bytes[16 + 2 * tile..18 + 2 * tile].copy_from_slice(&64u16.to_le_bytes());
            bytes[48 + tile] = 16;
        }
        Self(bytes)
    }
}

/// Writes the dot product of weight row `r` and token `i` to column `r` of
/// row `i` of `out`, for the weight rows `weights` (`[rows, k]`, rows a
/// multiple of 16) and the `m` tokens of `packed` (from [`pack_inputs`]).
///
/// # Safety
///
/// [`available`] returned true, `k` is a multiple of 32, `packed` was made
/// by [`pack_inputs`] for `m` tokens of `k` columns, `out` has `rows`
/// columns and `m` rows, and no other thread accesses them.
pub(super) unsafe fn rows_times(
    weights: &[bf16],
    k: usize,
    packed: &[u32],
    m: usize,
    out: OutputColumns,
) {
    let rows = weights.len() / k;
    debug_assert!(rows.is_multiple_of(ROWS));
    let groups = m.div_ceil(TOKENS);
    let half = k / 2 * TOKENS;
    debug_assert_eq!(packed.len(), groups * 2 * half);
    let config = TileConfig::all_full();
    let weight_stride = k * size_of::<bf16>();
    let tile_stride = TOKENS * size_of::<u32>();
    let mut products = [[[0f32; TOKENS]; ROWS]; 2];

    // Tiles: 0 weights, 1 and 2 the rounded and remainder activations of
    // the first token group, 3 and 4 those of the second, 5 and 6 the two
    // products. Each weight tile is loaded once for two groups of tokens.
    // SAFETY (for the assembly below): the caller vouches for the CPU and
    // the sizes. Every tile load reads 16 rows of 64 bytes inside `weights`
    // or `packed`, and every store writes 16 rows of 64 bytes of `products`.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        for first_row in (0..rows).step_by(ROWS) {
            for group in (0..groups).step_by(2) {
                let pair = group + 1 < groups;
                asm!("tilezero tmm5", "tilezero tmm6", options(nostack, nomem));
                for block in 0..k / COLUMNS {
                    let tile = weights.as_ptr().add(first_row * k + block * COLUMNS);
                    let rounded = packed
                        .as_ptr()
                        .add(group * 2 * half + block * PAIRS * TOKENS);
                    asm!(
                        "tileloadd tmm0, [{tile} + {weight_stride}*1]",
                        "tileloadd tmm1, [{rounded} + {tile_stride}*1]",
                        "tileloadd tmm2, [{remainders} + {tile_stride}*1]",
                        "tdpbf16ps tmm5, tmm0, tmm1",
                        "tdpbf16ps tmm5, tmm0, tmm2",
                        tile = in(reg) tile,
                        weight_stride = in(reg) weight_stride,
                        rounded = in(reg) rounded,
                        remainders = in(reg) rounded.add(half),
                        tile_stride = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                    if pair {
                        let rounded = rounded.add(2 * half);
                        asm!(
                            "tileloadd tmm3, [{rounded} + {tile_stride}*1]",
                            "tileloadd tmm4, [{remainders} + {tile_stride}*1]",
                            "tdpbf16ps tmm6, tmm0, tmm3",
                            "tdpbf16ps tmm6, tmm0, tmm4",
                            rounded = in(reg) rounded,
                            remainders = in(reg) rounded.add(half),
                            tile_stride = in(reg) tile_stride,
                            options(nostack, readonly),
                        );
                    }
                }
                asm!(
                    "tilestored [{first} + {tile_stride}*1], tmm5",
                    "tilestored [{second} + {tile_stride}*1], tmm6",
                    first = in(reg) products[0].as_mut_ptr(),
                    second = in(reg) products[1].as_mut_ptr(),
                    tile_stride = in(reg) tile_stride,
                    options(nostack),
                );
                // A product tile is 16 weight rows by 16 tokens. The 16
                // values of a token go to one contiguous run of its output row.
                for (offset, product) in products.iter().enumerate().take(1 + usize::from(pair)) {
                    let first_token = (group + offset) * TOKENS;
                    for token in 0..(m - first_token).min(TOKENS) {
                        let run = out
                            .first
                            .add((first_token + token) * out.stride + first_row);
                        for (row, values) in product.iter().enumerate() {
                            *run.add(row) = values[token];
                        }
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}
