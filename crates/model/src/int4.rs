//! AWQ (GEMM layout) and GPTQ int4 checkpoints: reading and writing their packed tensors, and
//! repacking them once, at load, into GGML Q4_1 rows that the engine's int4 kernels read.
//!
//! Both formats store `w = (q - z) * s` with 4-bit codes `q`, 4-bit zero points `z` and f16
//! scales `s` per group of input features. A Q4_1 block stores `w = q * d + m` over 32
//! consecutive inputs, so any group of a multiple of 32 inputs maps onto Q4_1 exactly:
//! `d = s` and `m = -z * s` (the only rounding is of `m` to f16, far below the code step).

use half::f16;
use hearth_kernels::q4_1::{BlockQ4_1, QK};
use rayon::prelude::*;

/// How a checkpoint packs its int4 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int4Format {
    /// AutoAWQ's GEMM layout: `qweight` [in, out/8], eight output features per int32 in the
    /// nibble order 0, 2, 4, 6, 1, 3, 5, 7; `qzeros` [groups, out/8] packed the same way.
    Awq,
    /// GPTQ: `qweight` [in/8, out], eight input features per int32 in order; `qzeros`
    /// [groups, out/8] in order, holding `zero - zero_offset` (1 in the original format,
    /// 0 in `gptq_v2`).
    Gptq { zero_offset: u8 },
}

/// A checkpoint's int4 scheme, from `quantization_config` in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int4Scheme {
    pub format: Int4Format,
    /// Input features per group; `None` for one group per row (GPTQ's `group_size: -1`).
    pub group_size: Option<usize>,
}

/// Nibble that holds output feature `j % 8` in AWQ's packing (the inverse of its pack order).
const AWQ_NIBBLE_OF_FEATURE: [u32; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// The packed tensors of one int4 linear layer, `rows` output by `cols` input features.
pub struct PackedInt4<'a> {
    pub format: Int4Format,
    pub rows: usize,
    pub cols: usize,
    pub qweight: &'a [u8],
    pub qzeros: &'a [u8],
    /// f16 [groups, rows].
    pub scales: &'a [u8],
    /// The group of each input feature (GPTQ's `g_idx`, or `i / group_size`).
    pub groups: &'a [u32],
}

/// Anything that yields int4 codes, zero points and scales of a `rows x cols` layer.
pub trait Int4Values: Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    fn code(&self, o: usize, i: usize) -> u8;
    fn zero(&self, o: usize, g: usize) -> u8;
    fn scale(&self, o: usize, g: usize) -> f16;
}

/// The layer as Q4_1 rows (bytes, `rows * cols / 32` blocks): input features are taken in
/// `order` when given (see `input_order`), so that every block lies in one group of `groups`.
pub fn to_q4_1(values: &impl Int4Values, groups: &[u32], order: Option<&[u32]>) -> Vec<u8> {
    let blocks_per_row = values.cols() / QK;
    let row_bytes = blocks_per_row * std::mem::size_of::<BlockQ4_1>();
    let mut out = vec![0u8; values.rows() * row_bytes];
    const ROWS_PER_TASK: usize = 64;
    out.par_chunks_mut(row_bytes * ROWS_PER_TASK).enumerate().for_each(|(task, chunk)| {
        for (r, row) in chunk.chunks_exact_mut(row_bytes).enumerate() {
            fill_q4_1_row(values, task * ROWS_PER_TASK + r, groups, order, row);
        }
    });
    out
}

fn fill_q4_1_row(values: &impl Int4Values, o: usize, groups: &[u32], order: Option<&[u32]>, row: &mut [u8]) {
    let input = |k: usize| order.map_or(k, |ord| ord[k] as usize);
    for (b, block) in row.chunks_exact_mut(std::mem::size_of::<BlockQ4_1>()).enumerate() {
        let g = groups[input(b * QK)] as usize;
        let scale = values.scale(o, g);
        let min = -(values.zero(o, g) as f32) * scale.to_f32();
        block[0..2].copy_from_slice(&scale.to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(min).to_le_bytes());
        for j in 0..QK / 2 {
            let low = values.code(o, input(b * QK + j));
            let high = values.code(o, input(b * QK + j + QK / 2));
            block[4 + j] = low | (high << 4);
        }
    }
}

