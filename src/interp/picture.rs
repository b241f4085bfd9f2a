//! Images as network inputs: PNG and JPEG bytes decoded (the `image` crate), converted to RGB
//! and preprocessed as torchvision's ImageNet recipe does on a PIL image: `Resize(s)` (the
//! shorter side to `s`, PIL's antialiased bilinear filter), `CenterCrop(h, w)`, `ToTensor`,
//! `Normalize(mean, std)`.
//!
//! No IO here: the CLI reads the (bounded) bytes. The resize is `fast_image_resize`'s
//! convolution with its bilinear filter, which follows Pillow's (support scaled by the ratio,
//! 8-bit fixed-point weights, a rounded 8-bit result after each pass), computed only for the
//! pixels the center crop keeps (time and memory follow the crop); the `image` crate's
//! Triangle filter was measured against torchvision too and lands further away (see
//! `tests/it/picture.rs`). Grayscale, palette and alpha images are converted as PIL's
//! `.convert("RGB")` converts them (gray replicated, alpha dropped); 16-bit images are scaled
//! to 8 bits. Decoding is bounded: a header that claims a huge image is refused before its
//! pixels are allocated.

use crate::ir::{DimSpec, Graph};
use fast_image_resize as fr;
use ndarray::{Array3, Array4, ArrayD, Axis};

/// The largest image file resnetc reads (the CLI bounds its read by this).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The largest image decoded: pixels per side, and bytes decoding may hold at once (see
/// [`DecodeLimits::max_bytes`]); well above any camera's.
pub const MAX_SIDE: u32 = 32_768;
const MAX_DECODED_BYTES: u64 = 1 << 30;

/// How large an image [`decode_within`] decodes: a header past these is refused before any
/// pixel is allocated or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Pixels per side.
    pub max_side: u32,
    /// Bytes decoding may hold at once: the decoded pixels, with a progressive JPEG's
    /// coefficients or with the pixels' RGB copy (for an image that is not RGB already).
    pub max_bytes: u64,
}

impl DecodeLimits {
    /// What `run` decodes: [`MAX_SIDE`] a side, 1 GiB to decode.
    pub const RUN: DecodeLimits = DecodeLimits {
        max_side: MAX_SIDE,
        max_bytes: MAX_DECODED_BYTES,
    };
}

/// torchvision's ImageNet normalisation.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How an image becomes a `[3, H, W]` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Preprocess {
    /// The shorter side after resizing (the longer one keeps the aspect ratio).
    pub resize: u32,
    /// The center crop, `[height, width]`.
    pub crop: [u32; 2],
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// The defaults for a network's one input `[N, 3, H, W]`: crop to `H x W`, resize the
    /// shorter side to 8/7 of the crop's longer side (256 for 224, as the ImageNet recipe),
    /// ImageNet's mean and std. Refuses a network whose input is not an RGB image.
    pub fn for_network(g: &Graph) -> Result<Preprocess, String> {
        let [crop_h, crop_w] = image_input(g)?;
        Ok(Preprocess {
            resize: (f64::from(crop_h.max(crop_w)) * 8.0 / 7.0).round() as u32,
            crop: [crop_h, crop_w],
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        })
    }

    /// Refuse parameters that cannot be applied: a zero size, a resize smaller than the crop
    /// (torchvision would pad the image with black), a zero or non-finite std.
    pub fn validate(&self) -> Result<(), String> {
        let [h, w] = self.crop;
        if self.resize == 0 || h == 0 || w == 0 {
            return Err("the resize and crop sizes must be at least 1".into());
        }
        if self.resize < h.max(w) {
            return Err(format!(
                "resize {} is smaller than the crop {h}x{w}: an image's shorter side is resized to it before the center crop, so it must be at least {}",
                self.resize,
                h.max(w)
            ));
        }
        if self.resize > MAX_SIDE {
            return Err(format!(
                "resize {} is past the largest resnetc makes, {MAX_SIDE} pixels",
                self.resize
            ));
        }
        const CHANNELS: [&str; 3] = ["R", "G", "B"];
        if let Some(c) = self.std.iter().position(|s| !s.is_finite() || *s == 0.0) {
            return Err(format!(
                "std {} for channel {}: each channel's std must be finite and non-zero",
                self.std[c], CHANNELS[c]
            ));
        }
        if let Some(c) = self.mean.iter().position(|m| !m.is_finite()) {
            return Err(format!(
                "mean {} for channel {}: each channel's mean must be finite",
                self.mean[c], CHANNELS[c]
            ));
        }
        Ok(())
    }
}

/// The crop `[H, W]` of a network whose one input is `[N, 3, H, W]` with a known H and W.
fn image_input(g: &Graph) -> Result<[u32; 2], String> {
    let refuse = |why: &str| format!("network `{}` cannot take images: {why}", g.name);
    let [decl] = &g.inputs[..] else {
        return Err(refuse(&format!(
            "it has {} inputs, and images feed a network with one",
            g.inputs.len()
        )));
    };
    let known = |d: &DimSpec| match d {
        DimSpec::Known(v) => u32::try_from(*v).ok(),
        DimSpec::Sym(_) => None,
    };
    match &decl.dims[..] {
        [_, c, h, w] if known(c) == Some(3) => match (known(h), known(w)) {
            (Some(h), Some(w)) => Ok([h, w]),
            _ => Err(refuse("its input's height and width are not stated sizes")),
        },
        _ => Err(refuse(&format!(
            "its input `{}` is not an RGB image [N, 3, H, W]",
            decl.name
        ))),
    }
}

