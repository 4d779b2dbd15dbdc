//! Q4_1 and Q8_1 block layouts: Q4_1 dequantization, Q8_1 activation quantization.

use half::f16;

pub const QK: usize = 32;

/// GGML's Q4_1 block: 32 weights as 4-bit codes, value = d * q + m.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    /// Element j is the low nibble of qs[j]; element j + 16 is its high nibble.
    pub qs: [u8; QK / 2],
}
const _: () = assert!(std::mem::size_of::<BlockQ4_1>() == 20);

/// GGML's Q8_1 block: 32 activations as i8, value = d * q; s = d * sum(q).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; QK],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_1>() == 36);

impl BlockQ8_1 {
    pub const ZERO: BlockQ8_1 = BlockQ8_1 { d: f16::ZERO, s: f16::ZERO, qs: [0; QK] };
}

/// Quantizes a row of activations (length a multiple of 32) into Q8_1 blocks, rounding as
/// llama.cpp does (scale 127/amax, ties to even).
pub fn quantize_row_q8_1(xs: &[f32], out: &mut [BlockQ8_1]) {
    debug_assert_eq!(xs.len(), out.len() * QK);
    for (chunk, block) in xs.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let mut sum = 0i32;
        for (q, &x) in block.qs.iter_mut().zip(chunk) {
            *q = (x * id).round_ties_even() as i8;
            sum += *q as i32;
        }
        block.d = f16::from_f32(d);
        block.s = f16::from_f32(d * sum as f32);
    }
}

/// Dequantizes Q4_1 blocks into floats.
pub fn dequantize_q4_1(xs: &[BlockQ4_1], out: &mut [f32]) {
    for (block, chunk) in xs.iter().zip(out.chunks_exact_mut(QK)) {
        let d = block.d.to_f32();
        let m = block.m.to_f32();
        for j in 0..QK / 2 {
            chunk[j] = (block.qs[j] & 0x0F) as f32 * d + m;
            chunk[j + QK / 2] = (block.qs[j] >> 4) as f32 * d + m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_1_keeps_scale_and_sum() {
        let xs: Vec<f32> = (0..32).map(|i| i as f32 - 10.0).collect();
        let mut out = [BlockQ8_1::ZERO];
        quantize_row_q8_1(&xs, &mut out);
        let d = out[0].d.to_f32();
        assert!((d - 21.0 / 127.0).abs() < 1e-3);
        assert_eq!(out[0].qs[31], 127);
        let sum: i32 = out[0].qs.iter().map(|&q| q as i32).sum();
        let s = d * sum as f32;
        assert!((out[0].s.to_f32() - s).abs() <= 1e-3 * s.abs(), "s is d * sum, in f16");
        let mut back = vec![0f32; 32];
        let block = BlockQ4_1 { d: half::f16::from_f32(1.0), m: half::f16::from_f32(-2.0), qs: [0x21; 16] };
        dequantize_q4_1(&[block], &mut back);
        assert_eq!((back[0], back[16]), (-1.0, 0.0));
    }
}