fn word(bytes: &[u8], index: usize) -> u32 {
    u32::from_le_bytes(bytes[4 * index..4 * index + 4].try_into().expect("four bytes"))
}

fn nibble(word: u32, position: u32) -> u8 {
    ((word >> (4 * position)) & 0xF) as u8
}

impl Int4Values for PackedInt4<'_> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn code(&self, o: usize, i: usize) -> u8 {
        match self.format {
            Int4Format::Awq => nibble(word(self.qweight, i * (self.rows / 8) + o / 8), AWQ_NIBBLE_OF_FEATURE[o % 8]),
            Int4Format::Gptq { .. } => nibble(word(self.qweight, (i / 8) * self.rows + o), (i % 8) as u32),
        }
    }

    /// With GPTQ's stored offset added back.
    fn zero(&self, o: usize, g: usize) -> u8 {
        let packed = word(self.qzeros, g * (self.rows / 8) + o / 8);
        match self.format {
            Int4Format::Awq => nibble(packed, AWQ_NIBBLE_OF_FEATURE[o % 8]),
            Int4Format::Gptq { zero_offset } => nibble(packed, (o % 8) as u32) + zero_offset,
        }
    }

    fn scale(&self, o: usize, g: usize) -> f16 {
        let at = 2 * (g * self.rows + o);
        f16::from_le_bytes([self.scales[at], self.scales[at + 1]])
    }
}

impl PackedInt4<'_> {
    /// Row `o` as floats, straight from the formula (the reference for the repacking).
    pub fn dequantize_row(&self, o: usize, out: &mut [f32]) {
        for (i, w) in out.iter_mut().enumerate().take(self.cols) {
            let g = self.groups[i] as usize;
            *w = (self.code(o, i) as f32 - self.zero(o, g) as f32) * self.scale(o, g).to_f32();
        }
    }

    /// The weights as Q4_1 rows, input features taken in `order` when given.
    pub fn to_q4_1(&self, order: Option<&[u32]>) -> Vec<u8> {
        to_q4_1(self, self.groups, order)
    }
}

/// The order in which to read input features so that each run of 32 lies in one group:
/// `None` when they already do (groups of a multiple of 32 in order), else the features
/// sorted by group (GPTQ's act-order checkpoints, whose `g_idx` scatters groups).
pub fn input_order(groups: &[u32]) -> Result<Option<Vec<u32>>, String> {
    if !groups.len().is_multiple_of(QK) {
        return Err(format!("{} input features are not a multiple of {QK}", groups.len()));
    }
    let uniform = |order: &mut dyn Iterator<Item = u32>| {
        let chunk: Vec<u32> = order.collect();
        chunk.chunks_exact(QK).all(|c| c.iter().all(|&g| g == c[0]))
    };
    if uniform(&mut groups.iter().copied()) {
        return Ok(None);
    }
    let mut order: Vec<u32> = (0..groups.len() as u32).collect();
    order.sort_by_key(|&i| groups[i as usize]);
    if !uniform(&mut order.iter().map(|&i| groups[i as usize])) {
        return Err(format!("its groups are not made of multiples of {QK} input features"));
    }
    Ok(Some(order))
}

/// Per-weight quantization results of one layer, ready to be packed: codes `[rows][cols]`,
/// zero points and scales `[groups][rows]`.
pub struct Int4Codes {
    pub rows: usize,
    pub cols: usize,
    pub codes: Vec<u8>,
    pub zeros: Vec<u8>,
    pub scales: Vec<f16>,
}

/// Packed tensors as raw little-endian bytes with their Hugging Face shapes.
pub struct PackedTensors {
    pub qweight: (Vec<usize>, Vec<u8>),
    pub qzeros: (Vec<usize>, Vec<u8>),
    pub scales: (Vec<usize>, Vec<u8>),
}

impl Int4Values for Int4Codes {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn code(&self, o: usize, i: usize) -> u8 {
        self.codes[o * self.cols + i]
    }

