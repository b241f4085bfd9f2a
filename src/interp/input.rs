//! Network inputs: `.npy` bytes decoded into float32 arrays, seeded random inputs, and the
//! validation of both against the shapes a network declares.
//!
//! No IO here: the CLI reads the (bounded) bytes. Every problem is a plain sentence a user can
//! act on (numpy's float64 default gets the `x.astype(np.float32)` hint), never a decoder's
//! jargon, and a header that claims more data than the bytes hold is an error, not an
//! allocation of that size.

use crate::ir::{DimSpec, Graph};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ViewNpyError, ViewNpyExt};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

const ASTYPE_HINT: &str = "convert it in numpy: `np.save(path, x.astype(np.float32))`";

/// Deepest bracket nesting accepted in a `.npy` header.
const MAX_HEADER_NESTING: usize = 8;

/// Decode a float32 `.npy` file. The error is a sentence about the file ("holds float64
/// values; ..."), to be prefixed with its name.
pub fn from_npy(bytes: &[u8]) -> Result<ArrayD<f32>, String> {
    if bytes.is_empty() {
        return Err("is empty, not a .npy file".into());
    }
    if !bytes.starts_with(b"\x93NUMPY") {
        if let Ok(format) = image::guess_format(bytes) {
            return Err(format!(
                "is a {format:?} image, not a .npy file: `run` takes PNG and JPEG images named .png, .jpg or .jpeg"
            ));
        }
        return Err("is not a .npy file (it does not start with numpy's magic bytes)".into());
    }
    // The decoder allocates the header length the file claims (up to 4 GiB in format 2)
    // before reading it: check it against the bytes first.
    let (len_at, len_size) = match bytes.get(6) {
        Some(1) => (8, 2),
        Some(2 | 3) => (8, 4),
        _ => return Err("has an unknown .npy format version".into()),
    };
    let Some(field) = bytes.get(len_at..len_at + len_size) else {
        return Err("is truncated inside its .npy header".into());
    };
    let header_len = field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    if len_at + len_size + header_len > bytes.len() {
        return Err(format!(
            "is truncated: its header claims {header_len} bytes, more than the file holds"
        ));
    }
    // The decoder parses the header as a Python literal, in time that grows exponentially
    // with how deeply its brackets nest (a hundred took minutes); a real header nests two
    // deep (`{'shape': (1, 3)}`), four with a structured dtype.
    let mut depth = 0usize;
    for &b in &bytes[len_at + len_size..][..header_len] {
        match b {
            b'[' | b'(' | b'{' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(format!(
                        "has a malformed .npy header (brackets nested more than \
                         {MAX_HEADER_NESTING} deep)"
                    ));
                }
            }
            b']' | b')' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let view = match ndarray::ArrayViewD::<f32>::view_npy(bytes) {
        // The data must be 4-byte aligned to be viewed: the bytes are copied to where it is.
        // numpy pads its headers so that the data starts at a multiple of 64 bytes, but a file
        // another writer made may start it anywhere.
        Err(ViewNpyError::MisalignedData) => {
            let data_at = len_at + len_size + header_len;
            let align = std::mem::align_of::<f32>();
            let mut buf = vec![0u8; bytes.len() + align - 1];
            let shift = (align - (buf.as_ptr() as usize + data_at) % align) % align;
            let copy = &mut buf[shift..shift + bytes.len()];
            copy.copy_from_slice(bytes);
            return ndarray::ArrayViewD::<f32>::view_npy(copy)
                .map(|v| v.as_standard_layout().into_owned())
                .map_err(|e| plain(&e));
        }
        other => other.map_err(|e| plain(&e))?,
    };
    Ok(view.as_standard_layout().into_owned())
}