/// An RGB image, 8 bits per channel, rows top to bottom.
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Decode a PNG or JPEG file into RGB within [`DecodeLimits::RUN`]. The error is a sentence
/// about the file ("is a GIF image; ..."), to be prefixed with its name.
pub fn decode(bytes: &[u8]) -> Result<Rgb, String> {
    decode_within(bytes, &DecodeLimits::RUN)
}

/// [`decode`] within other limits (the fuzz target's are smaller, so that each input decodes
/// quickly under its sanitizers).
pub fn decode_within(bytes: &[u8], limits: &DecodeLimits) -> Result<Rgb, String> {
    decode_reserving(bytes, limits, |_| ()).map(|(rgb, ())| rgb)
}

/// [`decode_within`], calling `reserve` with the bytes decoding holds at once (at most
/// `limits.max_bytes`; see [`DecodeLimits::max_bytes`]) once the header is read and before
/// any pixel is decoded, and returning what it returns beside the image (for a caller that
/// decodes several images at once within one budget of memory).
pub fn decode_reserving<R>(
    bytes: &[u8],
    limits: &DecodeLimits,
    reserve: impl FnOnce(u64) -> R,
) -> Result<(Rgb, R), String> {
    use image::{ImageDecoder, ImageFormat};
    if bytes.is_empty() {
        return Err("is empty, not an image".into());
    }
    let format = match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        Ok(other) => {
            return Err(format!(
                "is a {} image; resnetc reads PNG and JPEG images",
                other
                    .extensions_str()
                    .first()
                    .map_or_else(|| format!("{other:?}"), |e| e.to_uppercase())
            ));
        }
        Err(_) if bytes.starts_with(b"\x93NUMPY") => {
            return Err("is a .npy tensor, not an image: give it a `.npy` name".into());
        }
        Err(_) => {
            return Err("is not a PNG or JPEG image (nor any image format resnetc knows)".into());
        }
    };
    let name = if format == ImageFormat::Png {
        "PNG"
    } else {
        "JPEG"
    };
    // The JPEG decoder fills a scan that ends early with gray; Pillow refuses such a file
    // ("image file is truncated"), and so does resnetc.
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err("is a truncated JPEG image (its last scan has no end marker)".into());
    }
    // The JPEG decoder (zune-jpeg 0.5.15) sizes its upsampling buffer by the first
    // component's rows, which hold fewer samples than another's when that component is
    // sampled more coarsely, and its assertion then panics; such a file is refused here.
    if format == ImageFormat::Jpeg
        && let Some(((h0, v0), (h, v))) = jpeg_coarse_first_component(bytes)
    {
        return Err(format!(
            "is a JPEG image whose first component is sampled more coarsely ({h0}x{v0}) than \
             another ({h}x{v}), a layout resnetc's JPEG decoder cannot upsample"
        ));
    }
    // The PNG decoder (png 0.18.1) slices past a palette whose length is not a whole number of
    // RGB entries (the PNG specification requires one) and panics; such a file is refused here.
    if format == ImageFormat::Png
        && let Some(len) = png_partial_palette(bytes)
    {
        return Err(format!(
            "is a corrupt PNG image (its PLTE chunk holds {len} bytes, not a whole number of \
             3-byte RGB entries)"
        ));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut bounds = image::Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_bytes);
    reader.limits(bounds);
    let words = |e: image::ImageError| decode_error(name, &e, limits);
    let decoder = reader.into_decoder().map_err(words)?;
    let (width, height) = decoder.dimensions();
    let mut coefficients = 0;
    if format == ImageFormat::Jpeg {
        let coded = jpeg_coded_bytes(bytes);
        if !jpeg_can_hold(coded, width, height) {
            return Err(format!(
                "is a corrupt JPEG image: its header claims {width}x{height} pixels, more than its {coded} bytes of coded data can encode"
            ));
        }
        coefficients = jpeg_coefficient_bytes(bytes).unwrap_or(0);
    }
    // What decoding holds at once: the decoder's output with a progressive JPEG's
    // coefficients, then that output with its RGB copy (unless it is RGB already).
    let out = decoder.total_bytes();
    let rgb = if decoder.color_type() == image::ColorType::Rgb8 {
        0
    } else {
        u64::from(width) * u64::from(height) * 3
    };
    let needed = out.saturating_add(coefficients.max(rgb));
    if needed > limits.max_bytes {
        let kind = if coefficients > 0 {
            "progressive JPEG"
        } else {
            name
        };
        return Err(format!(
            "is a {kind} image larger than resnetc decodes: its {width}x{height} pixels take {} MiB to decode (at most {} MiB)",
            needed.div_ceil(1 << 20),
            limits.max_bytes >> 20
        ));
    }
    let held = reserve(needed);
    let decoded = image::DynamicImage::from_decoder(decoder).map_err(words)?;
    // No copy when the image is RGB already.
    let rgb = decoded.into_rgb8();
    let (width, height) = rgb.dimensions();
    if width == 0 || height == 0 {
        return Err(format!("is an empty {name} image ({width}x{height})"));
    }
    let rgb = Rgb {
        width,
        height,
        pixels: rgb.into_raw(),
    };
    Ok((rgb, held))
}