    fn zero(&self, o: usize, g: usize) -> u8 {
        self.zeros[g * self.rows + o]
    }

    fn scale(&self, o: usize, g: usize) -> f16 {
        self.scales[g * self.rows + o]
    }
}

impl Int4Codes {
    fn n_groups(&self) -> usize {
        self.zeros.len() / self.rows
    }

    /// Packs into `format`'s layout (the exact inverse of `PackedInt4`'s reading).
    pub fn pack(&self, format: Int4Format) -> PackedTensors {
        let (rows, cols, groups) = (self.rows, self.cols, self.n_groups());
        let code = |o: usize, i: usize| self.codes[o * cols + i] as u32;
        let zero = |o: usize, g: usize| self.zeros[g * rows + o] as u32;
        let mut qzeros = vec![0u32; groups * rows / 8];
        let qweight = match format {
            Int4Format::Awq => {
                let mut q = vec![0u32; cols * rows / 8];
                for i in 0..cols {
                    for o in 0..rows {
                        q[i * (rows / 8) + o / 8] |= code(o, i) << (4 * AWQ_NIBBLE_OF_FEATURE[o % 8]);
                    }
                }
                for g in 0..groups {
                    for o in 0..rows {
                        qzeros[g * (rows / 8) + o / 8] |= zero(o, g) << (4 * AWQ_NIBBLE_OF_FEATURE[o % 8]);
                    }
                }
                (vec![cols, rows / 8], q)
            }
            Int4Format::Gptq { zero_offset } => {
                let mut q = vec![0u32; cols / 8 * rows];
                for i in 0..cols {
                    for o in 0..rows {
                        q[(i / 8) * rows + o] |= code(o, i) << (4 * (i % 8));
                    }
                }
                for g in 0..groups {
                    for o in 0..rows {
                        let stored = (zero(o, g).wrapping_sub(zero_offset as u32)) & 0xF;
                        qzeros[g * (rows / 8) + o / 8] |= stored << (4 * (o % 8));
                    }
                }
                (vec![cols / 8, rows], q)
            }
        };
        let bytes = |words: &[u32]| words.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        PackedTensors {
            qweight: (qweight.0, bytes(&qweight.1)),
            qzeros: (vec![groups, rows / 8], bytes(&qzeros)),
            scales: (vec![groups, rows], self.scales.iter().flat_map(|s| s.to_le_bytes()).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn awq_nibbles_follow_the_interleaved_order() {
        // one input feature, eight outputs whose codes are 0..8: AWQ packs outputs
        // 0,2,4,6,1,3,5,7 into nibbles 0..8, so the word reads 0x7531_6420
        let qweight = words(&[0x7531_6420]);
        let qzeros = words(&[0x0000_0000]);
        let scales: Vec<u8> = (0..8).flat_map(|_| f16::ONE.to_le_bytes()).collect();
        let groups = [0u32];
        let packed =
            PackedInt4 { format: Int4Format::Awq, rows: 8, cols: 1, qweight: &qweight, qzeros: &qzeros, scales: &scales, groups: &groups };
        assert_eq!((0..8).map(|o| packed.code(o, 0)).collect::<Vec<_>>(), (0..8).collect::<Vec<u8>>());
    }

    #[test]
    fn gptq_nibbles_run_along_inputs_and_zeros_carry_the_offset() {
        // two outputs, eight inputs: output 0 has codes 0..8, output 1 codes 15..7
        let qweight = words(&[0x7654_3210, 0x89AB_CDEF]);
        // stored zeros 7 and 2 for outputs 0 and 1; the original format adds 1
        let qzeros = words(&[0x0000_0027]);
        let scales: Vec<u8> = [0.5f32, 2.0].iter().flat_map(|&s| f16::from_f32(s).to_le_bytes()).collect();
        let groups = [0u32; 8];
        let packed = PackedInt4 {
            format: Int4Format::Gptq { zero_offset: 1 },
            rows: 2,
            cols: 8,
            qweight: &qweight,
            qzeros: &qzeros,
            scales: &scales,
            groups: &groups,
        };
        assert_eq!((0..8).map(|i| packed.code(0, i)).collect::<Vec<_>>(), (0..8).collect::<Vec<u8>>());
        assert_eq!((0..8).map(|i| packed.code(1, i)).collect::<Vec<_>>(), (8..16).rev().collect::<Vec<u8>>());
        assert_eq!((packed.zero(0, 0), packed.zero(1, 0)), (8, 3));
        let mut row = [0f32; 8];
        packed.dequantize_row(1, &mut row);
        assert_eq!(row[0], (15.0 - 3.0) * 2.0);
    }

    #[test]
    fn act_order_groups_are_gathered_by_sorting() {
        // 64 features whose two groups alternate: reading in sorted order puts each in a block
        let groups: Vec<u32> = (0..64).map(|i| i % 2).collect();
        let order = input_order(&groups).unwrap().expect("needs reordering");
        assert!(order[..32].iter().all(|&i| i % 2 == 0) && order[32..].iter().all(|&i| i % 2 == 1));
        assert_eq!(input_order(&(0..64).map(|i| i / 32).collect::<Vec<_>>()).unwrap(), None);
        // groups of 16 cannot fill a 32-block, in any order
        let sixteens: Vec<u32> = (0..64).map(|i| i / 16).collect();
        assert!(input_order(&sixteens).unwrap_err().contains("multiples of 32"));
    }

    /// Random codes packed in each format read back the same, and their Q4_1 repacking
    /// dequantizes to what the formula gives (within the f16 rounding of the minimum).
    #[test]
    fn packing_round_trips_and_q4_1_matches_the_formula() {
        let (rows, cols, group) = (24, 96, 32);
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u32
        };
        let n_groups = cols / group;
        let codes = Int4Codes {
            rows,
            cols,
            codes: (0..rows * cols).map(|_| (next() % 16) as u8).collect(),
            zeros: (0..n_groups * rows).map(|_| (next() % 15 + 1) as u8).collect(),
            scales: (0..n_groups * rows).map(|_| f16::from_f32(0.001 + (next() % 1000) as f32 * 1e-4)).collect(),
        };
        // act order: features of a group are scattered (feature i in group (i * 5) % 3)
        let groups: Vec<u32> = (0..cols as u32).map(|i| (i * 5) % 3).collect();
        for format in [Int4Format::Awq, Int4Format::Gptq { zero_offset: 1 }, Int4Format::Gptq { zero_offset: 0 }] {
            let t = codes.pack(format);
            assert_eq!(t.qzeros.0, vec![n_groups, rows / 8]);
            let packed = PackedInt4 {
                format,
                rows,
                cols,
                qweight: &t.qweight.1,
                qzeros: &t.qzeros.1,
                scales: &t.scales.1,
                groups: &groups,
            };
            for o in 0..rows {
                for i in 0..cols {
                    assert_eq!(packed.code(o, i), codes.codes[o * cols + i], "{format:?} code ({o}, {i})");
                }
                for g in 0..n_groups {
                    assert_eq!(packed.zero(o, g), codes.zeros[g * rows + o], "{format:?} zero ({o}, {g})");
                }
            }
            let order = input_order(&groups).unwrap();
            let q4 = packed.to_q4_1(order.as_deref());
            let blocks = q4.len() / 20;
            assert_eq!(blocks, rows * cols / 32);
            // the minimum -z*s is rounded to f16: at most 15 * s_max * 2^-11 away
            let tolerance = 16.0 * codes.scales.iter().map(|s| s.to_f32()).fold(0.0, f32::max) / 2048.0;
            let (mut expected, mut got) = (vec![0f32; cols], vec![0f32; cols]);
            for o in 0..rows {
                packed.dequantize_row(o, &mut expected);
                let matrix = hearth_kernels::QMatrix::new(hearth_kernels::QuantType::Q4_1, rows, cols, &q4).unwrap();
                matrix.dequantize_row(o, &mut got);
                for (k, g) in got.iter().enumerate() {
                    let i = order.as_ref().map_or(k, |ord| ord[k] as usize);
                    assert!((g - expected[i]).abs() <= tolerance, "{format:?} ({o}, {i}): {g} vs {}", expected[i]);
                }
            }
        }
    }
}