/// A decoder error in words.
fn plain(e: &ViewNpyError) -> String {
    match e {
        ViewNpyError::WrongDescriptor(d) => {
            let d = d.to_string();
            let d = d.trim_matches(|c| c == '\'' || c == '"');
            format!(
                "holds {} values, but resnetc runs on float32; {ASTYPE_HINT}",
                dtype_name(d)
            )
        }
        ViewNpyError::NonNativeEndian => {
            format!(
                "holds big-endian values, but resnetc reads little-endian float32; {ASTYPE_HINT}"
            )
        }
        ViewNpyError::MissingBytes(n) => {
            format!("is truncated: its header promises {n} more bytes of data than it holds")
        }
        ViewNpyError::ExtraBytes(n) => {
            format!(
                "has {n} bytes after the data its header describes: is it a .npz or a damaged file?"
            )
        }
        ViewNpyError::LengthOverflow => "has a header whose shape is too large to address".into(),
        ViewNpyError::ParseHeader(e) => format!("has a damaged .npy header ({e})"),
        other => format!("is not a float32 .npy array ({other})"),
    }
}

/// numpy's name for a type descriptor such as `<f8`.
fn dtype_name(descr: &str) -> String {
    let code = descr.trim_start_matches(['<', '>', '=', '|']);
    let name = match code {
        "f8" => "float64",
        "f2" => "float16",
        "f4" => "float32",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "b1" => "bool",
        _ => return format!("`{}`", descr.chars().take(40).collect::<String>()),
    };
    if descr.starts_with('>') {
        format!("big-endian {name}")
    } else {
        name.to_string()
    }
}

/// How many values of `x` are NaN or infinite.
pub fn count_non_finite(x: &ArrayD<f32>) -> usize {
    x.iter().filter(|v| !v.is_finite()).count()
}

/// Seeded standard-normal inputs of the declared shapes, the symbolic batch set to `batch`.
/// Input `i` is drawn from `seed + 1 + i`.
pub fn random(g: &Graph, batch: usize, seed: u64) -> Vec<ArrayD<f32>> {
    g.inputs
        .iter()
        .enumerate()
        .map(|(i, decl)| {
            let dims: Vec<usize> = decl
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Known(v) => *v as usize,
                    DimSpec::Sym(_) => batch,
                })
                .collect();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(1 + i as u64));
            ArrayD::from_shape_simple_fn(IxDyn(&dims), || StandardNormal.sample(&mut rng))
        })
        .collect()
}

/// Refuse a network whose inputs have a symbolic dimension other than the batch (it cannot
/// be run: nothing binds it).
pub fn check_runnable(g: &Graph) -> Result<(), String> {
    for decl in &g.inputs {
        if let Some(DimSpec::Sym(s)) = decl
            .dims
            .iter()
            .skip(1)
            .find(|d| matches!(d, DimSpec::Sym(_)))
        {
            return Err(format!(
                "cannot run `{}`: dimension `{s}` of input `{}` is symbolic; only the batch may be (state the size in the network)",
                g.name, decl.name
            ));
        }
    }
    Ok(())
}

