//! The AMX kernel for bf16 weights and several tokens, on x86-64 CPUs with
//! Advanced Matrix Extensions (Sapphire Rapids and later Xeons).
//!
//! One `tdpbf16ps` multiplies a tile of 16 weight rows by 32 bf16 columns
//! with a tile of 32 columns by 16 tokens, accumulating in f32: 8,192
//! multiply-adds, where an AVX-512 instruction does 16. The activations are
//! f32, so each one is split into three bf16 parts: its bf16 rounding, the
//! bf16 rounding of what remains, and that of what remains after both. All
//! three go through the tile unit. Their sum carries the 24 significant bits
//! of the activation. Two parts carry 16, which moved the logits of a test
//! model by 9e-5 where f32 products move them by 5e-6. The third part made
//! a 32-token prompt about 15% slower.
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
/// bf16 parts per activation.
const PARTS: usize = 3;

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
/// each group of 16 tokens, the three bf16 parts one after the other, each
/// as `k / 2` rows of 16 tokens holding one pair of adjacent columns each.
/// Tokens past `m` are zero.
pub(super) fn pack_inputs(input: &[f32], m: usize, k: usize) -> Vec<u32> {
    let part = k / 2 * TOKENS;
    let mut packed = vec![0u32; m.div_ceil(TOKENS) * PARTS * part];
    for (token, values) in input.chunks_exact(k).enumerate().take(m) {
        let group = &mut packed[token / TOKENS * PARTS * part..][..PARTS * part];
        for (pair, columns) in values.chunks_exact(2).enumerate() {
            let index = pair * TOKENS + token % TOKENS;
            // A pair packs its even column in the low half of the word.
            let (even, odd) = (split(columns[0]), split(columns[1]));
            let parts = even.into_iter().zip(odd);
            for (words, (even, odd)) in group.chunks_exact_mut(part).zip(parts) {
                words[index] = u32::from(even) | u32::from(odd) << 16;
            }
        }
    }
    packed
}

