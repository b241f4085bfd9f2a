//! Image input: decoding arbitrary bytes as PNG or JPEG and preprocessing the result never
//! panics, and a decoded image's tensor has the crop's shape with finite values. The first
//! two bytes choose the crop (1 to 16 pixels a side) and how far the resize exceeds it.
//! Images decode within 16 MiB rather than `run`'s 1 GiB: a decoder's time follows
//! the size a header claims, and a 64 KiB input can claim (and validly encode) hundreds of
//! megapixels, seconds each under the sanitizers; the fuzzer is here for the decoder's logic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnetc::interp::picture::{self, DecodeLimits, IMAGENET_MEAN, IMAGENET_STD, Preprocess};

const LIMITS: DecodeLimits = DecodeLimits {
    max_side: 8192,
    max_bytes: 16 << 20,
};

fuzz_target!(|data: &[u8]| {
    let [c, r, bytes @ ..] = data else {
        return;
    };
    let crop = u32::from(c % 16) + 1;
    let p = Preprocess {
        resize: crop + u32::from(r % 48),
        crop: [crop, (crop * 7) % 16 + 1].map(|s| s.min(crop)),
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
    };
    p.validate().expect("the fuzz target's preprocessing is valid");
    if let Ok(x) = picture::to_tensor_within(bytes, &p, &LIMITS) {
        assert_eq!(x.shape(), [3, p.crop[0] as usize, p.crop[1] as usize]);
        assert!(x.iter().all(|v| v.is_finite()));
    }
});