/// Whether a Huffman-coded JPEG whose scans hold `coded_bytes` bytes ([`jpeg_coded_bytes`])
/// can encode a `width x height` image. Every 8x8 block of a component takes at least one bit
/// in its first scan (its DC coefficient's code), and a component sampled at the lowest rate
/// (1 against 4) has a block per 32x32 pixels; so a header that claims more such blocks than
/// the scans have bits lies, and decoding it would spend time and memory on the size it
/// claims (a 779-byte file claiming 12032x24583 pixels took 3 s and 1.1 GB; so did the same
/// file padded with a 64 KiB comment). The image crate decodes neither arithmetic-coded nor
/// lossless JPEG, whose codes can be shorter.
fn jpeg_can_hold(coded_bytes: usize, width: u32, height: u32) -> bool {
    let blocks = u64::from(width.div_ceil(32)) * u64::from(height.div_ceil(32));
    (coded_bytes as u64).saturating_mul(8) >= blocks
}

/// Bytes of entropy-coded data in a JPEG: what follows each start-of-scan segment up to the
/// next marker other than a restart (stuffed `FF 00` pairs counted as two).
fn jpeg_coded_bytes(bytes: &[u8]) -> usize {
    JpegSegments::new(bytes).map(|s| s.scan).sum()
}

/// One marker segment of a JPEG ([`JpegSegments`]): its marker, its payload (after the
/// length), and for a start-of-scan the number of entropy-coded bytes after it.
struct JpegSegment<'a> {
    marker: u8,
    payload: &'a [u8],
    scan: usize,
}

/// The marker segments of a JPEG in file order, up to the end-of-image marker. Segments
/// (tables, frames, comments, thumbnails in APPn) are skipped by their lengths; a byte that
/// starts no marker where one is expected is skipped too, markers without a segment (stray
/// stuffing, TEM, SOI, restarts) are passed over, and a file that ends early ends the walk
/// (a payload cut short is as long as the file holds).
struct JpegSegments<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> JpegSegments<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        // After the start-of-image marker.
        JpegSegments { bytes, at: 2 }
    }
}

impl<'a> Iterator for JpegSegments<'a> {
    type Item = JpegSegment<'a>;

    fn next(&mut self) -> Option<JpegSegment<'a>> {
        let bytes = self.bytes;
        let is_restart = |m: u8| (0xD0..=0xD7).contains(&m);
        while self.at + 1 < bytes.len() {
            let i = self.at;
            let marker = bytes[i + 1];
            if bytes[i] != 0xFF || marker == 0xFF {
                self.at += 1;
                continue;
            }
            match marker {
                0xD9 => break,
                0x00 | 0x01 | 0xD8 | 0xD0..=0xD7 => {
                    self.at += 2;
                    continue;
                }
                _ => {}
            }
            let len = bytes.get(i + 2..i + 4)?;
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let start = (i + 4).min(bytes.len());
            let end = (i + 2 + len).clamp(start, bytes.len());
            self.at = i + 2 + len;
            let mut scan = 0;
            if marker == 0xDA {
                let data = &bytes[end..];
                scan = data
                    .windows(2)
                    .position(|w| w[0] == 0xFF && w[1] != 0x00 && !is_restart(w[1]))
                    .unwrap_or(data.len());
                self.at = end + scan;
            }
            return Some(JpegSegment {
                marker,
                payload: &bytes[start..end],
                scan,
            });
        }
        self.at = bytes.len();
        None
    }
}

/// Bytes of coefficients the JPEG decoder holds for the whole image while it decodes a
/// progressive JPEG (zune-jpeg keeps every component's coefficients, 2 bytes each, padded to
/// whole MCUs, beside its output); 0 for a sequential JPEG, which is decoded MCU row by MCU row.
/// Read from the frame header (SOF2; the decoder supports no other progressive frame), `None`
/// when there is none to read.
fn jpeg_coefficient_bytes(bytes: &[u8]) -> Option<u64> {
    let frame = jpeg_frame(bytes)?;
    if frame.marker != 0xC2 {
        return Some(0);
    }
    // Precision (1), height (2), width (2), components (1), then 3 bytes per component.
    let p = frame.payload;
    let (height, width) = (
        u64::from(u16::from_be_bytes([*p.get(1)?, *p.get(2)?])),
        u64::from(u16::from_be_bytes([*p.get(3)?, *p.get(4)?])),
    );
    let sampling: Vec<(u64, u64)> = jpeg_sampling(&frame)?
        .into_iter()
        .map(|(h, v)| (u64::from(h).max(1), u64::from(v).max(1)))
        .collect();
    // One component is decoded in 8x8 blocks whatever its factors say.
    let sampling = if sampling.len() == 1 {
        vec![(1, 1)]
    } else {
        sampling
    };
    let h_max = sampling.iter().map(|s| s.0).max()?;
    let v_max = sampling.iter().map(|s| s.1).max()?;
    let mcus = width.div_ceil(8 * h_max) * height.div_ceil(8 * v_max);
    let samples: u64 = sampling.iter().map(|(h, v)| mcus * 64 * h * v).sum();
    Some(samples * 2)
}

