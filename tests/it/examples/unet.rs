//! The U-Nets: the original of Ronneberger et al. 2015 (unpadded, cropped skips) and a padded
//! variant with bilinear upsampling. Output sizes follow the paper's figure 1; parameter and
//! MAC counts are derived here by hand, layer by layer, from the architecture.

use super::summary;

/// Parameters of a k x k conv with bias.
fn conv(k: u64, c_in: u64, c_out: u64) -> u64 {
    k * k * c_in * c_out + c_out
}

#[test]
fn original_unet_maps_a_572_tile_to_388_with_its_parameters_and_macs_by_hand() {
    let s = summary("unet.res", None);
    let last = s.layers.last().unwrap();
    assert_eq!(
        (last.path.as_str(), last.dims.as_slice()),
        ("head", &[1, 2, 388, 388][..])
    );

    // Parameters: every 3x3 conv, 2x2 up-convolution and the 1x1 head has a bias.
    let widths = [64, 128, 256, 512, 1024];
    let mut params = 0;
    let mut c_in = 1;
    for &c in &widths {
        params += conv(3, c_in, c) + conv(3, c, c);
        c_in = c;
    }
    for &c in widths[..4].iter().rev() {
        // Up-convolution 2c -> c ([2c, c, 2, 2] + c), then two 3x3 convs on the 2c
        // concatenated channels.
        params += 2 * c * c * 4 + c;
        params += conv(3, 2 * c, c) + conv(3, c, c);
    }
    params += conv(1, 64, 2);
    assert_eq!(params, 31_030_658);
    assert_eq!(s.params, params);

    // MACs, with the sizes of figure 1: each unpadded 3x3 conv takes 2 off the size.
    let mut macs = 0;
    let mut size = 572;
    let mut skips = Vec::new();
    c_in = 1;
    for (i, &c) in widths.iter().enumerate() {
        if i > 0 {
            size /= 2;
        }
        macs += 9 * c_in * c * (size - 2) * (size - 2) + 9 * c * c * (size - 4) * (size - 4);
        size -= 4;
        skips.push(size);
        c_in = c;
    }
    assert_eq!(skips, [568, 280, 136, 64, 28]);
    for &c in widths[..4].iter().rev() {
        // A transposed conv costs every input pixel times its 2x2 taps and output channels.
        macs += 2 * c * c * 4 * size * size;
        size *= 2;
        macs += 9 * 2 * c * c * (size - 2) * (size - 2) + 9 * c * c * (size - 4) * (size - 4);
        size -= 4;
    }
    assert_eq!(size, 388);
    macs += 64 * 2 * 388 * 388;
    assert_eq!(s.macs, macs);

    // The crops of figure 1: 568 -> 392, 280 -> 200, 136 -> 104, 64 -> 56.
    let crops: Vec<u64> = s
        .layers
        .iter()
        .filter(|l| l.op == "crop")
        .map(|l| l.dims[2])
        .collect();
    assert_eq!(crops, [56, 104, 200, 392]);
}

/// Parameters of a 3x3 conv without bias and its batchnorm.
fn conv_bn(c_in: u64, c_out: u64) -> u64 {
    9 * c_in * c_out + 2 * c_out
}

#[test]
fn padded_unet_keeps_the_input_size_with_its_parameters_by_hand() {
    let s = summary("unet_padded.res", None);
    let last = s.layers.last().unwrap();
    assert_eq!(
        (last.path.as_str(), last.dims.as_slice()),
        ("outc.conv", &[1, 2, 256, 256][..])
    );
    // Encoder: double convs 3 -> 64, then 64 -> 128 -> 256 -> 512 -> 512 after each pool.
    let double = |c_in, mid, c| conv_bn(c_in, mid) + conv_bn(mid, c);
    let mut params = double(3, 64, 64);
    for (c_in, c) in [(64, 128), (128, 256), (256, 512), (512, 512)] {
        params += double(c_in, c, c);
    }
    // Decoder: concat (skip + upsampled), then a double conv through `mid` to `c`.
    for (c_in, mid, c) in [
        (1024, 512, 256),
        (512, 256, 128),
        (256, 128, 64),
        (128, 64, 64),
    ] {
        params += double(c_in, mid, c);
    }
    params += conv(1, 64, 2);
    assert_eq!(s.params, params);
}

/// `resnetc ARGS` on `text` as standard input: exit code, stdout, stderr.
fn resnetc_stdin(args: &[&str], text: &str) -> (Option<i32>, String, String) {
    let out = crate::cli::resnetc_stdin(args, text.as_bytes());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn padded_unet_runs_and_takes_odd_sizes() {
    let text = crate::read("examples/unet_padded.res");
    // A smaller input keeps the suite fast; an odd size shows the upsampling meeting each
    // skip (`like:`) whatever the pools rounded down: 75 -> 37 -> 18 -> 9 -> 4 and back.
    for size in ["64, 64", "75, 49"] {
        let text = text.replace("[N, 3, 256, 256]", &format!("[N, 3, {size}]"));
        let (code, out, err) = resnetc_stdin(&["run", "-", "--random-input"], &text);
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains(&format!("[1, 2, {size}]")), "{out}");
    }
}