/// Splits `value` into three bf16 parts, as bits, whose sum is `value`: its
/// bf16 rounding, and the bf16 roundings of what remains after each part.
fn split(value: f32) -> [u16; PARTS] {
    let mut rest = value;
    std::array::from_fn(|_| {
        let part = bf16::from_f32(rest);
        rest -= part.to_f32();
        part.to_bits()
    })
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
/// by [`pack_inputs`] for `m` tokens of `k` columns, `out` addresses `m`
/// rows of at least `rows` writable columns, and no other thread accesses
/// those columns.
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
    let part = k / 2 * TOKENS;
    debug_assert_eq!(packed.len(), groups * PARTS * part);
    let config = TileConfig::all_full();
    let weight_stride = k * size_of::<bf16>();
    let tile_stride = TOKENS * size_of::<u32>();
    // Products by [weight tile][token group of the pair].
    let mut products = [[[[0f32; TOKENS]; ROWS]; 2]; 2];

    // SAFETY (for the assembly below): the caller vouches for the CPU and
    // the sizes. Every tile load reads 16 rows of 64 bytes inside `weights`
    // or `packed`, and every store writes 16 rows of 64 bytes of `products`.
    // NOTE: the tile configuration and the accumulator tiles stay live from
    // one `asm!` block to the next, which Rust's rules for inline assembly
    // do not promise. It holds because no code between the blocks uses
    // AMX: the compiler emits tile instructions only for AMX intrinsics,
    // and this crate has none.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
        let mut first_row = 0;
        while first_row < rows {
            // Two weight tiles at a time keep twice as many weight rows in
            // flight from memory, which made a 32-token prompt 10% faster.
            let weight_tiles = if rows - first_row >= 2 * ROWS { 2 } else { 1 };
            for group in (0..groups).step_by(2) {
                let pair = group + 1 < groups;
                let activations = packed.as_ptr().add(group * PARTS * part);
                let weights = weights.as_ptr().add(first_row * k);
                let strides = (weight_stride, tile_stride, part);
                if weight_tiles == 2 {
                    two_weight_tiles(weights, activations, k, strides, pair);
                    asm!(
                        "tilestored [{first} + {tile_stride}*1], tmm4",
                        "tilestored [{second} + {tile_stride}*1], tmm5",
                        "tilestored [{third} + {tile_stride}*1], tmm6",
                        "tilestored [{fourth} + {tile_stride}*1], tmm7",
                        first = in(reg) products[0][0].as_mut_ptr(),
                        second = in(reg) products[0][1].as_mut_ptr(),
                        third = in(reg) products[1][0].as_mut_ptr(),
                        fourth = in(reg) products[1][1].as_mut_ptr(),
                        tile_stride = in(reg) tile_stride,
                        options(nostack),
                    );
                } else {
                    one_weight_tile(weights, activations, k, strides, pair);
                    asm!(
                        "tilestored [{first} + {tile_stride}*1], tmm5",
                        "tilestored [{second} + {tile_stride}*1], tmm6",
                        first = in(reg) products[0][0].as_mut_ptr(),
                        second = in(reg) products[0][1].as_mut_ptr(),
                        tile_stride = in(reg) tile_stride,
                        options(nostack),
                    );
                }
                // A product tile is 16 weight rows by 16 tokens. The 16
                // values of a token go to one contiguous run of its output row.
                for (tile, by_group) in products.iter().enumerate().take(weight_tiles) {
                    for (offset, product) in by_group.iter().enumerate().take(1 + usize::from(pair))
                    {
                        let first_token = (group + offset) * TOKENS;
                        let first_column = first_row + tile * ROWS;
                        for token in 0..(m - first_token).min(TOKENS) {
                            let run = out
                                .first
                                .add((first_token + token) * out.stride + first_column);
                            for (row, values) in product.iter().enumerate() {
                                *run.add(row) = values[token];
                            }
                        }
                    }
                }
            }
            first_row += weight_tiles * ROWS;
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

/// Accumulates, over all `k` columns, one weight tile (16 rows at `weights`)
/// times the activations of one or two token groups (`pair`) at
/// `activations`, into tiles 5 and 6. Tile 0 contains the weights, 1 and 2 a
/// part of the activations of each group.
///
/// # Safety
///
/// As for [`rows_times`], with `strides` the bytes between weight rows, the
/// bytes between activation tile rows, and the values in one part of the
/// activations of a group.
#[inline]
unsafe fn one_weight_tile(
    weights: *const bf16,
    activations: *const u32,
    k: usize,
    (weight_stride, tile_stride, part): (usize, usize, usize),
    pair: bool,
) {
    // SAFETY: see `rows_times`; the loads stay inside its slices.
    unsafe {
        asm!("tilezero tmm5", "tilezero tmm6", options(nostack, nomem));
        for block in 0..k / COLUMNS {
            asm!(
                "tileloadd tmm0, [{tile} + {weight_stride}*1]",
                tile = in(reg) weights.add(block * COLUMNS),
                weight_stride = in(reg) weight_stride,
                options(nostack, readonly),
            );
            for index in 0..PARTS {
                let first = activations.add(index * part + block * PAIRS * TOKENS);
                asm!(
                    "tileloadd tmm1, [{first} + {tile_stride}*1]",
                    "tdpbf16ps tmm5, tmm0, tmm1",
                    first = in(reg) first,
                    tile_stride = in(reg) tile_stride,
                    options(nostack, readonly),
                );
                if pair {
                    asm!(
                        "tileloadd tmm2, [{second} + {tile_stride}*1]",
                        "tdpbf16ps tmm6, tmm0, tmm2",
                        second = in(reg) first.add(PARTS * part),
                        tile_stride = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                }
            }
        }
    }
}

/// Accumulates, over all `k` columns, two weight tiles (32 rows at
/// `weights`) times the activations of one or two token groups (`pair`) at
/// `activations`: tiles 4 and 5 for the first weight tile and the two
/// groups, 6 and 7 for the second. Tiles 0 and 1 contain the weights, 2 and 3
/// a part of the activations of each group.
///
/// # Safety
///
/// As for [`one_weight_tile`], with 32 weight rows.
#[inline]
unsafe fn two_weight_tiles(
    weights: *const bf16,
    activations: *const u32,
    k: usize,
    (weight_stride, tile_stride, part): (usize, usize, usize),
    pair: bool,
) {
    // SAFETY: see `rows_times`; the loads stay inside its slices.
    unsafe {
        asm!(
            "tilezero tmm4",
            "tilezero tmm5",
            "tilezero tmm6",
            "tilezero tmm7",
            options(nostack, nomem)
        );
        for block in 0..k / COLUMNS {
            let tile = weights.add(block * COLUMNS);
            asm!(
                "tileloadd tmm0, [{tile} + {weight_stride}*1]",
                "tileloadd tmm1, [{next} + {weight_stride}*1]",
                tile = in(reg) tile,
                next = in(reg) tile.add(ROWS * k),
                weight_stride = in(reg) weight_stride,
                options(nostack, readonly),
            );
            for index in 0..PARTS {
                let first = activations.add(index * part + block * PAIRS * TOKENS);
                if pair {
                    asm!(
                        "tileloadd tmm2, [{first} + {tile_stride}*1]",
                        "tileloadd tmm3, [{second} + {tile_stride}*1]",
                        "tdpbf16ps tmm4, tmm0, tmm2",
                        "tdpbf16ps tmm5, tmm0, tmm3",
                        "tdpbf16ps tmm6, tmm1, tmm2",
                        "tdpbf16ps tmm7, tmm1, tmm3",
                        first = in(reg) first,
                        second = in(reg) first.add(PARTS * part),
                        tile_stride = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                } else {
                    asm!(
                        "tileloadd tmm2, [{first} + {tile_stride}*1]",
                        "tdpbf16ps tmm4, tmm0, tmm2",
                        "tdpbf16ps tmm6, tmm1, tmm2",
                        first = in(reg) first,
                        tile_stride = in(reg) tile_stride,
                        options(nostack, readonly),
                    );
                }
            }
        }
    }
}