/// A JPEG's first start-of-frame segment (markers C0-CF but DHT, C4, JPG, C8, and DAC, CC).
fn jpeg_frame(bytes: &[u8]) -> Option<JpegSegment<'_>> {
    JpegSegments::new(bytes)
        .find(|s| (0xC0..=0xCF).contains(&s.marker) && ![0xC4, 0xC8, 0xCC].contains(&s.marker))
}

/// Each component's sampling factors (horizontal, vertical) in a start-of-frame segment:
/// after the precision (1 byte), height (2), width (2) and component count (1), 3 bytes per
/// component, its id, its factors (horizontal in the high nibble) and its quantization table.
fn jpeg_sampling(frame: &JpegSegment) -> Option<Vec<(u8, u8)>> {
    let p = frame.payload;
    let components = p.get(6..6 + 3 * usize::from(*p.get(5)?))?;
    Some(
        components
            .chunks_exact(3)
            .map(|c| (c[1] >> 4, c[1] & 15))
            .collect(),
    )
}

/// The first component's sampling factors and another's, where that one's are finer in
/// either direction (the first component is then upsampled); `None` otherwise, for one
/// component (its factors are not used) and when the frame cannot be read.
fn jpeg_coarse_first_component(bytes: &[u8]) -> Option<((u8, u8), (u8, u8))> {
    let sampling = jpeg_sampling(&jpeg_frame(bytes)?)?;
    let (&first, rest) = sampling.split_first()?;
    rest.iter()
        .find(|&&(h, v)| h > first.0 || v > first.1)
        .map(|&other| (first, other))
}

/// The length of a PNG's palette chunk (`PLTE`) when it is not a multiple of 3; `None` when
/// it is, or when there is none before the image data. Chunks are walked from the 8-byte
/// signature on (4-byte big-endian length, 4-byte type, data, 4-byte checksum); a chunk that
/// runs past the end stops the walk (the decoder reports the truncation).
fn png_partial_palette(bytes: &[u8]) -> Option<usize> {
    let mut at = 8usize;
    while let Some(head) = bytes.get(at..at.checked_add(8)?) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        match &head[4..8] {
            b"PLTE" if !len.is_multiple_of(3) => return Some(len),
            b"PLTE" | b"IDAT" | b"IEND" => return None,
            _ => at = at.checked_add(12)?.checked_add(len)?,
        }
    }
    None
}

/// Whether the last scan of a JPEG is followed by the end-of-image marker `FF D9`. Neither
/// marker can occur inside entropy-coded data (a data byte `FF` is followed by `00`), so the
/// last `FF DA` starts the last scan (a thumbnail's come earlier, in a header segment).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// A decoder error in words.
fn decode_error(name: &str, e: &image::ImageError, limits: &DecodeLimits) -> String {
    use image::ImageError;
    match e {
        ImageError::Limits(_) => format!(
            "is a {name} image larger than resnetc decodes (at most {} pixels a side and {} MiB to decode)",
            limits.max_side,
            limits.max_bytes >> 20
        ),
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("is a truncated {name} image (its data ends early)")
        }
        ImageError::Unsupported(u) => format!("is a {name} image resnetc cannot decode ({u})"),
        other => format!(
            "is a corrupt or truncated {name} image ({})",
            decoder_words(&other.to_string())
        ),
    }
}

