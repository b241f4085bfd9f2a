//! Per-channel statistics of an activation, the two figures of a signal propagation plot
//! (Brock, De and Smith 2021): over the batch and spatial positions of each channel, the mean
//! and the population variance, then each averaged over the channels. Sums are in f64, so the
//! figures do not depend on the summation order beyond f32 rounding of the values themselves.

use ndarray::ArrayD;
use serde::Serialize;

/// The statistics of one NCHW (or `[N, C]`) value.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// `mean_c( mean_{n,h,w}(x)^2 )`: the average channel squared mean.
    pub mean_sq: f64,
    /// `mean_c( var_{n,h,w}(x) )`: the average channel (population) variance.
    pub var: f64,
}

/// The statistics of `x`, whose axis 1 is the channel axis (axes past it are spatial). A value
/// of rank below 2 counts as one channel.
pub fn channel_stats(x: &ArrayD<f32>) -> Stats {
    let shape = x.shape();
    let (n, c) = match shape {
        [] => (1, 1),
        [n] => (*n, 1),
        [n, c, ..] => (*n, *c),
    };
    let inner: usize = shape.iter().skip(2).product();
    let count = (n * inner) as f64;
    if count == 0.0 || c == 0 {
        return Stats {
            mean_sq: 0.0,
            var: 0.0,
        };
    }
    let standard = x.as_standard_layout();
    let data = standard
        .as_slice()
        .expect("a standard-layout array is one slice");
    // The values of channel `ch`: one run of `inner` values per sample.
    let runs = |ch: usize| (0..n).map(move |i| &data[(i * c + ch) * inner..][..inner]);
    let (mut sum_mean_sq, mut sum_var) = (0f64, 0f64);
    for ch in 0..c {
        let mean = runs(ch).flatten().map(|&v| f64::from(v)).sum::<f64>() / count;
        // Two passes: the squared deviations from the mean, not E[x²] - E[x]², which cancels
        // catastrophically when the mean is large against the spread.
        let var = runs(ch)
            .flatten()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / count;
        sum_mean_sq += mean * mean;
        sum_var += var;
    }
    Stats {
        mean_sq: sum_mean_sq / c as f64,
        var: sum_var / c as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn two_channels_by_hand() {
        // Channel 0 holds 1, 3 (sample 0) and 5, 7 (sample 1): mean 4, variance 5.
        // Channel 1 holds 2, 2, 2, 2: mean 2, variance 0.
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2, 1, 2]), vec![1., 3., 2., 2., 5., 7., 2., 2.])
            .unwrap();
        let s = channel_stats(&x);
        assert_eq!(s.mean_sq, (16.0 + 4.0) / 2.0);
        assert_eq!(s.var, (5.0 + 0.0) / 2.0);
    }

    #[test]
    fn a_flat_value_counts_features_as_channels() {
        // [N, C] = [2, 1]: values 1 and 3, mean 2, variance 1.
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![1., 3.]).unwrap();
        assert_eq!(
            channel_stats(&x),
            Stats {
                mean_sq: 4.0,
                var: 1.0
            }
        );
    }
}