/// Check each input's shape against its declaration (symbols bind consistently across inputs);
/// `names[i]` says what input `i` is in messages (a file name, "the random input"). Returns the
/// batch: the first input's first dimension.
pub fn check_shapes(g: &Graph, inputs: &[ArrayD<f32>], names: &[String]) -> Result<usize, String> {
    let mut bound: Vec<(&str, usize)> = Vec::new();
    for ((decl, x), what) in g.inputs.iter().zip(inputs).zip(names) {
        let shape = x.shape();
        let declared: Vec<String> = decl
            .dims
            .iter()
            .map(|d| match d {
                DimSpec::Known(v) => v.to_string(),
                DimSpec::Sym(s) => s.clone(),
            })
            .collect();
        // One image without its batch axis (a common slip when saving from numpy).
        let unbatched = shape.len() + 1 == decl.dims.len()
            && matches!(decl.dims[0], DimSpec::Sym(_) | DimSpec::Known(1))
            && decl.dims[1..]
                .iter()
                .zip(shape)
                .all(|(d, &actual)| match d {
                    DimSpec::Known(v) => *v == actual as u64,
                    DimSpec::Sym(_) => true,
                });
        let mismatch = || {
            let hint = if unbatched {
                "; it lacks the batch axis: save it as `np.save(path, x[None])`"
            } else {
                ""
            };
            format!(
                "{what} has shape {shape:?}, but input `{}` is declared [{}]{hint}",
                decl.name,
                declared.join(", ")
            )
        };
        if shape.len() != decl.dims.len() {
            return Err(mismatch());
        }
        for (d, &actual) in decl.dims.iter().zip(shape) {
            match d {
                DimSpec::Known(v) if *v != actual as u64 => return Err(mismatch()),
                DimSpec::Sym(s) => match bound.iter().find(|(b, _)| b == s) {
                    Some((_, v)) if *v != actual => {
                        return Err(format!(
                            "{what} binds `{s}` to {actual}, but an earlier input bound it to {v}"
                        ));
                    }
                    Some(_) => {}
                    None => bound.push((s, actual)),
                },
                _ => {}
            }
            if actual == 0 {
                return Err(format!("{what} has an empty dimension: shape {shape:?}"));
            }
        }
    }
    Ok(inputs
        .first()
        .and_then(|x| x.shape().first().copied())
        .unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_longer_than_the_file_is_refused_before_allocating_it() {
        // Found by fuzzing: format 3 with a header length of 3.6 GB made the decoder allocate
        // it. Little-endian u32 0xd884ff8a at offset 8.
        let mut bytes = b"\x93NUMPY\x03\x00".to_vec();
        bytes.extend_from_slice(&0xd884_ff8au32.to_le_bytes());
        bytes.extend_from_slice(b"{'descr': '<f4'");
        let err = from_npy(&bytes).unwrap_err();
        assert!(err.contains("header claims 3632594826 bytes"), "{err}");
    }

    /// A version-1 `.npy` file of `values` as shape `[len]`, its header padded with spaces
    /// to `header_len` bytes (numpy pads so that the data starts at a multiple of 64; other
    /// writers may not pad at all).
    fn npy_with_header_len(values: &[f32], header_len: usize) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
            values.len()
        );
        assert!(
            dict.len() < header_len,
            "the header holds the dict and its newline"
        );
        let header = format!("{dict:<width$}\n", width = header_len - 1);
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&u16::try_from(header_len).unwrap().to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn data_at_any_offset_is_read_whatever_its_alignment() {
        let values = [1.5f32, -2.0, 3.25, f32::MIN_POSITIVE, 7.0];
        // The data starts at 10 + header_len: every remainder modulo 4 (and numpy's 64).
        for header_len in [70, 71, 72, 73, 118] {
            let bytes = npy_with_header_len(&values, header_len);
            let got = from_npy(&bytes).unwrap_or_else(|e| panic!("header of {header_len}: {e}"));
            assert_eq!(got.shape(), &[values.len()], "header of {header_len}");
            let got: Vec<f32> = got.iter().copied().collect();
            assert_eq!(got, values, "header of {header_len}");
        }
    }

    #[test]
    fn an_image_without_its_batch_axis_gets_the_hint() {
        let text = "network t {\n    input image: [N, 3, 8, 8]\n    output image -> relu\n}\n";
        let checked = crate::check(&crate::span::Source::new("t.res", text.to_string()), None);
        let net = checked.network().expect("the network checks");
        let g = net.graph();
        let names = ["`x.npy`".to_string()];
        let one = ArrayD::zeros(IxDyn(&[3, 8, 8]));
        let err = check_shapes(g, &[one], &names).unwrap_err();
        assert_eq!(
            err,
            "`x.npy` has shape [3, 8, 8], but input `image` is declared [N, 3, 8, 8]; \
             it lacks the batch axis: save it as `np.save(path, x[None])`"
        );
        // Another shape of the same rank: no hint.
        let other = ArrayD::zeros(IxDyn(&[3, 8, 9]));
        let err = check_shapes(g, &[other], &names).unwrap_err();
        assert!(!err.contains("batch axis"), "{err}");
        // With its batch axis it is accepted.
        let batched = ArrayD::zeros(IxDyn(&[1, 3, 8, 8]));
        assert_eq!(check_shapes(g, &[batched], &names), Ok(1));
    }

    #[test]
    fn float64_gets_the_astype_hint() {
        let mut header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }".to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0u8; 16]);
        let err = from_npy(&bytes).unwrap_err();
        assert!(err.starts_with("holds float64 values"), "{err}");
        assert!(err.contains("x.astype(np.float32)"), "{err}");
    }
}
