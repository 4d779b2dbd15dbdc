//! Q8_0 activation quantization with llama.cpp's rounding (scale 127/amax, ties to even), so
//! logits match the reference runtime as closely as the weights allow.

use half::f16;

pub const QK8_0: usize = 32;

/// GGML's Q8_0 block: value = d * q.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK8_0],
}
const _: () = assert!(std::mem::size_of::<BlockQ8_0>() == 34);

/// Quantizes a row (length a multiple of 32) into Q8_0 blocks.
pub fn quantize_row_q8_0(xs: &[f32], out: &mut [BlockQ8_0]) {
    debug_assert_eq!(xs.len(), out.len() * QK8_0);
    for (chunk, block) in xs.chunks_exact(QK8_0).zip(out.iter_mut()) {
        let amax = chunk.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, &x) in block.qs.iter_mut().zip(chunk) {
            *q = (x * id).round_ties_even() as i8;
        }
        block.d = f16::from_f32(amax / 127.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_ties_to_even_and_keeps_scale() {
        let mut xs = vec![0f32; 32];
        xs[0] = 127.0;
        xs[1] = 2.5;
        xs[2] = -3.5;
        let mut out = [BlockQ8_0 { d: f16::ZERO, qs: [0; 32] }];
        quantize_row_q8_0(&xs, &mut out);
        assert_eq!(out[0].d.to_f32(), 1.0);
        assert_eq!(&out[0].qs[..3], &[127, 2, -4]);
    }
}