/// A decoder's message without what the user cannot use: the `Format error decoding Png: `
/// the image crate puts before it (the format is named already), and the PNG decoder's
/// `ChunkType { type: IHDR, critical: true, .. }` (Rust's debug form), which becomes `IHDR`.
fn decoder_words(message: &str) -> String {
    let mut text = message.trim();
    if let Some(rest) = text.strip_prefix("Format error decoding ") {
        text = rest.split_once(": ").map_or(rest, |(_, m)| m);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("ChunkType { type: ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "ChunkType { type: ".len()..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let kind = after[..end].split(',').next().unwrap_or("").trim();
        out.push_str(kind);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.trim_end_matches('.').to_string()
}

/// Preprocess a decoded image into a `[3, crop_h, crop_w]` tensor, as torchvision's
/// `Resize(resize)`, `CenterCrop(crop)`, `ToTensor()`, `Normalize(mean, std)` on a PIL image.
/// `p` must be valid ([`Preprocess::validate`]).
///
/// Only the pixels the crop keeps are resized (`resize_crop`), so that time and memory
/// follow the crop, not the resized image: a 3000x1 image resized to 768000x256 would
/// otherwise take 590 MB and seconds for 224x224 pixels.
///
/// # Shapes
/// Output `[3, crop[0], crop[1]]`.
pub fn preprocess(img: &Rgb, p: &Preprocess) -> Result<Array3<f32>, String> {
    let [w, h] = resized_size(img.width, img.height, p.resize);
    let [crop_h, crop_w] = p.crop;
    // The first pass's columns at the image's height, then the crop.
    let bytes =
        (u64::from(crop_w) * u64::from(img.height) + u64::from(crop_w) * u64::from(crop_h)) * 3;
    if bytes > MAX_DECODED_BYTES {
        return Err(format!(
            "is {}x{} pixels: cropped to {crop_w}x{crop_h} after its resize to {w}x{h}, it needs more memory than resnetc resizes in ({} MiB); make the image smaller first",
            img.width,
            img.height,
            MAX_DECODED_BYTES >> 20
        ));
    }
    // torchvision: `int(round((size - crop) / 2.0))`, Python's round (ties to even).
    let offset = |size: u32, crop: u32| (f64::from(size - crop) / 2.0).round_ties_even() as u32;
    let (top, left) = (offset(h, crop_h), offset(w, crop_w));
    let cropped = resize_crop(img, [w, h], [left, top], [crop_w, crop_h])?;
    let row = crop_w as usize * 3;
    // ToTensor divides by 255 in float32, Normalize subtracts and divides in float32.
    Ok(Array3::from_shape_fn(
        (3, crop_h as usize, crop_w as usize),
        |(c, y, x)| {
            let v = f32::from(cropped[y * row + x * 3 + c]) / 255.0;
            (v - p.mean[c]) / p.std[c]
        },
    ))
}

/// Decode and preprocess: [`decode`], then [`preprocess`].
pub fn to_tensor(bytes: &[u8], p: &Preprocess) -> Result<Array3<f32>, String> {
    to_tensor_within(bytes, p, &DecodeLimits::RUN)
}

/// [`to_tensor`] with [`decode_within`]'s limits.
pub fn to_tensor_within(
    bytes: &[u8],
    p: &Preprocess,
    limits: &DecodeLimits,
) -> Result<Array3<f32>, String> {
    preprocess(&decode_within(bytes, limits)?, p)
}

/// [`to_tensor`] with [`decode_reserving`]'s `reserve`: what it returns is held until the
/// tensor is made (the decoded pixels are freed), then dropped.
pub fn to_tensor_reserving<R>(
    bytes: &[u8],
    p: &Preprocess,
    reserve: impl FnOnce(u64) -> R,
) -> Result<Array3<f32>, String> {
    let (rgb, held) = decode_reserving(bytes, &DecodeLimits::RUN, reserve)?;
    let tensor = preprocess(&rgb, p);
    drop(rgb);
    drop(held);
    tensor
}

/// Stack `[3, H, W]` images into one `[N, 3, H, W]` batch.
pub fn batch(images: &[Array3<f32>]) -> ArrayD<f32> {
    let views: Vec<_> = images.iter().map(|x| x.view()).collect();
    ndarray::stack(Axis(0), &views)
        .unwrap_or_else(|_| Array4::zeros((0, 3, 0, 0)))
        .into_dyn()
}

/// `[width, height]` after torchvision's `Resize(short)`: the shorter side becomes `short`,
/// the longer one `int(short * long / short_side)` (truncated, as torchvision computes it).
fn resized_size(width: u32, height: u32, short: u32) -> [u32; 2] {
    let (s, l) = (width.min(height), width.max(height));
    let long = (f64::from(short) * f64::from(l) / f64::from(s)) as u32;
    if width <= height {
        [short, long]
    } else {
        [long, short]
    }
}

/// The pixels `[left, top]..[left + cw, top + ch]` of the image resized to `w x h` with the
/// bilinear convolution (Pillow's `Image.resize(BILINEAR)`), row by row: the crop of the
/// whole resize, computed for the crop alone. Each output pixel's filter window is placed and
/// weighted by its position in the resized image and clipped by the source image's edges, not
/// the crop's (as Pillow's resize with a `box` does), so the values are the whole resize's
/// up to its fixed-point weights, whose precision each pass takes from its largest weight
/// (here the crop's, there the whole image's): at most one 8-bit step apart a pass, two in
/// all (the tests).
/// torchvision returns an image already of the size unchanged, and a side that keeps its size
/// is only cropped.
///
/// Pillow resizes rows first, then columns, rounding to 8 bits in between; for 8-bit images
/// `fast_image_resize` does the columns first when both change, so the two passes are asked
/// for one at a time, in Pillow's order (on random noise, the other order leaves a quarter
/// of the values one step away from Pillow's).
fn resize_crop(
    img: &Rgb,
    [w, h]: [u32; 2],
    [left, top]: [u32; 2],
    [cw, ch]: [u32; 2],
) -> Result<Vec<u8>, String> {
    let (width, height) = (img.width, img.height);
    let rows = pass(width, height, &img.pixels, Axis(1), w, left, cw)?;
    pass(cw, height, &rows, Axis(0), h, top, ch)
}

/// One pass over 8-bit RGB pixels `width x height`: along `axis` (`Axis(1)` the columns,
/// `Axis(0)` the rows), the side resized to `size` and of that, `len` values from `first` on.
/// The other side is kept. A side that keeps its size is cropped, not resampled.
fn pass(
    width: u32,
    height: u32,
    pixels: &[u8],
    axis: Axis,
    size: u32,
    first: u32,
    len: u32,
) -> Result<Vec<u8>, String> {
    let along_columns = axis == Axis(1);
    let side = if along_columns { width } else { height };
    let (w, h) = if along_columns {
        (len, height)
    } else {
        (width, len)
    };
    if size == side {
        // Only cropped: rows `first..first + len`, or those columns of every row.
        let (first, len, width) = (first as usize, len as usize, width as usize);
        return Ok(if along_columns {
            pixels
                .chunks_exact(width * 3)
                .flat_map(|row| &row[first * 3..(first + len) * 3])
                .copied()
                .collect()
        } else {
            pixels[first * width * 3..(first + len) * width * 3].to_vec()
        });
    }
    let fail = |e: &dyn std::fmt::Display| format!("cannot resize: {e}");
    let src = fr::images::ImageRef::new(width, height, pixels, fr::PixelType::U8x3)
        .map_err(|e| fail(&e))?;
    let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
    // The source span of the kept output pixels, at the whole resize's scale (clipped to the
    // source against rounding: the span's end is `side` when the crop reaches the edge).
    let scale = f64::from(side) / f64::from(size);
    let start = f64::from(first) * scale;
    let extent = (f64::from(len) * scale).min(f64::from(side) - start);
    let (l, t, bw, bh) = if along_columns {
        (start, 0.0, extent, f64::from(height))
    } else {
        (0.0, start, f64::from(width), extent)
    };
    let options = fr::ResizeOptions::new()
        .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear))
        .crop(l, t, bw, bh);
    fr::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| fail(&e))?;
    Ok(dst.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The most compressible JPEGs (one flat color, gray and 4:2:0 color) decode: their
    /// blocks take more bits than [`jpeg_can_hold`] asks for. The same file with its frame
    /// header claiming sides 16 times longer is refused before decoding, with the size it
    /// claims, and so it is when padded with a comment that makes the file long enough.
    #[test]
    fn a_jpeg_is_refused_only_when_its_header_claims_more_than_it_can_encode() {
        let jpeg = |img: image::DynamicImage| {
            let mut out = Vec::new();
            img.write_to(
                &mut std::io::Cursor::new(&mut out),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
            out
        };
        let gray = jpeg(image::GrayImage::from_pixel(1024, 768, image::Luma([7])).into());
        let color = jpeg(image::RgbImage::from_pixel(1024, 768, image::Rgb([9, 200, 40])).into());
        for file in [&gray, &color] {
            let rgb = decode(file).unwrap();
            assert_eq!((rgb.width, rgb.height), (1024, 768));
        }
        // SOF0 (FF C0): length (2), precision (1), height (2), width (2).
        let mut liar = color.clone();
        let sof = liar.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        liar[sof + 5..sof + 7].copy_from_slice(&(768u16 * 16).to_be_bytes());
        liar[sof + 7..sof + 9].copy_from_slice(&(1024u16 * 16).to_be_bytes());
        let Err(e) = decode(&liar) else {
            panic!("a JPEG claiming 16 times its sides decoded");
        };
        assert!(e.contains("header claims 16384x12288 pixels"), "{e}");
        // Padding outside the scans (a 64 KiB comment) does not count as coded data.
        let comment = [&[0xFF, 0xFE, 0xFF, 0xFF][..], &[b'x'; 65533]].concat();
        let padded = [&liar[..2], &comment, &liar[2..]].concat();
        assert!(padded.len() * 8 > 512 * 384);
        let Err(e) = decode(&padded) else {
            panic!("a padded JPEG claiming 16 times its sides decoded");
        };
        assert!(e.contains("header claims 16384x12288 pixels"), "{e}");
        assert_eq!(jpeg_coded_bytes(&padded), jpeg_coded_bytes(&color));
        assert!(jpeg_coded_bytes(&color) < color.len());
        assert!(jpeg_can_hold(jpeg_coded_bytes(&color), 1024, 768));
    }

    /// What decoding holds at once, derived by hand for 40x24 images made by Pillow (noise,
    /// quality 90): the RGB output, 40 * 24 * 3 = 2880 bytes; a progressive JPEG's
    /// coefficients beside it, 2 bytes per sample padded to whole MCUs (4:4:4: 5 x 3 MCUs of
    /// 8x8 in each of 3 components, 2 * 2880 = 5760 bytes; 4:2:0: 3 x 2 MCUs of 16x16, each
    /// 4 + 1 + 1 blocks of 64, 2 * 2304 = 4608 bytes); a gray image's output (960 bytes) with
    /// the larger of its coefficients (2 * 960) and its RGB copy (2880). Each decodes within
    /// exactly that many bytes and is refused within one byte less, before decoding.
    #[test]
    fn decoding_counts_a_progressive_jpegs_coefficients_and_the_rgb_copy() {
        let cases: [(&str, &[u8], u64); 4] = [
            (
                "baseline 4:4:4",
                include_bytes!("../../tests/data/baseline-444-40x24.jpg"),
                2880,
            ),
            (
                "progressive 4:4:4",
                include_bytes!("../../tests/data/progressive-444-40x24.jpg"),
                2880 + 5760,
            ),
            (
                "progressive 4:2:0",
                include_bytes!("../../tests/data/progressive-420-40x24.jpg"),
                2880 + 4608,
            ),
            (
                "progressive gray",
                include_bytes!("../../tests/data/progressive-gray-40x24.jpg"),
                960 + 2880,
            ),
        ];
        for (what, file, needed) in cases {
            let within = |max_bytes| {
                let limits = DecodeLimits {
                    max_side: 64,
                    max_bytes,
                };
                decode_within(file, &limits)
            };
            let rgb = within(needed).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!((rgb.width, rgb.height, rgb.pixels.len()), (40, 24, 2880));
            let Err(e) = within(needed - 1) else {
                panic!("{what} decoded within {} bytes", needed - 1);
            };
            assert!(e.contains("larger than resnetc decodes"), "{what}: {e}");
            if what.starts_with("progressive 4") {
                assert!(e.contains("is a progressive JPEG image"), "{what}: {e}");
                assert!(
                    e.contains("its 40x24 pixels take 1 MiB to decode"),
                    "{what}: {e}"
                );
            }
        }
        assert_eq!(jpeg_coefficient_bytes(b"\xFF\xD8\xFF\xD9"), None);
    }

    /// A 4:2:0 JPEG (luma 2x2, chroma 1x1) decodes; the same file with the first two
    /// components' sampling factors swapped (luma 1x1, the first chroma 2x2) is refused by its
    /// header, progressive or baseline. The decoder's upsampling panicked on a progressive
    /// JPEG so sampled (found by the `image` fuzz target; its input is in
    /// fuzz/regressions/image, tested in `fuzz_findings_stay_fixed`); these two it would
    /// refuse as corrupt, their data being coded for the other factors.
    #[test]
    fn a_jpeg_whose_first_component_is_sampled_coarsest_is_refused() {
        let files: [&[u8]; 2] = [
            include_bytes!("../../tests/data/progressive-420-40x24.jpg"),
            include_bytes!("../../tests/data/baseline-420-40x24.jpg"),
        ];
        for file in files {
            let rgb = decode(file).unwrap();
            assert_eq!((rgb.width, rgb.height), (40, 24));
            let frame = jpeg_frame(file).unwrap();
            assert_eq!(jpeg_sampling(&frame).unwrap(), [(2, 2), (1, 1), (1, 1)]);
            // The frame's payload within the file, and its first two components' factors.
            let at = frame.payload.as_ptr() as usize - file.as_ptr() as usize;
            let mut swapped = file.to_vec();
            swapped.swap(at + 6 + 1, at + 6 + 3 + 1);
            assert_eq!(
                jpeg_coarse_first_component(&swapped),
                Some(((1, 1), (2, 2)))
            );
            let Err(e) = decode(&swapped) else {
                panic!("a JPEG with its luma sampled coarsest was decoded")
            };
            assert_eq!(
                e,
                "is a JPEG image whose first component is sampled more coarsely (1x1) than \
                 another (2x2), a layout resnetc's JPEG decoder cannot upsample"
            );
        }
    }

    /// A PNG whose header chunk's checksum is wrong: the decoder's words name the chunk as
    /// the file spells it, not in Rust's debug form, and not the format twice.
    #[test]
    fn a_png_checksum_error_names_its_chunk_plainly() {
        let mut png = Vec::new();
        image::RgbImage::new(4, 3)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // Signature (8), IHDR's length and type (8), then its 13 data bytes: flip one.
        png[8 + 8 + 12] ^= 1;
        let Err(message) = decode(&png) else {
            panic!("a PNG with a wrong checksum was decoded")
        };
        assert!(
            message.starts_with("is a corrupt or truncated PNG image (CRC error"),
            "{message}"
        );
        assert!(message.contains(" IHDR chunk)"), "{message}");
        assert!(!message.contains("ChunkType"), "{message}");
        assert!(!message.contains("decoding Png"), "{message}");
    }

    /// A palette PNG whose `PLTE` chunk is not whole RGB entries (checksums valid): refused
    /// by name, where the decoder panicked (found by the `image` fuzz target).
    #[test]
    fn a_png_palette_of_partial_entries_is_refused() {
        fn crc(data: &[u8]) -> u32 {
            let mut c = !0u32;
            for &b in data {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 == 1 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        }
        fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = png.len();
            png.extend_from_slice(kind);
            png.extend_from_slice(data);
            let sum = crc(&png[start..]);
            png.extend_from_slice(&sum.to_be_bytes());
        }
        // 2x1 pixels, 8-bit indexed; the rows (filter byte 0, indices 0 and 1), zlib-stored.
        let png = |palette: &[u8]| {
            let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
            chunk(&mut png, b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 1, 8, 3, 0, 0, 0]);
            chunk(&mut png, b"PLTE", palette);
            let row = [0u8, 0, 1];
            let adler = {
                let (mut a, mut b) = (1u32, 0u32);
                for &x in &row {
                    a = (a + u32::from(x)) % 65521;
                    b = (b + a) % 65521;
                }
                (b << 16) | a
            };
            let mut z = vec![0x78, 0x01, 1, 3, 0, 0xFC, 0xFF];
            z.extend_from_slice(&row);
            z.extend_from_slice(&adler.to_be_bytes());
            chunk(&mut png, b"IDAT", &z);
            chunk(&mut png, b"IEND", &[]);
            png
        };
        let whole = decode(&png(&[255, 0, 0, 0, 0, 255])).expect("a whole palette decodes");
        assert_eq!((whole.width, whole.height), (2, 1));
        assert_eq!(whole.pixels, [255, 0, 0, 0, 0, 255]);
        let Err(message) = decode(&png(&[255, 0, 0, 0, 0])) else {
            panic!("a palette of 5 bytes was decoded")
        };
        assert_eq!(
            message,
            "is a corrupt PNG image (its PLTE chunk holds 5 bytes, not a whole number of 3-byte \
             RGB entries)"
        );
    }

    #[test]
    fn preprocessing_that_cannot_be_applied_is_refused_by_name() {
        let ok = Preprocess {
            resize: 256,
            crop: [224, 224],
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        };
        assert_eq!(ok.validate(), Ok(()));
        let refused = |p: Preprocess| p.validate().unwrap_err();
        let past = refused(Preprocess {
            resize: MAX_SIDE + 1,
            ..ok.clone()
        });
        assert_eq!(
            past,
            "resize 32769 is past the largest resnetc makes, 32768 pixels"
        );
        let small = refused(Preprocess {
            resize: 200,
            crop: [180, 224],
            ..ok.clone()
        });
        assert!(
            small.starts_with("resize 200 is smaller than the crop 180x224"),
            "{small}"
        );
        assert!(small.ends_with("so it must be at least 224"), "{small}");
        let std = refused(Preprocess {
            std: [1.0, 1.0, f32::NAN],
            ..ok.clone()
        });
        assert!(std.starts_with("std NaN for channel B"), "{std}");
        let mean = refused(Preprocess {
            mean: [f32::INFINITY, 0.0, 0.0],
            ..ok
        });
        assert!(mean.starts_with("mean inf for channel R"), "{mean}");
    }

    #[test]
    fn decoder_words_keep_what_they_do_not_know() {
        assert_eq!(
            decoder_words("IDAT or fdAT chunk is missing."),
            "IDAT or fdAT chunk is missing"
        );
        assert_eq!(
            decoder_words("Format error decoding Png: bad ChunkType { type: tEXt"),
            "bad ChunkType { type: tEXt"
        );
        assert_eq!(
            decoder_words("a ChunkType { type: IEND, critical: true } b ChunkType { type: gAMA }"),
            "a IEND b gAMA"
        );
    }

    /// The whole resize, as `fast_image_resize` makes it pass by pass (Pillow's order),
    /// then the crop: what [`resize_crop`] computes for the crop alone.
    fn whole_then_crop(
        img: &Rgb,
        [w, h]: [u32; 2],
        [left, top]: [u32; 2],
        [cw, ch]: [u32; 2],
    ) -> Vec<u8> {
        let whole = |width: u32, height: u32, pixels: &[u8], w: u32, h: u32| {
            if (width, height) == (w, h) {
                return pixels.to_vec();
            }
            let src =
                fr::images::ImageRef::new(width, height, pixels, fr::PixelType::U8x3).unwrap();
            let mut dst = fr::images::Image::new(w, h, fr::PixelType::U8x3);
            let options = fr::ResizeOptions::new()
                .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Bilinear));
            fr::Resizer::new().resize(&src, &mut dst, &options).unwrap();
            dst.into_vec()
        };
        let rows = whole(img.width, img.height, &img.pixels, w, img.height);
        let resized = whole(w, img.height, &rows, w, h);
        let (w, left, top) = (w as usize, left as usize, top as usize);
        (top..top + ch as usize)
            .flat_map(|y| &resized[(y * w + left) * 3..(y * w + left + cw as usize) * 3])
            .copied()
            .collect()
    }

    /// A `width x height` image of seeded noise.
    fn noise(width: u32, height: u32, seed: u64) -> Rgb {
        let mut state = seed | 1;
        let pixels = (0..width * height * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        Rgb {
            width,
            height,
            pixels,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The crop computed alone is the crop of the whole resize within two 8-bit steps,
        /// one a pass: upscaled, downscaled and unresized sides, crops at the edges and in
        /// between, thin images. (The fixed-point weights' precision, 14 bits or more,
        /// follows the largest weight of the pass, whose outputs are the crop's here and the
        /// whole image's there, so each pass may round a value the other way; the second
        /// pass's weights are convex, so a step off in its input is at most a step off in its
        /// output. Pillow's precision is fixed, and `tests/it/picture.rs` holds the result to
        /// torchvision's.)
        #[test]
        fn the_crop_alone_is_the_crop_of_the_whole_resize(
            (width, height) in (1u32..120, 1u32..120),
            short in 1u32..160,
            (fy, fx, fh, fw) in (0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0),
            seed in any::<u64>(),
        ) {
            let img = noise(width, height, seed);
            let [w, h] = resized_size(width, height, short);
            let cw = 1 + ((f64::from(w - 1)) * fw) as u32;
            let ch = 1 + ((f64::from(h - 1)) * fh) as u32;
            let left = (f64::from(w - cw) * fx) as u32;
            let top = (f64::from(h - ch) * fy) as u32;
            let ours = resize_crop(&img, [w, h], [left, top], [cw, ch]).unwrap();
            let whole = whole_then_crop(&img, [w, h], [left, top], [cw, ch]);
            prop_assert_eq!(ours.len(), whole.len());
            let off = ours.iter().zip(&whole).map(|(a, b)| a.abs_diff(*b)).max();
            prop_assert!(off <= Some(2), "{:?} steps off the whole resize", off);
        }

        /// A crop of the whole image is the whole resize, bit for bit.
        #[test]
        fn the_whole_image_cropped_is_the_whole_resize(
            (width, height) in (1u32..120, 1u32..120),
            short in 1u32..160,
            seed in any::<u64>(),
        ) {
            let img = noise(width, height, seed);
            let [w, h] = resized_size(width, height, short);
            let ours = resize_crop(&img, [w, h], [0, 0], [w, h]).unwrap();
            prop_assert_eq!(ours, whole_then_crop(&img, [w, h], [0, 0], [w, h]));
        }
    }
}
