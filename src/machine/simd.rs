//! GEMM micro-kernels for the CPU's vector units, chosen at run time.
//!
//! One kernel shape serves every convolution: [`Isa::tile`] multiplies a packed `kc x MR` panel
//! of weights (k-major: the `MR` output channels of one `k` side by side) by a packed `kc x nr`
//! panel of input columns (k-major, `nr` pixels side by side) into an `MR x nr` tile of
//! accumulators, broadcasting the weights and loading the pixels as vectors. The tile is
//! `8 x 32` with AVX-512 (16 of the 32 zmm registers accumulate), `8 x 24` with AVX2 + FMA (two
//! `4 x 24` halves in turn: 12 ymm accumulators, three pixel vectors and a broadcast weight
//! fill the 16 registers), and `8 x 8` in plain Rust elsewhere; a partial panel's columns are
//! computed in steps of one vector ([`Isa::tile_step`]). [`Isa::tile_rows`] is the same
//! tile reading its pixels in place, and [`Isa::tile_rows_out`] the same again for a whole
//! reduction, adding bias and residual and applying ReLU as it writes the output rows: with
//! AVX-512, straight from its registers, one masked store per run of output pixels (with
//! AVX2, from its registers when the tile is one run of all its columns).
//! [`Isa::tile_rows_out_panels`] runs several weight panels against one pixel panel that way,
//! checking its operands once.
//!
//! On maps too narrow to fill `nr`-pixel panels (7x7, 14x14), [`Isa::tile_pixels`] turns the
//! tile around: `CR = 32` output channels (two zmm vectors of weights per `k`) by up to `PR =
//! 14` pixels, each broadcast from the input, so that a tile holds exactly the output's pixels
//! (28 accumulators with AVX-512; with AVX2, 32 channels by 3 pixels at a time, 12). An
//! [`Isa`] value exists only for an instruction set the running CPU has, which is what makes
//! calling the `target_feature` functions sound.
//!
//! Beside them: [`Isa::depthwise_rows`], a depthwise conv's output rows in blocks of 16 sums
//! kept in registers, [`Isa::even_values`] and [`Isa::split_pairs`] (a row's even, and even
//! and odd, columns, for a stride-2 conv's phases), and the max pool's folds.

/// Output channels per tile (rows of the weight panels), the same on every instruction set so
/// that weights are packed once, whatever the CPU.
pub const MR: usize = 8;

/// Output channels per tile of [`Isa::tile_pixels`] (the width of its weight panels), the same
/// on every instruction set.
pub const CR: usize = 32;

/// Most pixels one [`Isa::tile_pixels`] call computes.
pub const PR: usize = 14;

/// Most pixels of the tiles [`Isa::tile_pixels_group`] computes together: four rows of a
/// 14x14 map, or all of a 7x7 map's 49. Each pass of 64 or 128 reduction rows then reads its
/// 8-16 KiB of weights from L2 once for all of them, where tile by tile (at most [`PR`]
/// pixels) it read them once per tile: a 7x7 map's four tiles streamed each 256 KiB panel of
/// a 1x1 conv 2048 -> 512 from L2 (or L3, beside its 400 KB input) four times. Measured on
/// the AMD EPYC (Zen 3, AVX2 only), one thread, the two builds' processes alternated: that
/// conv 1.46-1.47 ms against 1.67-1.71, a 3x3 conv of 512 channels on a 7x7 map 2.75-2.86
/// against 3.04-3.05; the 1x1 convs 1024 -> 256 and 512 -> 2048 level. Groups of 28 pixels
/// ran 2-6% slower than 56, of 112 level with 56, and passes of 32 rows 4-13% slower.
pub const PIXEL_GROUP: usize = 56;

/// Widest max-pool window [`Isa::fold_max_windows`] folds in vectors.
pub const MAX_POOL_KW: usize = 8;

/// Output values per block of [`Isa::depthwise_rows`]: one AVX-512 vector, two AVX2 ones.
pub const DW_LANES: usize = 16;

/// Rows of a depthwise conv's output plane whose blocks [`Isa::depthwise_rows`] computes side
/// by side (AVX-512 and AVX2), each its own chain of multiply-adds. Measured on the AMD EPYC
/// (Zen 5), 2 threads, against one row at a time alternated in one process (median of 30
/// runs, twice): MobileNetV2's depthwise convs 0.95 against 1.09 ms, EfficientNet-B0's 1.34-1.41
/// against 1.62-1.66 with AVX-512; with AVX2 1.59-1.79 against 1.79-1.84 and 3.04-3.09
/// against 3.39-3.40.
const DW_ROWS: usize = 4;

/// What an output pass applies to each value once its sums are done: ReLU (`v < 0` gives
/// `0`), then a cap (`v > cap` gives `cap`: ReLU6 is ReLU with a cap of 6). Both compares are
/// ordered, so NaN and -0.0 stay as they are: PyTorch's `relu` and `relu6` (`clamp(v, 0, 6)`),
/// bit for bit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Act {
    pub relu: bool,
    pub cap: Option<f32>,
}

impl Act {
    /// ReLU6: ReLU with a cap of 6.
    pub const RELU6: Act = Act {
        relu: true,
        cap: Some(6.0),
    };

    /// The activation of one value.
    #[inline(always)]
    pub fn apply(self, v: f32) -> f32 {
        let v = if self.relu && v < 0.0 { 0.0 } else { v };
        match self.cap {
            Some(c) if v > c => c,
            _ => v,
        }
    }
}

impl From<bool> for Act {
    /// ReLU or nothing.
    fn from(relu: bool) -> Act {
        Act { relu, cap: None }
    }
}

/// `$body` with `$f` bound to [`Act::apply`] of `$act` as a closure whose cap is known where
/// it is compiled: `$body` is compiled once without a cap and once with one, so that a loop
/// in it compiles to the compares it needs (with no cap, those of a ReLU alone) rather than
/// testing for the cap at every value.
macro_rules! with_act {
    ($act:expr, |$f:ident| $body:expr) => {{
        use $crate::machine::simd::Act;
        let Act { relu, cap } = $act;
        match cap {
            None => {
                let $f = move |v: f32| Act { relu, cap: None }.apply(v);
                $body
            }
            Some(c) => {
                let $f = move |v: f32| Act { relu, cap: Some(c) }.apply(v);
                $body
            }
        }
    }};
}
pub(crate) use with_act;

/// The end of a block of [`Isa::depthwise_rows`] for `dst.len()` sums in `acc`: bias,
/// residual, activation.
#[inline(always)]
fn depthwise_out(acc: &[f32], bias: f32, res: Option<&[f32]>, act: Act, dst: &mut [f32]) {
    with_act!(act, |act| match res {
        Some(r) => {
            for ((d, &a), &rv) in dst.iter_mut().zip(acc).zip(r) {
                *d = act(a + bias + rv);
            }
        }
        None => {
            for (d, &a) in dst.iter_mut().zip(acc) {
                *d = act(a + bias);
            }
        }
    })
}

/// Values per channel of [`Isa::channels_major`]'s output (`PR` rounded up to a vector).
pub const TR: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Avx512,
    Avx2,
    Portable,
}

/// Where and how [`Isa::tile_rows_out`] writes its tile.
pub struct TileOut<'a, 'b> {
    /// The `MR` output rows, one per channel of the tile.
    pub rows: &'a mut [&'b mut [f32]],
    /// `(s, d, n)`: tile columns `s..s + n` go to pixels `d..d + n` of every row.
    pub runs: &'a [(usize, usize, usize)],
    /// One per channel.
    pub bias: &'a [f32],
    /// A residual to add, pixel `d` of channel `i` at `r[i * ld + d]`: `(r, ld)`.
    pub residual: Option<(&'a [f32], usize)>,
    /// Whether the output rows hold a residual to add and write over.
    pub in_place: bool,
    pub act: Act,
}

impl<'a, 'b> TileOut<'a, 'b> {
    /// Panics unless there are `channels` rows and biases and every run lies inside the
    /// tile's `cols` columns, every row and the residual: what the vector kernels rely on.
    fn check(&self, channels: usize, cols: usize) {
        assert!(
            self.rows.len() == channels && self.bias.len() == channels,
            "one row and one bias per channel of the tile"
        );
        for &(s, d, n) in self.runs {
            assert!(s + n <= cols, "a run lies inside the tile");
            assert!(
                self.rows.iter().all(|row| d + n <= row.len()),
                "a run lies inside every output row"
            );
            if let Some((r, ld)) = self.residual {
                assert!(
                    (channels - 1) * ld + d + n <= r.len(),
                    "a run lies inside the residual"
                );
            }
        }
    }

    /// The output pass on a tile whose column `j` of channel `i` is `t[i * ld + j]`: for each
    /// run, `act(tile + bias[i] (+ residual) (+ the value there, when in place))`, summed in
    /// that order: the specification the vector kernels' writes follow. Its loops run over
    /// whole runs of consecutive values, so that inlined into [`Isa::vectorized`] they take
    /// the instruction set's vectors.
    #[inline(always)]
    fn write_from(self, t: &[f32], ld: usize) {
        with_act!(
            self.act,
            |act| for (i, row) in self.rows.iter_mut().enumerate() {
                let b = self.bias[i];
                for &(s, d, n) in self.runs {
                    let (src, dst) = (&t[i * ld + s..][..n], &mut row[d..d + n]);
                    match (self.residual, self.in_place) {
                        (None, false) => {
                            dst.iter_mut().zip(src).for_each(|(o, &v)| *o = act(v + b))
                        }
                        (None, true) => dst
                            .iter_mut()
                            .zip(src)
                            .for_each(|(o, &v)| *o = act(v + b + *o)),
                        (Some((r, lr)), in_place) => {
                            let r = &r[i * lr + d..][..n];
                            for ((o, &v), &x) in dst.iter_mut().zip(src).zip(r) {
                                let v = v + b + x;
                                *o = act(if in_place { v + *o } else { v });
                            }
                        }
                    }
                }
            }
        )
    }

    /// Asks the CPU for the cache lines this tile's output pass will read and write (every
    /// run of every output row, and of the residual rows), so that they arrive while the tile
    /// is computed: a hint, which never faults and changes no value.
    #[inline]
    fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let lines = |v: &[f32], f: &dyn Fn(*const i8)| {
                v.chunks(16).for_each(|line| f(line.as_ptr() as *const i8));
                if let Some(last) = v.last() {
                    f(last as *const f32 as *const i8);
                }
            };
            let write = |p: *const i8| prefetch_line_write(p);
            // SAFETY: SSE is part of every x86-64 CPU, and a prefetch of an address inside a
            // live slice reads nothing and cannot fault.
            let read = |p: *const i8| unsafe { _mm_prefetch::<_MM_HINT_T0>(p) };
            for (i, row) in self.rows.iter().enumerate() {
                for &(_, d, n) in self.runs {
                    lines(&row[d..d + n], &write);
                    if let Some((r, ld)) = self.residual {
                        lines(&r[i * ld + d..][..n], &read);
                    }
                }
            }
        }
    }

    /// The rows, and the rest as the vector kernels take it.
    #[cfg(target_arch = "x86_64")]
    fn split(self) -> (&'a mut [&'b mut [f32]], x86::Epilogue<'a>) {
        let TileOut {
            rows,
            runs,
            bias,
            residual,
            in_place,
            act,
        } = self;
        let ep = x86::Epilogue {
            runs,
            bias,
            residual,
            in_place,
            act,
        };
        (rows, ep)
    }
}

/// The offsets of an input panel's rows for [`Isa::tile_rows`], with their largest and how
/// they lie, found once for every panel that uses them.
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a> {
    offs: &'a [usize],
    max: Option<usize>,
    /// Whether most rows start within a cache line of the row before (a stride-1 conv's taps
    /// of one channel), so that a run of rows reads few input lines; a 1x1 conv's rows (and a
    /// stride-2 conv's, in phase planes) each start a plane apart, in lines of their own.
    dense: bool,
}

impl<'a> Rows<'a> {
    pub fn new(offs: &'a [usize]) -> Rows<'a> {
        let near = offs
            .windows(2)
            .filter(|w| w[1].abs_diff(w[0]) < LINE_VALUES)
            .count();
        Rows {
            offs,
            max: offs.iter().copied().max(),
            dense: 2 * near >= offs.len().saturating_sub(1),
        }
    }

    /// Whether most rows start within a cache line of the row before.
    pub fn dense(&self) -> bool {
        self.dense
    }
}

/// `f32` values in a 64-byte cache line.
const LINE_VALUES: usize = 16;

/// Channels per block of the channels-innermost layout (`[C / BLOCK][H * W][BLOCK]` per
/// image): one cache line of `f32`, so that a pixel's values for `BLOCK` consecutive reduction
/// rows are one line.
pub const BLOCK: usize = LINE_VALUES;

/// The pixels of one [`Isa::tile_pixels`] call: `len` of them, the first `split` at offsets
/// `0..split` from the tile's position and the rest `gap` further on (a second output row),
/// each offset times `step` (1 in planes of pixels; [`BLOCK`] where a pixel's channels are
/// innermost: [`Span::blocked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    len: usize,
    split: usize,
    gap: usize,
    step: usize,
}

impl Span {
    /// `len` consecutive pixels (`1 <= len <= PR`).
    pub fn run(len: usize) -> Option<Span> {
        (1..=PR).contains(&len).then_some(Span {
            len,
            split: len,
            gap: 0,
            step: 1,
        })
    }

    /// Two runs of `half` pixels (`1 <= half <= PR / 2`), the second `gap` values after the
    /// first ends.
    pub fn rows(half: usize, gap: usize) -> Option<Span> {
        (1..=PR / 2).contains(&half).then_some(Span {
            len: 2 * half,
            split: half,
            gap,
            step: 1,
        })
    }

    /// The same pixels in the channels-innermost layout, where pixel `j` lies `BLOCK` values
    /// after pixel `j - 1` (and `gap` counts pixels).
    pub fn blocked(self) -> Span {
        Span {
            step: BLOCK,
            ..self
        }
    }

    /// Pixels in the tile (never none).
    pub fn pixels(self) -> usize {
        self.len
    }

    /// Offset of pixel `j` from the tile's position.
    pub fn offset(self, j: usize) -> usize {
        self.step * if j < self.split { j } else { j + self.gap }
    }
}

/// Whether this CPU executes 512-bit vector operations as two 256-bit halves: an AMD CPU of
/// family 19h (Zen 3 and Zen 4; only Zen 4 has AVX-512).
fn avx512_in_halves() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        let vendor = __cpuid(0);
        let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
        // Family: the base family (bits 8-11) plus the extended family (bits 20-27).
        let eax = __cpuid(1).eax;
        let family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
        amd && family == 0x19
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// An instruction set the running CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isa(Kind);

impl Isa {
    /// The fastest instruction set this CPU has.
    pub fn best() -> Isa {
        Self::available()[0]
    }

    /// Every instruction set this CPU has, fastest first (the portable one always).
    pub fn available() -> Vec<Isa> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa(Kind::Avx512));
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                v.push(Isa(Kind::Avx2));
            }
        }
        v.push(Isa(Kind::Portable));
        v
    }

    /// The instruction set the environment variable `RESNETC_CPU` names (see [`Isa::named`]),
    /// or the fastest when it is unset or empty: a tuning switch, so that each instruction set
    /// can be measured on one machine.
    pub fn from_env() -> Result<Isa, String> {
        match std::env::var("RESNETC_CPU") {
            Ok(name) if !name.is_empty() => Self::named(&name),
            _ => Ok(Self::best()),
        }
    }

    /// The instruction set kernels that are not handed one run with: [`Isa::from_env`], or
    /// the best this CPU has when `RESNETC_CPU` names none it has (the CLI reports that as an
    /// error before anything runs). Read once per process.
    pub fn configured() -> Isa {
        static CONFIGURED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *CONFIGURED.get_or_init(|| Self::from_env().unwrap_or_else(|_| Self::best()))
    }

    /// The instruction set called `name` (`avx512`, `avx2`, `portable`), if this CPU has it;
    /// otherwise a sentence saying why not.
    pub fn named(name: &str) -> Result<Isa, String> {
        let kind = match name.to_ascii_lowercase().as_str() {
            "avx512" | "avx512f" => Kind::Avx512,
            "avx2" => Kind::Avx2,
            "portable" | "none" => Kind::Portable,
            _ => {
                return Err(format!(
                    "unknown instruction set `{name}` (expected avx512, avx2 or portable)"
                ));
            }
        };
        Self::available()
            .into_iter()
            .find(|i| i.0 == kind)
            .ok_or_else(|| format!("this CPU does not support {name}"))
    }

    /// Its name, as [`Isa::named`] takes it.
    pub fn name(self) -> &'static str {
        match self.0 {
            Kind::Avx512 => "avx512",
            Kind::Avx2 => "avx2",
            Kind::Portable => "portable",
        }
    }

    /// Whether [`Isa::tile_pixels`] beats [`Isa::tile_rows`] on narrow maps: with AVX-512,
    /// whose 32 registers hold a `32 x 14` tile, and with AVX2, whose 16 hold `32 x 3` parts of
    /// it; not in portable code. (Where it is not, the in-place tile reads the transposed
    /// tile's weights in `MR`-channel parts.)
    pub fn fast_pixels(self) -> bool {
        matches!(self.0, Kind::Avx512 | Kind::Avx2)
    }

    /// Whether code run by [`Isa::vectorized`] is compiled with FMA, so that `f32::mul_add` is
    /// one instruction there (AVX2 and AVX-512); elsewhere it may be a call to libm's `fmaf`.
    pub fn has_fma(self) -> bool {
        matches!(self.0, Kind::Avx512 | Kind::Avx2)
    }

    /// Whether [`Isa::tile_pixels`] keeps its whole `CR x PR` tile in registers (AVX-512); with
    /// AVX2 it computes it in `32 x 3` parts.
    pub fn whole_pixel_tile(self) -> bool {
        self.0 == Kind::Avx512
    }

    /// Whether this instruction set's products run faster than AVX2's: AVX-512 on a core
    /// that executes a 512-bit FMA at once. AMD's Zen 4 cores (family 19h, the only AMD
    /// family before Zen 5 with AVX-512) split each 512-bit operation into two 256-bit
    /// halves, so their AVX-512 products run at AVX2's rate (`cargo bench --bench fma_peak`
    /// on an EPYC of that family: 115.7 GFLOP/s per thread with AVX-512, 116.3 with AVX2),
    /// and plans that trade products for memory traffic (Winograd on smaller maps) pay there
    /// as they do with AVX2. Read from the CPU once per process.
    pub fn wide_products(self) -> bool {
        static HALVED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        self.0 == Kind::Avx512 && !*HALVED.get_or_init(avx512_in_halves)
    }

    /// How many times the in-place tile ([`Isa::tile_rows`], [`Isa::tile_rows_out`]) reads
    /// each row of its pixel panel: twice with AVX2, whose `8 x 24` tile is computed as two
    /// `4 x 24` halves in turn, once elsewhere.
    pub fn panel_reads(self) -> usize {
        match self.0 {
            Kind::Avx2 => 2,
            _ => 1,
        }
    }

    /// Pixels per tile (columns of the input panels).
    pub fn nr(self) -> usize {
        match self.0 {
            Kind::Avx512 => 32,
            Kind::Avx2 => 24,
            Kind::Portable => 8,
        }
    }

    /// `acc[i * nr + j] = sum over k < kc of a[k * MR + i] * b[k * nr + j]`, with
    /// `nr = self.nr()`, for the columns `j < cols` (and for the columns up to the next
    /// multiple of [`Isa::tile_step`], whose `b` values may be anything); `acc`'s other values
    /// are left as they are. So a panel with fewer than `nr` pixels costs in proportion to its
    /// pixels, in steps of `tile_step`.
    ///
    /// # Panics
    /// If `cols > nr`, `a` has fewer than `kc * MR` values, `b` fewer than `kc * nr` or `acc`
    /// fewer than `MR * nr`.
    pub fn tile(self, kc: usize, a: &[f32], b: &[f32], acc: &mut [f32], cols: usize) {
        let nr = self.nr();
        assert!(cols <= nr, "a tile has at most nr columns");
        let (a, b, acc) = (&a[..kc * MR], &b[..kc * nr], &mut acc[..MR * nr]);
        let steps = cols.div_ceil(self.tile_step());
        if steps == 0 {
            return;
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Isa(Kind::Avx512)` is only made after `avx512f` was detected.
            Kind::Avx512 if steps == 1 => unsafe { x86::tile_avx512::<1>(a, b, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kind::Avx512 => unsafe { x86::tile_avx512::<2>(a, b, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Isa(Kind::Avx2)` is only made after `avx2` and `fma` were detected.
            Kind::Avx2 => unsafe {
                match steps {
                    1 => x86::tile8_avx2(a, b, acc),
                    2 => x86::tile_avx2::<2>(a, b, acc),
                    _ => x86::tile_avx2::<3>(a, b, acc),
                }
            },
            _ => tile_portable(a, b, acc),
        }
    }

    /// The columns [`Isa::tile`] computes at a time (one vector: 16 with AVX-512, 8 with AVX2;
    /// the portable tile's 8, all of them).
    pub fn tile_step(self) -> usize {
        match self.0 {
            Kind::Avx512 => 16,
            _ => 8,
        }
    }

    /// [`Isa::tile`] with the input panel read in place: row `k` of it is
    /// `x[base + rows.offs[k]..][..nr]`, so that a convolution reads each tap's pixels straight
    /// from its (padded) input instead of copying them into a panel first; and the weights of
    /// row `k` are `a[k * stride..][..MR]` (`stride` is `MR` for a panel packed on its own,
    /// more for an `MR`-channel part of a wider panel). `kc` is the number of offsets.
    ///
    /// # Panics
    /// If `stride < MR`, `a` is too short for `kc` rows, `acc` has fewer than `MR * nr`
    /// values, or a row would run past the end of `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_rows(
        self,
        a: &[f32],
        stride: usize,
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
    ) {
        let (nr, offs) = (self.nr(), rows.offs);
        let kc = offs.len();
        assert!(stride >= MR, "a weight row holds MR channels");
        let (a, acc) = (
            &a[..kc.saturating_sub(1) * stride + MR],
            &mut acc[..MR * nr],
        );
        assert!(
            rows.max.is_none_or(|m| base + m + nr <= x.len()),
            "every row of the panel lies inside the input"
        );
        let x = &x[base..];
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (as in `tile`); every row `x[o..o + nr]` for `o`
            // in `offs` is inside `x`, by the assertion above.
            // `a` holds `kc` rows of `MR` weights `stride` apart (its length, above).
            Kind::Avx512 => unsafe { x86::rows_avx512(a, stride, x, offs, acc) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` and `fma` were detected; rows inside `x` as above.
            Kind::Avx2 => unsafe { x86::rows_avx2(a, stride, x, offs, acc) },
            _ => {
                const NR: usize = 8;
                let mut c = [[0.0f32; NR]; MR];
                for (kk, &o) in offs.iter().enumerate() {
                    let ak = &a[kk * stride..][..MR];
                    let bk = &x[o..o + NR];
                    for (ci, &av) in c.iter_mut().zip(ak) {
                        for (cv, &bv) in ci.iter_mut().zip(bk) {
                            *cv += av * bv;
                        }
                    }
                }
                for (dst, src) in acc.chunks_exact_mut(NR).zip(&c) {
                    dst.copy_from_slice(src);
                }
            }
        }
    }

    /// [`Isa::tile_rows`] for a tile whose reduction is whole (one block), writing its output
    /// straight from the accumulators: for each run `(s, d, n)` of `out.runs`, tile columns
    /// `s..s + n` of channel `i` go to `out.rows[i][d..d + n]` as
    /// `act(acc + bias[i] (+ residual) (+ the value there, when in place))`, summed in that
    /// order (the sums and the activation of the output pass that writes [`Isa::tile_rows`]' tile).
    /// With AVX-512 the tile never leaves its registers: each run is a masked store of the
    /// vectors' lanes `s..s + n` (a tile whose columns cross the end of an output row has two
    /// runs). With AVX2 neither does a tile that is one run of all its columns (every tile of
    /// a conv without padding columns but the last), written with plain stores; other tiles,
    /// and every tile in portable code, go through a buffer, as [`Isa::tile_rows`] leaves it,
    /// and are written from there in the instruction set's vectors ([`Isa::vectorized`]);
    /// with AVX2 such a tile whose runs end within its first 8 or 16 columns (a map's last,
    /// part-filled panel) computes only those, with the same sums.
    /// Before the tile is computed, the cache lines its output pass reads and writes are asked
    /// for (`TileOut::prefetch`).
    ///
    /// # Panics
    /// As [`Isa::tile_rows`]; and if `out.rows` or `out.bias` do not hold `MR` entries, a run
    /// leaves the tile's `nr` columns or an output row, or the residual is too short for it.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_rows_out(
        self,
        a: &[f32],
        stride: usize,
        x: &[f32],
        base: usize,
        rows: &Rows,
        out: TileOut,
    ) {
        let nr = self.nr();
        out.check(MR, nr);
        // The output rows (and residual) of a short reduction's tile are often in no cache:
        // 256 output planes of a 56x56 map, more streams than the hardware prefetcher
        // follows. Asked for now, they arrive while the tile is computed.
        out.prefetch();
        // The output pixel of the tile's first column, when its one run holds all its columns.
        let whole = match *out.runs {
            [(0, d, n)] if n == nr => Some(d),
            _ => None,
        };
        // The operands every kernel below reads, checked once: a row of `MR` weights for
        // each input row, and the panel's rows inside the input.
        let a = &a[..rows.offs.len().saturating_sub(1) * stride + MR];
        assert!(stride >= MR, "a weight row holds MR channels");
        assert!(
            rows.max.is_none_or(|m| base + m + nr <= x.len()),
            "every row of the panel lies inside the input"
        );
        match (self.0, whole) {
            #[cfg(target_arch = "x86_64")]
            (Kind::Avx512, _) => {
                let (dst, ep) = out.split();
                // SAFETY: `avx512f` was detected; the rows of the input and the weights are
                // inside `x` and `a` (the checks above, as in `tile_rows`), and every run's
                // columns, output pixels and residual values are inside the tile, `dst`'s
                // rows and the residual (`TileOut::check`, above).
                unsafe { x86::rows_out_avx512(a, stride, &x[base..], rows.offs, dst, &ep) }
            }
            #[cfg(target_arch = "x86_64")]
            (Kind::Avx2, Some(d)) => {
                let (dst, ep) = out.split();
                // SAFETY: `avx2` and `fma` were detected; the rows of the input and the
                // weights are inside `x` and `a` (the checks above, as in `tile_rows`), and
                // the tile's one run of its 24 columns lies inside `dst`'s rows and the
                // residual (`TileOut::check`, above).
                unsafe { x86::rows_out_avx2(a, stride, &x[base..], rows.offs, dst, d, &ep) }
            }
            #[cfg(target_arch = "x86_64")]
            (Kind::Avx2, None) => {
                // The columns the runs write: a map's last pixel panel, part-filled (a 14x14
                // map's 196 pixels fill 8 panels of 24 and 4 columns of a ninth), computes
                // only its first 8 or 16 columns.
                let cols = out.runs.iter().map(|&(s, _, n)| s + n).max().unwrap_or(0);
                let mut acc = [0.0f32; MR * 24];
                // SAFETY: `avx2` and `fma` were detected; the rows of the input and the
                // weights are inside `x` and `a` (the checks above, as in `tile_rows`); `acc`
                // holds the 8 x 24 tile.
                unsafe { x86::rows_part_avx2(a, stride, &x[base..], rows.offs, &mut acc, cols) };
                self.vectorized(
                    #[inline(always)]
                    || out.write_from(&acc, nr),
                );
            }
            _ => {
                let mut acc = [0.0f32; MR * 32];
                self.tile_rows(a, stride, x, base, rows, &mut acc[..MR * nr]);
                self.vectorized(
                    #[inline(always)]
                    || out.write_from(&acc, nr),
                );
            }
        }
    }

    /// [`Isa::tile_rows_out`] for several weight panels against one pixel panel, each tile
    /// one run of all its `nr` columns: panel `p`'s weights at `a[p * len..]` (rows `stride`
    /// apart), its `MR` channels the rows `p * MR..(p + 1) * MR` of `out.rows`, with their
    /// biases and residual rows (`out.bias` and `out.residual` start at the first panel's
    /// first channel). The same sums and writes as a call of `tile_rows_out` per panel, which
    /// is what it makes in portable code; with AVX-512 or AVX2 it checks the operands once for
    /// all the panels and runs them in one call, so that on a short reduction (a 1x1 conv on
    /// 64 channels: 64 steps a tile) the checks and calls weigh less beside the tiles.
    ///
    /// # Panics
    /// If `out.rows` does not hold whole panels, `out.runs` is not one run of all `nr`
    /// columns, `a` is too short for the last panel, or as [`Isa::tile_rows_out`] for any
    /// panel.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_rows_out_panels(
        self,
        a: &[f32],
        len: usize,
        stride: usize,
        x: &[f32],
        base: usize,
        rows: &Rows,
        out: TileOut,
    ) {
        let nr = self.nr();
        let channels = out.rows.len();
        assert!(
            channels.is_multiple_of(MR),
            "the output rows are whole panels"
        );
        let panels = channels / MR;
        let d = match *out.runs {
            [(0, d, n)] if n == nr => d,
            _ => panic!("each tile is one run of all its columns"),
        };
        let kc = rows.offs.len();
        if panels == 0 {
            return;
        }
        let need = (panels - 1) * len + kc.saturating_sub(1) * stride + MR;
        assert!(a.len() >= need, "the weights hold every panel");
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            kind @ (Kind::Avx512 | Kind::Avx2) => {
                out.check(channels, nr);
                assert!(stride >= MR, "a weight row holds MR channels");
                assert!(
                    rows.max.is_none_or(|m| base + m + nr <= x.len()),
                    "every row of the panel lies inside the input"
                );
                let (dst, ep) = out.split();
                let (x, offs) = (&x[base..], rows.offs);
                let tile = |p: usize, rows: &mut [&mut [f32]], ep: &x86::Epilogue| {
                    let a = &a[p * len..];
                    // SAFETY: the instruction set was detected; panel `p`'s weights
                    // `a[..(kc - 1) * stride + MR]` lie inside `a` (asserted above), the rows
                    // of the input inside `x` (as in `tile_rows`), and this panel's rows,
                    // biases and residual rows hold the run `(0, d, nr)` (`TileOut::check`,
                    // and `panels_in_turn` hands each panel its own).
                    unsafe {
                        if let Kind::Avx512 = kind {
                            x86::rows_out_avx512(a, stride, x, offs, rows, ep)
                        } else {
                            x86::rows_out_avx2(a, stride, x, offs, rows, d, ep)
                        }
                    }
                };
                // SAFETY: `nr >= 1`, and every row of `dst`, the biases and the residual hold
                // the run `(0, d, nr)` of every channel (`TileOut::check`).
                unsafe { x86::panels_in_turn(dst, d, nr, &ep, tile) }
            }
            _ => {
                let TileOut {
                    rows: out_rows,
                    runs,
                    bias,
                    residual,
                    in_place,
                    act,
                } = out;
                for (p, panel_rows) in out_rows.chunks_exact_mut(MR).enumerate() {
                    let a = &a[p * len..][..kc.saturating_sub(1) * stride + MR];
                    let dst = TileOut {
                        rows: panel_rows,
                        runs,
                        bias: &bias[p * MR..][..MR],
                        residual: residual.map(|(r, ld)| (&r[(p * MR * ld).min(r.len())..], ld)),
                        in_place,
                        act,
                    };
                    self.tile_rows_out(a, stride, x, base, rows, dst);
                }
            }
        }
    }

    /// The transposed tile, for maps too narrow to fill [`Isa::tile_rows`]'s panels: `CR`
    /// output channels by the pixels of `span`, broadcasting the input and loading the weights
    /// as vectors. The weight panel is k-major, `CR` channels per `k` (`a[k * CR + c]`), and
    /// pixel `j` of row `k` of the input is `x[base + rows.offs[k] + span.offset(j)]`:
    /// `acc[j * CR + c] = sum over k of a[k * CR + c] * x[base + rows.offs[k] + span.offset(j)]`.
    ///
    /// # Panics
    /// If `a` has fewer than `kc * CR` values, `acc` fewer than `span.pixels() * CR`, or a
    /// pixel would lie past the end of `x`. (Every [`Span`], from [`Span::run`] or
    /// [`Span::rows`], is one the kernel has.)
    pub fn tile_pixels(
        self,
        span: Span,
        a: &[f32],
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
    ) {
        self.pixels_with(span, a, x, base, rows, acc, None)
    }

    /// [`Isa::tile_pixels`] with each sum taking its channel's bias and the activation on the
    /// way out: `acc[j * CR + c] = act(sum + bias[c])`, the same bits as `tile_pixels`
    /// followed by that pass over `acc`. With AVX-512 the tile adds them in its registers
    /// before it stores them; elsewhere the pass follows the tile.
    ///
    /// # Panics
    /// As [`Isa::tile_pixels`].
    #[allow(clippy::too_many_arguments)]
    pub fn tile_pixels_act(
        self,
        span: Span,
        a: &[f32],
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
        bias: &[f32; CR],
        act: Act,
    ) {
        self.pixels_with(span, a, x, base, rows, acc, Some((bias, act)))
    }

    /// [`Isa::tile_pixels`], then with `ep` each sum's bias and activation
    /// ([`Isa::tile_pixels_act`]).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pixels_with(
        self,
        span: Span,
        a: &[f32],
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
        ep: Option<(&[f32; CR], Act)>,
    ) {
        let Span {
            len,
            split,
            gap,
            step,
        } = span;
        let offs = rows.offs;
        let (a, acc) = (&a[..offs.len() * CR], &mut acc[..len * CR]);
        assert!(
            rows.max
                .is_none_or(|m| base + m + span.offset(len - 1) < x.len()),
            "every pixel of the tile lies inside the input"
        );
        let x = &x[base..];
        #[cfg(target_arch = "x86_64")]
        macro_rules! by_span {
            ([$($c:tt)*] $($f:ident)::+ $(, $extra:expr)*) => {
                match (len, split) {
                    (1, 1) => $($f)::+::<1, 1 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (2, 2) => $($f)::+::<2, 2 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (3, 3) => $($f)::+::<3, 3 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (4, 4) => $($f)::+::<4, 4 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (5, 5) => $($f)::+::<5, 5 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (6, 6) => $($f)::+::<6, 6 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (7, 7) => $($f)::+::<7, 7 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (8, 8) => $($f)::+::<8, 8 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (9, 9) => $($f)::+::<9, 9 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (10, 10) => $($f)::+::<10, 10 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (11, 11) => $($f)::+::<11, 11 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (12, 12) => $($f)::+::<12, 12 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (13, 13) => $($f)::+::<13, 13 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (14, 14) => $($f)::+::<14, 14 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (2, 1) => $($f)::+::<2, 1 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (4, 2) => $($f)::+::<4, 2 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (6, 3) => $($f)::+::<6, 3 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (8, 4) => $($f)::+::<8, 4 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (10, 5) => $($f)::+::<10, 5 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    (12, 6) => $($f)::+::<12, 6 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                    _ => $($f)::+::<14, 7 $($c)*>(a, x, offs, gap, acc $(, $extra)*),
                }
            };
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (as in `tile`); `Span::run` and `Span::rows` only
            // make the spans matched here (`Span::blocked` keeps them), each kernel's `STEP` is
            // the span's step, and every pixel `x[o + span.offset(j)]` for `o` in `offs` is
            // inside `x`, by the assertion above (offsets grow with `j`).
            Kind::Avx512 => unsafe {
                match step {
                    1 => by_span!([, 1] x86::pixels_avx512, ep),
                    BLOCK => by_span!([, BLOCK] x86::pixels_avx512, ep),
                    _ => unreachable!("a span's pixels are 1 or BLOCK values apart"),
                }
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` and `fma` were detected; spans and pixels as above.
            Kind::Avx2 => unsafe {
                by_span!([] x86::pixels_avx2, x86::avx2_pass(rows.dense), step)
            },
            _ => {
                acc.fill(0.0);
                for (ak, &o) in a.chunks_exact(CR).zip(offs) {
                    for (j, accj) in acc.chunks_exact_mut(CR).enumerate() {
                        let xv = x[o + span.offset(j)];
                        for (cv, &av) in accj.iter_mut().zip(ak) {
                            *cv += av * xv;
                        }
                    }
                }
            }
        }
        // The pass that the AVX-512 tile makes in its registers (the tile above, where it runs).
        let in_registers = cfg!(target_arch = "x86_64") && self.0 == Kind::Avx512;
        if let Some((bias, act)) = ep.filter(|_| !in_registers) {
            with_act!(act, |act| for pixel in acc.chunks_exact_mut(CR) {
                for (v, &b) in pixel.iter_mut().zip(bias) {
                    *v = act(*v + b);
                }
            });
        }
    }

    /// The transposed tile's accumulators (`acc[j * CR + c]`, pixel `j < p`, channel `c`, as
    /// [`Isa::tile_pixels`] leaves them) turned channel-major: `out[c * TR + j]`, for writing
    /// output rows (the slots of pixels `p..TR` hold no meaningful value).
    ///
    /// # Panics
    /// If `p > PR` or `acc` has fewer than `p * CR` values.
    pub fn channels_major(self, acc: &[f32], p: usize, out: &mut [f32; CR * TR]) {
        assert!(p <= PR, "a transposed tile has at most PR pixels");
        let acc = &acc[..p * CR];
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (as in `tile`); `acc` holds `p <= 16` rows of
            // `CR` values (its length, above).
            Kind::Avx512 => unsafe { x86::channels_major_avx512(acc, p, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` was detected (as in `tile`); `acc` holds `p <= 16` rows of `CR`
            // values (its length, above).
            Kind::Avx2 => unsafe { x86::channels_major_avx2(acc, p, out) },
            _ => {
                for (j, row) in acc.chunks_exact(CR).enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        out[c * TR + j] = v;
                    }
                }
            }
        }
    }

    /// [`Isa::tile_pixels`] for a tile whose reduction is whole (one block), writing its output
    /// as [`Isa::tile_rows_out`] does: the tile's columns are its pixels, `out.rows` and
    /// `out.bias` hold `CR` channels, and each run `(s, d, n)` sends pixels `s..s + n` of every
    /// channel to `out.rows[c][d..d + n]`. With AVX-512 the tile is turned channel-major in
    /// registers and each run of each channel is one masked store. With AVX2, a tile that is
    /// one run from its first pixel (every tile of a conv's) is turned around 8 pixels by 8
    /// channels in registers and written from there, its last `n % 8` pixels a channel by 4-,
    /// 2- and 1-lane stores; other runs go through a buffer. Measured on the AMD EPYC (Zen
    /// 4), `cargo bench --bench fma_peak -- pointwise` (one thread, each figure twice),
    /// against the tile turned into a buffer and written from there: the output pass alone of
    /// a 1x1 conv 256 -> 1024 on a 14x14 map 1,156–1,175 "GFLOP/s" of its tiles against 941,
    /// 1024 -> 256 4,670–4,711 against 4,099, 64 -> 256 279–296 against 255; the tiles with
    /// their pass 89.1–90.0 GFLOP/s against 85.9, 95.1–95.3 against 91.9, and on a 7x7 map
    /// (512 -> 512, tiles of 7 pixels) 73.9–74.7 against 71.4. Unlike
    /// [`Isa::tile_rows_out`], it does not ask for its output's lines itself: its caller,
    /// which knows the tiles that come next, asks for them a few tiles ahead. The sums pass
    /// through `acc` (the caller's, at least `span.pixels() * CR` values, whatever they hold):
    /// a fresh array each tile was a `memset` call each tile.
    ///
    /// # Panics
    /// As [`Isa::tile_pixels`]; and if `out.rows` or `out.bias` do not hold `CR` entries, a run
    /// leaves the span's pixels or an output row, or the residual is too short for it.
    #[allow(clippy::too_many_arguments)]
    pub fn tile_pixels_out(
        self,
        span: Span,
        a: &[f32],
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
        out: TileOut,
    ) {
        self.tile_pixels(span, a, x, base, rows, acc);
        self.write_pixels(acc, span.pixels(), out);
    }

    /// Whether [`Isa::tile_pixels_group`] runs faster than its tiles one by one (AVX2, whose
    /// tile goes through memory in passes: a group's pixels share each pass's weights).
    pub fn groups_pixels(self) -> bool {
        self.0 == Kind::Avx2
    }

    /// [`Isa::tile_pixels`] for several tiles `(position, span)` against the same weights,
    /// tile `i`'s sums in `acc` from the pixels of the tiles before it on (`acc[(p_i + j) *
    /// CR + c]`, `p_i` their pixels). With AVX2, each pass of reduction rows runs over every
    /// pixel of the group, so that its weights, read once into L1, serve all of them (one by
    /// one, each tile read its weights from L2 again); elsewhere the tiles one by one. Each
    /// sum is the same either way: the rows are added in reduction order.
    ///
    /// # Panics
    /// As [`Isa::tile_pixels`], for every tile; and if the tiles hold more than
    /// [`PIXEL_GROUP`] pixels, or `acc` fewer values than `CR` per pixel.
    pub fn tile_pixels_group(
        self,
        tiles: &[(usize, Span)],
        a: &[f32],
        x: &[f32],
        base: usize,
        rows: &Rows,
        acc: &mut [f32],
    ) {
        let offs = rows.offs;
        let mut d = [0usize; PIXEL_GROUP];
        let mut n = 0;
        for &(q, span) in tiles {
            let p = span.pixels();
            assert!(
                n + p <= PIXEL_GROUP,
                "a group holds at most PIXEL_GROUP pixels"
            );
            assert!(
                rows.max
                    .is_none_or(|m| base + q + m + span.offset(p - 1) < x.len()),
                "every pixel of the tile lies inside the input"
            );
            for (j, dj) in d[n..n + p].iter_mut().enumerate() {
                *dj = q + span.offset(j);
            }
            n += p;
        }
        let (a, acc) = (&a[..offs.len() * CR], &mut acc[..n * CR]);
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` and `fma` were detected; every pixel `x[base + o + d[j]]` for `o`
            // in `offs` is inside `x`, by the assertions above (each tile's offsets grow with
            // its pixels); `a` and `acc` hold `CR` values per row and per pixel.
            Kind::Avx2 => unsafe {
                x86::pixels_group_avx2(
                    a,
                    &x[base..],
                    offs,
                    &d[..n],
                    acc,
                    x86::avx2_pass(rows.dense),
                )
            },
            _ => {
                let mut at = 0;
                for &(q, span) in tiles {
                    let p = span.pixels();
                    self.tile_pixels(span, a, x, base + q, rows, &mut acc[at * CR..][..p * CR]);
                    at += p;
                }
            }
        }
    }

    /// Writes a transposed tile's sums (`acc[j * CR + c]` for its `p` pixels, as
    /// [`Isa::tile_pixels`] leaves them) through the output pass into `out`, as
    /// [`Isa::tile_pixels_out`] does.
    ///
    /// # Panics
    /// If `acc` holds fewer than `p * CR` values, `p > PR`, or as [`Isa::tile_pixels_out`].
    pub fn write_pixels(self, acc: &[f32], p: usize, out: TileOut) {
        out.check(CR, p);
        assert!(
            p <= PR && acc.len() >= p * CR,
            "a tile of at most PR pixels"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Kind::Avx512 => {
                let (dst, ep) = out.split();
                // SAFETY: `avx512f` was detected; `acc` holds `p <= PR` pixels of `CR`
                // channels, and every run's pixels, output values and residual values are
                // inside the tile, `dst`'s rows and the residual (`TileOut::check`, above).
                unsafe { x86::pixels_out_avx512(acc, p, dst, &ep) }
            }
            #[cfg(target_arch = "x86_64")]
            Kind::Avx2 if matches!(out.runs, [(0, _, _)]) => {
                let (d, n) = (out.runs[0].1, out.runs[0].2);
                let (dst, ep) = out.split();
                // SAFETY: `avx2` and `fma` were detected; `acc` holds `p <= PR` pixels of `CR`
                // channels, and the one run's pixels `0..n` (`n <= p`), output values and
                // residual values are inside the tile, `dst`'s rows and the residual
                // (`TileOut::check`, above).
                unsafe { x86::pixels_out_avx2(acc, p, d, n, dst, &ep) }
            }
            _ => {
                let mut t = [0.0f32; CR * TR];
                self.channels_major(acc, p, &mut t);
                self.vectorized(
                    #[inline(always)]
                    || out.write_from(&t, TR),
                );
            }
        }
    }

    /// `acc[i] = v[i]` where `v[i] > acc[i]` or `v[i]` is NaN, for every `i` (PyTorch's max
    /// step, folded into a row of max-pool accumulators), over `min(acc.len(), v.len())`
    /// values. The AVX-512 path takes the step a whole vector at a time and stores it whole
    /// (the plain loop, compiled for AVX-512, stores only the changed lanes with masked stores
    /// and ran 3x slower). Elsewhere it is the plain loop with an unconditional store,
    /// compiled for the instruction set ([`Isa::vectorized`]): with AVX2 a compare per 8
    /// values and a masked store of the changed lanes (ResNet-18's max pool 0.31 -> 0.16 ms on
    /// 2 threads; it had run as baseline code). A hand-written compare and blend stored whole
    /// ran level with it on the AMD EPYC (Zen 3).
    pub fn fold_max(self, acc: &mut [f32], v: &[f32]) {
        let n = acc.len().min(v.len());
        let (acc, v) = (&mut acc[..n], &v[..n]);
        // Written unconditionally, so that the compiler makes it a compare and a blend.
        #[inline(always)]
        fn step(a: &mut f32, x: f32) {
            *a = if (x > *a) | x.is_nan() { x } else { *a };
        }
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (as in `tile`); `acc` and `v` both hold `n`
            // values (sliced above).
            Kind::Avx512 => unsafe { x86::fold_max_avx512(acc, v) },
            _ => self.vectorized(
                #[inline(always)]
                || acc.iter_mut().zip(v).for_each(|(a, &x)| step(a, x)),
            ),
        }
    }

    /// Whether [`Isa::fold_max_windows`] folds in vectors here for column stride `stride`
    /// (AVX-512 and AVX2, strides 1 and 2); elsewhere it is the plain loop, and a max pool
    /// does better to fold whole runs of phase-split rows with [`Isa::fold_max`]. With AVX2,
    /// folding whole windows in registers (and so the stem's conv fused with its max pool)
    /// took ResNet's stem with its max pool from 3.14–3.36 ms to 2.29–2.70 on the AMD EPYC
    /// (Zen 3, 2 threads, processes alternated five times): folding runs of rows stored and
    /// read back each accumulator once per tap, each load a lane off the store before it.
    pub fn folds_max_taps(self, stride: usize, kw: usize) -> bool {
        matches!(self.0, Kind::Avx512 | Kind::Avx2)
            && (stride == 1 || stride == 2)
            && kw <= MAX_POOL_KW
    }

    /// Rows of max-pool outputs, each the whole window folded from `-inf`: output row `r`
    /// (`out[r * wo..][..wo]`) folds the input rows `rows[r]` of a plane `w` wide whose row
    /// `r0` is the first in `plane` (row `ih` is `plane[(ih - r0) * w..][..w]`): for every
    /// output column `o`, input row `ih` and kernel column `j < kw` in turn, the column
    /// `c = o * stride + j - pad` of row `ih` (skipped when `c` is outside it) takes PyTorch's
    /// max step, `m = x` where `x > m` or `x` is NaN. Each output sees its window in the
    /// reference's order (rows outside, columns inside), so the bits are those of the step
    /// taken value by value. With AVX-512 and stride 1 or 2 ([`Isa::folds_max_taps`]) 16
    /// outputs are folded at once in a register, each tap a vector (the even lanes of two for
    /// stride 2), and the columns outside the row are `-inf` under a lane mask, which the step
    /// never takes; the masks are worked out once for all the rows of a call. With AVX2 the
    /// same, 8 outputs at a time.
    ///
    /// # Panics
    /// If `out` does not hold `rows.len() * wo` values, or `plane` lacks a row some window
    /// reads (or it lies before `r0`).
    #[allow(clippy::too_many_arguments)]
    pub fn fold_max_windows(
        self,
        out: &mut [f32],
        wo: usize,
        plane: &[f32],
        w: usize,
        r0: usize,
        rows: &[std::ops::Range<usize>],
        kw: usize,
        stride: usize,
        pad: usize,
    ) {
        assert_eq!(out.len(), rows.len() * wo, "one output row per window");
        let read = || rows.iter().filter(|r| !r.is_empty());
        assert!(
            read().all(|r| r.start >= r0),
            "no window reads a row before `r0`"
        );
        let end = read().map(|r| r.end).max().unwrap_or(r0);
        let plane = &plane[..(end - r0) * w];
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (as in `tile`); `out` holds `rows.len() * wo`
            // values and `plane` every row a window reads (both checked above).
            Kind::Avx512 if self.folds_max_taps(stride, kw) => unsafe {
                x86::fold_max_windows_avx512(out, wo, plane, w, r0, rows, kw, stride == 2, pad)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` and `fma` were detected; `out` and `plane` as above.
            Kind::Avx2 if self.folds_max_taps(stride, kw) => unsafe {
                x86::fold_max_windows_avx2(out, wo, plane, w, r0, rows, kw, stride == 2, pad)
            },
            _ => {
                for (orow, window) in out.chunks_exact_mut(wo.max(1)).zip(rows) {
                    for (o, m) in orow.iter_mut().enumerate() {
                        *m = f32::NEG_INFINITY;
                        for ih in window.clone() {
                            let row = &plane[(ih - r0) * w..][..w];
                            for j in 0..kw {
                                let c = (o * stride + j).checked_sub(pad);
                                if let Some(&x) = c.and_then(|c| row.get(c))
                                    && ((x > *m) | x.is_nan())
                                {
                                    *m = x;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `even[t] = src[2 * t]` and `odd[t] = src[2 * t + 1]` for every `t` below their
    /// lengths: a row's even and odd columns (a stride-2 conv's two phases) in one pass. With
    /// AVX-512, 32 values at a time from two loads, a block at the end of a row under lane
    /// masks; otherwise [`Isa::even_values`] twice.
    ///
    /// # Panics
    /// If `src` has fewer than `2 * even.len() - 1` or `2 * odd.len()` values.
    pub fn split_pairs(self, even: &mut [f32], odd: &mut [f32], src: &[f32]) {
        assert!(
            even.is_empty() || src.len() > 2 * (even.len() - 1),
            "the last even column lies inside src"
        );
        assert!(
            src.len() >= 2 * odd.len(),
            "the last odd column lies inside src"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected; the kernel reads `src` and writes `even` and
            // `odd` under masks of their lengths.
            Kind::Avx512 => unsafe { x86::split_pairs_avx512(even, odd, src) },
            _ => {
                self.even_values(even, src);
                if !odd.is_empty() {
                    self.even_values(odd, &src[1..]);
                }
            }
        }
    }

    /// `dst[t] = src[2 * t]` for every `t < dst.len()`: a row's even columns (a stride-2
    /// conv's phase). With AVX-512, 16 at a time from two loads, the last few under lane
    /// masks, so that short rows do not fall to a value-by-value loop.
    ///
    /// # Panics
    /// If `src` has fewer than `2 * dst.len() - 1` values.
    pub fn even_values(self, dst: &mut [f32], src: &[f32]) {
        let n = dst.len();
        if n == 0 {
            return;
        }
        assert!(
            src.len() > 2 * (n - 1),
            "the last even column lies inside src"
        );
        let src = &src[..src.len().min(2 * n)];
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected; `src` holds `2 * n - 1` values at least (asserted
            // above), which the kernel reads under masks.
            Kind::Avx512 => unsafe { x86::even_values_avx512(dst, src) },
            _ => self.vectorized(
                #[inline(always)]
                || {
                    for (d, &v) in dst.iter_mut().zip(src.iter().step_by(2)) {
                        *d = v;
                    }
                },
            ),
        }
    }

    /// The rows of a depthwise conv's output plane `dst` (rows of `wo` values), each in
    /// blocks of [`DW_LANES`] values: `dst[r * wo + o] = act(sum + bias + res[r * wo + o])`
    /// where `sum` adds `w[t] * src[r * step + offs[t] + o]` for each tap `t` in turn (from
    /// zero; with AVX-512 and AVX2 as fused multiply-adds), and `act` is [`Act::apply`]. A
    /// row's last block reads whole `DW_LANES` values from each
    /// tap's offset, so `src` must hold `wo` rounded up to `DW_LANES` values from each (a
    /// padded plane with that much slack).
    ///
    /// # Panics
    /// If `w` and `offs` differ in length, `wo` is zero or does not divide `dst.len()`, `res`
    /// and `dst` differ in length, or some tap reads outside `src`.
    #[allow(clippy::too_many_arguments)]
    pub fn depthwise_rows(
        self,
        src: &[f32],
        step: usize,
        offs: &[usize],
        w: &[f32],
        bias: f32,
        res: Option<&[f32]>,
        act: Act,
        dst: &mut [f32],
        wo: usize,
    ) {
        assert_eq!(offs.len(), w.len(), "one weight per tap");
        assert!(wo > 0 && dst.len().is_multiple_of(wo), "whole rows");
        assert!(
            res.is_none_or(|r| r.len() == dst.len()),
            "one residual per value"
        );
        let rows = dst.len() / wo;
        let last = offs.iter().copied().max().unwrap_or(0);
        assert!(
            rows == 0 || (rows - 1) * step + last + wo.next_multiple_of(DW_LANES) <= src.len(),
            "every tap's blocks lie inside src"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx512f` was detected (an `Isa(Kind::Avx512)` is only made so); every
            // tap's blocks of every row lie inside `src` (asserted above).
            Kind::Avx512 => unsafe {
                x86::depthwise_avx512(src, step, offs, w, bias, res, act, dst, wo)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `avx2` and `fma` were detected; the bounds as above.
            Kind::Avx2 => unsafe {
                x86::depthwise_avx2(src, step, offs, w, bias, res, act, dst, wo)
            },
            _ => {
                for (r, row) in dst.chunks_exact_mut(wo).enumerate() {
                    for (b, dst) in row.chunks_mut(DW_LANES).enumerate() {
                        let o0 = b * DW_LANES;
                        let mut acc = [0.0f32; DW_LANES];
                        for (&off, &w) in offs.iter().zip(w) {
                            let x = &src[r * step + off + o0..][..DW_LANES];
                            for (a, &v) in acc.iter_mut().zip(x) {
                                *a += w * v;
                            }
                        }
                        let res = res.map(|res| &res[r * wo + o0..][..dst.len()]);
                        depthwise_out(&acc, bias, res, act, dst);
                    }
                }
            }
        }
    }

    /// [`Isa::prefetch`] for lines about to be written.
    #[inline]
    pub fn prefetch_write(self, data: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            data.chunks(16)
                .for_each(|line| prefetch_line_write(line.as_ptr() as *const i8));
        }
        let _ = (self, data);
    }

    /// Asks the CPU to bring `data` into its caches ahead of use (a hint: it never faults and
    /// changes no value), one request per 64-byte line.
    #[inline]
    pub fn prefetch(self, data: &[f32]) {
        #[cfg(target_arch = "x86_64")]
        for line in data.chunks(16) {
            // SAFETY: SSE is part of every x86-64 CPU, and a prefetch of an address inside a
            // live slice reads nothing and cannot fault.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr() as *const i8
                )
            };
        }
        let _ = (self, data);
    }

    /// Calls `f` from a function compiled for this instruction set, so that the plain loops
    /// `f` inlines are vectorized with its registers: the crate is built for the baseline
    /// x86-64 (SSE2), and this is how code outside this module gets the wider vectors without
    /// `unsafe`. Mark the closure itself `#[inline(always)]` (`isa.vectorized(#[inline(always)]
    /// || work())`), and the functions it calls too: a closure left to the optimizer's choice
    /// is not inlined once its body is large, and then runs compiled for the baseline.
    #[inline(always)]
    pub fn vectorized<R>(self, f: impl FnOnce() -> R) -> R {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Isa(Kind::Avx512)` is only made after `avx512f` was detected.
            Kind::Avx512 => unsafe { x86::with_avx512(f) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: an `Isa(Kind::Avx2)` is only made after `avx2` and `fma` were detected.
            Kind::Avx2 => unsafe { x86::with_avx2(f) },
            _ => f(),
        }
    }

    /// Runs `iters` rounds of independent fused multiply-adds on registers and returns the
    /// floating-point operations done (a multiply-add counts 2) and a value to keep alive:
    /// timing it measures this core's FMA peak for this instruction set.
    pub fn fma_peak(self, iters: u64) -> (u64, f32) {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `tile`.
            Kind::Avx512 => (iters * 12 * 16 * 2, unsafe { x86::peak_avx512(iters) }),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `tile`.
            Kind::Avx2 => (iters * 12 * 8 * 2, unsafe { x86::peak_avx2(iters) }),
            _ => {
                let mut c = [1.0f32; 64];
                for _ in 0..iters {
                    for v in c.iter_mut() {
                        *v = *v * 0.999_999 + 1e-7;
                    }
                }
                (iters * 64 * 2, c.iter().sum())
            }
        }
    }
}

fn tile_portable(a: &[f32], b: &[f32], acc: &mut [f32]) {
    const NR: usize = 8;
    let mut c = [[0.0f32; NR]; MR];
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (ci, &av) in c.iter_mut().zip(ak) {
            for (cv, &bv) in ci.iter_mut().zip(bk) {
                *cv += av * bv;
            }
        }
    }
    for (dst, src) in acc.chunks_exact_mut(NR).zip(&c) {
        dst.copy_from_slice(src);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Act, CR, DW_ROWS, MAX_POOL_KW, MR, TR};
    use std::arch::x86_64::*;

    /// Lane indices of one stage of a 16 x 16 transpose (for `_mm512_permutex2var_ps`, where
    /// index `16 + i` is lane `i` of the second operand): rows `r` and `r + b` (`r & b == 0`)
    /// swap their off-diagonal `b`-wide blocks. `(first, second)`: the new row `r` keeps its
    /// lanes `c` with `c & b == 0` and takes lane `c - b` of row `r + b` for the others; the new
    /// row `r + b` takes lane `c + b` of row `r` for `c & b == 0` and keeps the others.
    const fn stage(b: usize) -> ([i32; 16], [i32; 16]) {
        let (mut first, mut second) = ([0i32; 16], [0i32; 16]);
        let mut c = 0;
        while c < 16 {
            if c & b == 0 {
                first[c] = c as i32;
                second[c] = (c + b) as i32;
            } else {
                first[c] = (16 + c - b) as i32;
                second[c] = (16 + c) as i32;
            }
            c += 1;
        }
        (first, second)
    }

    const STAGES: [([i32; 16], [i32; 16]); 4] = [stage(8), stage(4), stage(2), stage(1)];

    /// PyTorch's max step on 16 lanes, `x > m || x.is_nan() ? x : m`: `vmaxps(x, m)` is
    /// `x > m ? x : m` (the running maximum on ties and when either is NaN), and a NaN `x`
    /// then replaces it. Only `vmaxps` waits for the step before.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn max_step(m: __m512, x: __m512) -> __m512 {
        _mm512_mask_blend_ps(
            _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x),
            _mm512_max_ps(x, m),
            x,
        )
    }

    /// Runs `$body` for each group of a depthwise plane's `$rows` rows, [`DW_ROWS`] at a time
    /// and the last 1 to [`DW_ROWS`]: with `$r0` its first row and `$n` (a constant, for the
    /// kernels' const parameter) its rows.
    macro_rules! by_row_groups {
        ($rows:expr, |$r0:ident, $n:ident| $body:expr) => {{
            let rows = $rows;
            let mut $r0 = 0;
            while $r0 < rows {
                let left = rows - $r0;
                if left >= DW_ROWS {
                    const $n: usize = DW_ROWS;
                    $body;
                } else if left == 3 {
                    const $n: usize = 3;
                    $body;
                } else if left == 2 {
                    const $n: usize = 2;
                    $body;
                } else {
                    const $n: usize = 1;
                    $body;
                }
                $r0 += left.min(DW_ROWS);
            }
        }};
    }

    /// `Isa::split_pairs` with AVX-512: each block of 16 even and 16 odd values from the 32
    /// values it covers, whole where all of them lie inside, else masked to those inside
    /// `src`, `even` and `odd`.
    ///
    /// # Safety
    /// None beyond the target feature: every access is to lanes inside `src`, `even` or
    /// `odd`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn split_pairs_avx512(even: &mut [f32], odd: &mut [f32], src: &[f32]) {
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let lanes = |n: usize| -> __mmask16 {
            if n >= 16 {
                !0
            } else {
                ((1u32 << n) - 1) as __mmask16
            }
        };
        let blocks = even.len().max(odd.len()).div_ceil(16);
        for b in 0..blocks {
            let (from, at) = (32 * b, 16 * b);
            let left = src.len().saturating_sub(from);
            let (ne, no) = (even.len().saturating_sub(at), odd.len().saturating_sub(at));
            let p = src.as_ptr().wrapping_add(from);
            let (pe, po) = (
                even.as_mut_ptr().wrapping_add(at),
                odd.as_mut_ptr().wrapping_add(at),
            );
            if left >= 32 && ne >= 16 && no >= 16 {
                // SAFETY: the block's 32 values lie inside `src`, its 16 even and 16 odd
                // places inside `even` and `odd`.
                unsafe {
                    let (lo, hi) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                    _mm512_storeu_ps(pe, _mm512_permutex2var_ps(lo, evens, hi));
                    _mm512_storeu_ps(po, _mm512_permutex2var_ps(lo, odds, hi));
                }
                continue;
            }
            // SAFETY: the masks admit only lanes below `left`, the values of `src` from
            // `from` on, and below `ne` and `no`, the places of `even` and `odd` from `at` on;
            // the other lanes are neither read nor written.
            unsafe {
                let lo = _mm512_maskz_loadu_ps(lanes(left), p);
                let hi = _mm512_maskz_loadu_ps(lanes(left.saturating_sub(16)), p.wrapping_add(16));
                _mm512_mask_storeu_ps(pe, lanes(ne), _mm512_permutex2var_ps(lo, evens, hi));
                _mm512_mask_storeu_ps(po, lanes(no), _mm512_permutex2var_ps(lo, odds, hi));
            }
        }
    }

    /// `Isa::even_values` with AVX-512: each block of 16 outputs from the 32 values it
    /// covers, masked to those inside `src` and `dst`.
    ///
    /// # Safety
    /// None beyond the target feature: every access is to lanes inside `src` or `dst`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn even_values_avx512(dst: &mut [f32], src: &[f32]) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let lanes = |n: usize| -> __mmask16 {
            if n >= 16 {
                !0
            } else {
                ((1u32 << n) - 1) as __mmask16
            }
        };
        for (b, d) in dst.chunks_mut(16).enumerate() {
            let from = 32 * b;
            let left = src.len().saturating_sub(from);
            let p = src.as_ptr().wrapping_add(from);
            // SAFETY: the masks admit only lanes below `left`, the values of `src` from
            // `from` on; the other lanes are not read.
            let (lo, hi) = unsafe {
                (
                    _mm512_maskz_loadu_ps(lanes(left), p),
                    _mm512_maskz_loadu_ps(lanes(left.saturating_sub(16)), p.wrapping_add(16)),
                )
            };
            let v = _mm512_permutex2var_ps(lo, even, hi);
            // SAFETY: the mask admits only the lanes of `d`.
            unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), lanes(d.len()), v) };
        }
    }

    /// `Isa::depthwise_rows` with AVX-512: each block's 16 sums in one register, one fused
    /// multiply-add per tap, a row's last block under a lane mask. The same block of
    /// [`DW_ROWS`] rows at a time, so that as many chains of multiply-adds (one per row, each
    /// tap's weight broadcast once for all) run side by side: one block alone waits on each
    /// multiply-add's latency in turn.
    ///
    /// # Safety
    /// `dst` holds whole rows of `wo` values, `res` (if any) as many values, and for row `r`
    /// and every `off` of `offs`, `src[r * step + off..][..wo.next_multiple_of(16)]` is
    /// inside `src`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn depthwise_avx512(
        src: &[f32],
        step: usize,
        offs: &[usize],
        w: &[f32],
        bias: f32,
        res: Option<&[f32]>,
        act: Act,
        dst: &mut [f32],
        wo: usize,
    ) {
        let ep = (bias, res, act);
        // SAFETY: each group's rows are rows of `dst`; the caller's guarantees for each.
        by_row_groups!(dst.len() / wo, |r0, R| unsafe {
            dw_rows_avx512::<R>(src, step, offs, w, ep, dst, wo, r0)
        });
    }

    /// Rows `r0..r0 + R` of `depthwise_avx512`, block by block.
    ///
    /// # Safety
    /// As `depthwise_avx512`, and rows `r0..r0 + R` are rows of `dst`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn dw_rows_avx512<const R: usize>(
        src: &[f32],
        step: usize,
        offs: &[usize],
        w: &[f32],
        (bias, res, act): (f32, Option<&[f32]>, Act),
        dst: &mut [f32],
        wo: usize,
        r0: usize,
    ) {
        let bv = _mm512_set1_ps(bias);
        for o0 in (0..wo).step_by(16) {
            let len = (wo - o0).min(16);
            let lanes: __mmask16 = if len == 16 { !0 } else { (1u16 << len) - 1 };
            let sp: [*const f32; R] =
                std::array::from_fn(|i| src.as_ptr().wrapping_add((r0 + i) * step + o0));
            let mut acc = [_mm512_setzero_ps(); R];
            for (&off, &w) in offs.iter().zip(w) {
                let wv = _mm512_set1_ps(w);
                for (a, p) in acc.iter_mut().zip(&sp) {
                    // SAFETY: the caller guarantees this row's block of 16 values at `off`
                    // is inside `src`.
                    *a = _mm512_fmadd_ps(wv, unsafe { _mm512_loadu_ps(p.add(off)) }, *a);
                }
            }
            for (i, &a) in acc.iter().enumerate() {
                let at = (r0 + i) * wo + o0;
                let mut v = _mm512_add_ps(a, bv);
                if let Some(res) = res {
                    // SAFETY: `res` holds as many values as `dst`: this block's lie under
                    // the mask.
                    v = _mm512_add_ps(v, unsafe {
                        _mm512_maskz_loadu_ps(lanes, res.as_ptr().add(at))
                    });
                }
                v = act_avx512(v, act);
                // SAFETY: row `r0 + i` of `dst` holds this block's lanes under the mask.
                unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr().add(at), lanes, v) };
            }
        }
    }

    /// `Isa::depthwise_rows` with AVX2 + FMA: each block's 16 sums in two registers, then its
    /// end from a copy of them; the same block of [`DW_ROWS`] rows at a time, as
    /// `depthwise_avx512`.
    ///
    /// # Safety
    /// As `depthwise_avx512`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn depthwise_avx2(
        src: &[f32],
        step: usize,
        offs: &[usize],
        w: &[f32],
        bias: f32,
        res: Option<&[f32]>,
        act: Act,
        dst: &mut [f32],
        wo: usize,
    ) {
        let ep = (bias, res, act);
        // SAFETY: each group's rows are rows of `dst`; the caller's guarantees for each.
        by_row_groups!(dst.len() / wo, |r0, R| unsafe {
            dw_rows_avx2::<R>(src, step, offs, w, ep, dst, wo, r0)
        });
    }

    /// Rows `r0..r0 + R` of `depthwise_avx2`, block by block.
    ///
    /// # Safety
    /// As `depthwise_avx512`, and rows `r0..r0 + R` are rows of `dst`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dw_rows_avx2<const R: usize>(
        src: &[f32],
        step: usize,
        offs: &[usize],
        w: &[f32],
        (bias, res, act): (f32, Option<&[f32]>, Act),
        dst: &mut [f32],
        wo: usize,
        r0: usize,
    ) {
        for o0 in (0..wo).step_by(16) {
            let len = (wo - o0).min(16);
            let sp: [*const f32; R] =
                std::array::from_fn(|i| src.as_ptr().wrapping_add((r0 + i) * step + o0));
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            for (&off, &w) in offs.iter().zip(w) {
                let wv = _mm256_set1_ps(w);
                for (a, p) in acc.iter_mut().zip(&sp) {
                    // SAFETY: the caller guarantees this row's block of 16 values at `off`
                    // is inside `src`.
                    let (x0, x1) =
                        unsafe { (_mm256_loadu_ps(p.add(off)), _mm256_loadu_ps(p.add(off + 8))) };
                    a[0] = _mm256_fmadd_ps(wv, x0, a[0]);
                    a[1] = _mm256_fmadd_ps(wv, x1, a[1]);
                }
            }
            for (i, a) in acc.iter().enumerate() {
                let mut sums = [0.0f32; 16];
                // SAFETY: `sums` holds 16 values: two unaligned 8-lane stores.
                unsafe {
                    _mm256_storeu_ps(sums.as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(sums.as_mut_ptr().add(8), a[1]);
                }
                let at = (r0 + i) * wo + o0;
                let res = res.map(|res| &res[at..][..len]);
                super::depthwise_out(&sums, bias, res, act, &mut dst[at..][..len]);
            }
        }
    }

    /// `Isa::fold_max`: whole vectors, then the last few values under a lane mask.
    ///
    /// # Safety
    /// `acc` and `v` have the same length.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fold_max_avx512(acc: &mut [f32], v: &[f32]) {
        let fold = max_step;
        let mut a = acc.chunks_exact_mut(16);
        let mut x = v.chunks_exact(16);
        for (a, x) in (&mut a).zip(&mut x) {
            // SAFETY: each chunk holds 16 values: one unaligned 512-bit load or store.
            unsafe {
                let (av, xv) = (_mm512_loadu_ps(a.as_ptr()), _mm512_loadu_ps(x.as_ptr()));
                _mm512_storeu_ps(a.as_mut_ptr(), fold(av, xv));
            }
        }
        let (a, x) = (a.into_remainder(), x.remainder());
        if !a.is_empty() {
            let lanes: __mmask16 = (1u16 << a.len()) - 1;
            // SAFETY: `a` and `x` hold `a.len() < 16` values; the masked loads and store touch
            // only the lanes below it, which lie inside them.
            unsafe {
                let av = _mm512_maskz_loadu_ps(lanes, a.as_ptr());
                let xv = _mm512_maskz_loadu_ps(lanes, x.as_ptr());
                _mm512_mask_storeu_ps(a.as_mut_ptr(), lanes, fold(av, xv));
            }
        }
    }

    /// `Isa::fold_max_windows` for stride 1 (`two` false) or 2: 16 outputs at a time in a
    /// register, each tap one load (stride 1) or the even lanes of two (stride 2), masked only
    /// where the columns reach past the row. The masks of each group of columns are worked
    /// out once for all the output rows.
    ///
    /// # Safety
    /// `out` holds `rows.len() * wo` values, and `plane` holds every row `ih - r0` for `ih`
    /// in `rows` (`(ih - r0 + 1) * w` values, `ih >= r0`).
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fold_max_windows_avx512(
        out: &mut [f32],
        wo: usize,
        plane: &[f32],
        w: usize,
        r0: usize,
        rows: &[std::ops::Range<usize>],
        kw: usize,
        two: bool,
        pad: usize,
    ) {
        let fold = max_step;
        let neg = _mm512_set1_ps(f32::NEG_INFINITY);
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let step = if two { 2 } else { 1 };
        // Slices never exceed `isize::MAX` bytes, so the lengths and starts below fit.
        let wi = w as isize;
        // The lanes `i` of the 16 columns from `start` on that lie inside the row.
        let lanes_from = |start: isize| {
            let lo = (-start).clamp(0, 16);
            let hi = (wi - start).clamp(lo, 16);
            ((1u32 << hi) - (1u32 << lo)) as __mmask16
        };
        // Four blocks of 16 outputs at a time, so that four chains of max steps run side by
        // side.
        const B: usize = 4;
        for group in 0..wo.div_ceil(16 * B) {
            let cols = group * 16 * B..((group + 1) * 16 * B).min(wo);
            // Each tap's lanes, the same for every row: `lanes[j][b]` for the first 16
            // columns of block `b`'s tap `j`, `lanes[j][B + b]` for the next 16 (stride 2).
            let mut lanes = [[0 as __mmask16; 2 * B]; MAX_POOL_KW];
            for (j, lanes) in lanes.iter_mut().enumerate().take(kw) {
                for b in 0..B {
                    let start = ((group * B + b) * 16 * step + j) as isize - pad as isize;
                    lanes[b] = lanes_from(start);
                    lanes[B + b] = lanes_from(start + 16);
                }
            }
            // Blocks whose every tap reads whole vectors inside the row, without masks.
            let mut inside = [false; B];
            for (b, inside) in inside.iter_mut().enumerate() {
                let first = ((group * B + b) * 16 * step) as isize - pad as isize;
                *inside = first >= 0 && first + kw as isize - 1 + 16 * step as isize <= wi;
            }
            for (r, window) in rows.iter().enumerate() {
                let mut m = [neg; B];
                for ih in window.clone() {
                    let rp = plane[(ih - r0) * w..].as_ptr();
                    for (j, lanes) in lanes.iter().enumerate().take(kw) {
                        for b in 0..B {
                            let start = ((group * B + b) * 16 * step + j) as isize - pad as isize;
                            // SAFETY: only the lanes in `lanes` are read, and those are
                            // columns inside `0..w` of row `ih`, which `plane` holds; the
                            // address is only computed for the others (`wrapping_offset`),
                            // never read from.
                            let x = unsafe {
                                if inside[b] {
                                    let first = _mm512_loadu_ps(rp.wrapping_offset(start));
                                    if two {
                                        let next = _mm512_loadu_ps(rp.wrapping_offset(start + 16));
                                        _mm512_permutex2var_ps(first, even, next)
                                    } else {
                                        first
                                    }
                                } else {
                                    let first = _mm512_mask_loadu_ps(
                                        neg,
                                        lanes[b],
                                        rp.wrapping_offset(start),
                                    );
                                    if two {
                                        let next = _mm512_mask_loadu_ps(
                                            neg,
                                            lanes[B + b],
                                            rp.wrapping_offset(start + 16),
                                        );
                                        _mm512_permutex2var_ps(first, even, next)
                                    } else {
                                        first
                                    }
                                }
                            };
                            m[b] = fold(m[b], x);
                        }
                    }
                }
                let out = &mut out[r * wo..][cols.clone()];
                for (out, m) in out.chunks_mut(16).zip(m) {
                    let lanes = ((1u32 << out.len()) - 1) as __mmask16;
                    // SAFETY: `out` holds the lanes in `lanes`, and only those are written.
                    unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr(), lanes, m) };
                }
            }
        }
    }

    /// PyTorch's max step on 8 lanes: `x` where `x > m` or `x` is NaN, else `m` (`max_ps`
    /// gives `m` where either is NaN or they are equal, as the step does).
    #[target_feature(enable = "avx2,fma")]
    fn max_step_avx2(m: __m256, x: __m256) -> __m256 {
        _mm256_blendv_ps(_mm256_max_ps(x, m), x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
    }

    /// `Isa::fold_max_windows` with AVX2, as `fold_max_windows_avx512` with 8 lanes: for
    /// stride 2 the even lanes of two loads (a shuffle and a permute), and the columns outside
    /// the row `-inf` by a blend after a masked load (which reads only the lanes inside);
    /// a block that ends past the output row is stored through a buffer. Each input row is
    /// first folded across the window's columns, then the windows fold the rows, a row that
    /// ends one window and starts the next folded once for both (a 3x3, stride-2 pool's
    /// windows overlap so by a row); with stride 2, a pair of loads gives two taps, its even
    /// lanes and its odd ones. The same bits as tap by tap in row-major order: the step keeps
    /// the first of equal values and the last NaN, and so does a fold of folds taken in the
    /// same order. Measured on the AMD EPYC (Zen 4), one thread, the
    /// stem's max pool alone (64 planes of 112x112), builds' processes in turn (ten each):
    /// 0.332 ms fastest and 0.394 median, against 0.423 and 0.493 window by window, tap by
    /// tap; the stem with its pool fused, 2.77 against 2.82 ms (two threads 1.86 against 1.90).
    ///
    /// # Safety
    /// As `fold_max_windows_avx512`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fold_max_windows_avx2(
        out: &mut [f32],
        wo: usize,
        plane: &[f32],
        w: usize,
        r0: usize,
        rows: &[std::ops::Range<usize>],
        kw: usize,
        two: bool,
        pad: usize,
    ) {
        const L: usize = 8;
        let neg = _mm256_set1_ps(f32::NEG_INFINITY);
        let step = if two { 2 } else { 1 };
        // Slices never exceed `isize::MAX` bytes, so the lengths and starts below fit.
        let wi = w as isize;
        // The lanes `i` of the 8 columns from `start` on that lie inside the row, as a mask
        // (all bits of lane `i` set) and whether there are any.
        let lanes_from = |start: isize| {
            let lo = (-start).clamp(0, L as isize);
            let hi = (wi - start).clamp(lo, L as isize);
            let lane = |i: i32| {
                if (lo..hi).contains(&(i as isize)) {
                    -1
                } else {
                    0
                }
            };
            _mm256_setr_epi32(
                lane(0),
                lane(1),
                lane(2),
                lane(3),
                lane(4),
                lane(5),
                lane(6),
                lane(7),
            )
        };
        // Four blocks of 8 outputs at a time, so that four chains of max steps run side by
        // side.
        const B: usize = 4;
        for group in 0..wo.div_ceil(L * B) {
            let cols = group * L * B..((group + 1) * L * B).min(wo);
            // Each tap's lanes, the same for every row: `lanes[j][b]` for the first 8
            // columns of block `b`'s tap `j`, `lanes[j][B + b]` for the next 8 (stride 2).
            let mut lanes = [[_mm256_setzero_si256(); 2 * B]; MAX_POOL_KW];
            for (j, lanes) in lanes.iter_mut().enumerate().take(kw) {
                for b in 0..B {
                    let start = ((group * B + b) * L * step + j) as isize - pad as isize;
                    lanes[b] = lanes_from(start);
                    lanes[B + b] = lanes_from(start + L as isize);
                }
            }
            // Blocks whose every tap reads whole vectors inside the row, without masks.
            let mut inside = [false; B];
            for (b, inside) in inside.iter_mut().enumerate() {
                let first = ((group * B + b) * L * step) as isize - pad as isize;
                *inside = first >= 0 && first + kw as isize - 1 + (L * step) as isize <= wi;
            }
            // The even lanes of `first` then of `next`, in order (`0x88`), or the odd ones
            // (`0xdd`).
            let pick = |first: __m256, next: __m256, odd: bool| {
                let mixed = if odd {
                    _mm256_shuffle_ps::<0xdd>(first, next)
                } else {
                    _mm256_shuffle_ps::<0x88>(first, next)
                };
                _mm256_castpd_ps(_mm256_permute4x64_pd::<0xd8>(_mm256_castps_pd(mixed)))
            };
            // Input row `ih` folded across each block's window columns, tap by tap. With
            // stride 2, tap `j + 1`'s columns are the odd lanes of the two loads whose even
            // lanes are tap `j`'s: one pair of loads for two taps.
            let row_max = |ih: usize| {
                let rp = plane[(ih - r0) * w..].as_ptr();
                let mut h = [neg; B];
                for (b, h) in h.iter_mut().enumerate() {
                    let mut j = 0;
                    while j < kw {
                        let start = ((group * B + b) * L * step + j) as isize - pad as isize;
                        // SAFETY: only the lanes in `lanes[j]` are read, and those are columns
                        // inside `0..w` of row `ih`, which `plane` holds; the address is only
                        // computed for the others (`wrapping_offset`), never read from (a
                        // masked load does not touch them).
                        let load = |at: isize, mask: __m256i| unsafe {
                            if inside[b] {
                                _mm256_loadu_ps(rp.wrapping_offset(at))
                            } else {
                                _mm256_blendv_ps(
                                    neg,
                                    _mm256_maskload_ps(rp.wrapping_offset(at), mask),
                                    _mm256_castsi256_ps(mask),
                                )
                            }
                        };
                        let first = load(start, lanes[j][b]);
                        if two {
                            let next = load(start + L as isize, lanes[j][B + b]);
                            *h = max_step_avx2(*h, pick(first, next, false));
                            if j + 1 < kw {
                                *h = max_step_avx2(*h, pick(first, next, true));
                            }
                            j += 2;
                        } else {
                            *h = max_step_avx2(*h, first);
                            j += 1;
                        }
                    }
                }
                h
            };
            // The last input row folded, which the next window starts with where windows
            // overlap by a row (a 3x3, stride-2 pool's).
            let mut last: Option<(usize, [__m256; B])> = None;
            for (r, window) in rows.iter().enumerate() {
                let mut m = [neg; B];
                for ih in window.clone() {
                    let h = match last {
                        Some((i, h)) if i == ih => h,
                        _ => row_max(ih),
                    };
                    for (m, &h) in m.iter_mut().zip(&h) {
                        *m = max_step_avx2(*m, h);
                    }
                    last = Some((ih, h));
                }
                let out = &mut out[r * wo..][cols.clone()];
                for (out, m) in out.chunks_mut(L).zip(m) {
                    if out.len() == L {
                        // SAFETY: `out` holds 8 values: one unaligned 256-bit store.
                        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), m) };
                    } else {
                        let mut buf = [0.0f32; L];
                        // SAFETY: `buf` holds 8 values.
                        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), m) };
                        out.copy_from_slice(&buf[..out.len()]);
                    }
                }
            }
        }
    }

    /// `out[c * 16 + j] = acc[j * 32 + c]` for `j < p`, `c < 32`, by two 16 x 16 transposes
    /// in registers (rows past `p` are zeros, and their slots are written as such).
    ///
    /// # Safety
    /// `p <= 16` and `acc` holds `p * 32` values.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn channels_major_avx512(acc: &[f32], p: usize, out: &mut [f32; CR * TR]) {
        for half in 0..2 {
            let mut r = [_mm512_setzero_ps(); 16];
            // SAFETY: the caller's guarantee.
            unsafe { transpose_half(acc, p, half, &mut r) };
            for (c, row) in r.iter().enumerate() {
                // SAFETY: channel `16 * half + c < 32`: its 16 slots are inside `out`.
                unsafe { _mm512_storeu_ps(out.as_mut_ptr().add((16 * half + c) * TR), *row) };
            }
        }
    }

    /// Channels `16 * half..16 * half + 16` of the transposed tile `acc` (`p` pixels of 32
    /// channels) into `r`, channel-major: lane `j` of vector `c` is pixel `j` (lanes past `p`
    /// hold 0). Into the caller's array: returned by value, the 1 KiB array went back through
    /// a `memcpy` call on every tile (6% of the time of ResNet-50's stage 3 on an Intel Xeon).
    /// Each stage's pairs in loops of constant bounds, which the compiler unrolls, the
    /// vectors in registers: through a loop over `filter`ed indices, each permutation loaded
    /// its pair from the array and stored it back, and the output pass of a `32 x 14` tile
    /// took about 500 cycles (Intel Xeon, docs/benchmarks.md). (Expanded into its callers, as
    /// a macro, it ran slower still.)
    ///
    /// # Safety
    /// `p <= 16`, `half < 2`, and `acc` holds `p * 32` values.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose_half(acc: &[f32], p: usize, half: usize, r: &mut [__m512; 16]) {
        for (j, row) in r.iter_mut().enumerate() {
            *row = if j < p {
                // SAFETY: `j < p`, so `acc[j * 32 + 16 * half..][..16]` is inside `acc`.
                unsafe { _mm512_loadu_ps(acc.as_ptr().add(j * CR + 16 * half)) }
            } else {
                _mm512_setzero_ps()
            };
        }
        macro_rules! stage {
            ($k:expr, $b:expr) => {{
                let (first, second) = &STAGES[$k];
                // SAFETY: each index array holds 16 `i32`, one 512-bit load.
                let (i0, i1) = unsafe {
                    (
                        _mm512_loadu_si512(first.as_ptr().cast()),
                        _mm512_loadu_si512(second.as_ptr().cast()),
                    )
                };
                for g in 0..16 / (2 * $b) {
                    for i in 2 * $b * g..2 * $b * g + $b {
                        let (x, y) = (r[i], r[i + $b]);
                        r[i] = _mm512_permutex2var_ps(x, i0, y);
                        r[i + $b] = _mm512_permutex2var_ps(x, i1, y);
                    }
                }
            }};
        }
        stage!(0, 8);
        stage!(1, 4);
        stage!(2, 2);
        stage!(3, 1);
    }

    /// The transposed tile `acc` (`p` pixels of 32 channels) written channel by channel into
    /// `dst` as `rows_out_avx512` writes its tile, pixels for lanes.
    ///
    /// # Safety
    /// `p <= 16` and `acc` holds `p * 32` values; `dst` and `ep.bias` hold 32 entries, and for
    /// every run `s + n <= p`, `d + n` is at most each row's length and, with a residual
    /// `(r, ld)`, `31 * ld + d + n <= r.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pixels_out_avx512(
        acc: &[f32],
        p: usize,
        dst: &mut [&mut [f32]],
        ep: &Epilogue,
    ) {
        let mut r = [_mm512_setzero_ps(); 16];
        if let [(0, d, n)] = *ep.runs {
            // One run from the tile's first pixel (every tile of `run_task_pixels`): one mask
            // for every channel.
            let m = ((1u32 << n) - 1) as u16;
            for half in 0..2 {
                // SAFETY: the caller's guarantee.
                unsafe { transpose_half(acc, p, half, &mut r) };
                for (i, (row, &v)) in dst[16 * half..].iter_mut().zip(&r).enumerate() {
                    // SAFETY: `n <= p <= 16`, and the caller's guarantees for channel
                    // `16 * half + i < 32` and the run.
                    unsafe { write_run(row, 16 * half + i, v, m, d, ep) };
                }
            }
            return;
        }
        for half in 0..2 {
            // SAFETY: the caller's guarantee.
            unsafe { transpose_half(acc, p, half, &mut r) };
            let rows = dst[16 * half..].iter_mut().zip(&r).enumerate();
            for (c, (row, &v)) in rows.map(|(c, pair)| (16 * half + c, pair)) {
                // SAFETY: the caller's guarantees for channel `c < 32`.
                unsafe { write_runs(row, c, v, 0, ep) };
            }
        }
    }

    /// [`super::Act::apply`] on every lane: `v < 0 ? 0 : v` with ReLU, then `v > cap ? cap : v`
    /// with a cap, one instruction each: `vmaxps(0, v)` and `vminps(cap, v)` return their
    /// second operand `v` when either is NaN and when both are zeros, so NaN and -0.0 stay as
    /// they are (a compare and a masked move each before; the same bits).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn act_avx512(mut v: __m512, act: Act) -> __m512 {
        if act.relu {
            v = _mm512_max_ps(_mm512_setzero_ps(), v);
        }
        if let Some(cap) = act.cap {
            v = _mm512_min_ps(_mm512_set1_ps(cap), v);
        }
        v
    }

    /// Writes `act(acc + bias (+ residual) (+ the value there))` for channel `c`: `acc`
    /// holds the tile's columns `lane0..lane0 + 16`, and each run `(s, d, n)` of `ep.runs`
    /// sends columns `s..s + n` to `row[d..d + n]`, here the part of it inside this vector, as
    /// a masked load and store at `row + d - s + lane0`: lane `j` lands on pixel
    /// `d + lane0 + j - s`, and a masked-off lane is never accessed (it cannot fault), so the
    /// address itself may lie outside the row (`wrapping_*`).
    ///
    /// # Safety
    /// `c < ep.bias.len()`, and for every run `d + n <= row.len()` and, with a residual
    /// `(r, ld)`, `c * ld + d + n <= r.len()`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn write_runs(row: &mut [f32], c: usize, acc: __m512, lane0: usize, ep: &Epilogue) {
        for &(s, d, n) in ep.runs {
            // The run's columns, as lanes of this vector.
            let m = (((((1u64 << n) - 1) << s) >> lane0) & 0xffff) as u16;
            if m != 0 {
                // SAFETY: the lanes in `m` land on pixels `d..d + n` of the row and of the
                // residual's channel `c` (the caller's guarantees).
                unsafe { write_run(row, c, acc, m, (d + lane0).wrapping_sub(s), ep) };
            }
        }
    }

    /// `act(acc + bias (+ residual) (+ the value there))` for channel `c`, the lanes `m` of
    /// `acc`, lane `j` onto pixel `o + j` of `row` (and of the residual's channel `c`): a
    /// masked load and store, whose masked-off lanes are never accessed (they cannot fault),
    /// so `o` may lie before the row or the vector past it (`wrapping_*`). `write_runs` for
    /// each run of a vector; `pixels_out_avx512` with one mask for all the channels of a
    /// tile that is one run.
    ///
    /// # Safety
    /// `c < ep.bias.len()`, and every lane `j` in `m` lands inside the row (`o + j` modulo
    /// the address space is below `row.len()`) and, with a residual `(r, ld)`, inside it
    /// (`c * ld + o + j` below `r.len()`).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn write_run(row: &mut [f32], c: usize, acc: __m512, m: u16, o: usize, ep: &Epilogue) {
        let at = row.as_mut_ptr().wrapping_add(o);
        let mut v = _mm512_add_ps(acc, _mm512_set1_ps(ep.bias[c]));
        if let Some((r, ld)) = ep.residual {
            let rp = r.as_ptr().wrapping_add((c * ld).wrapping_add(o));
            // SAFETY: the lanes in `m` are residual values of channel `c` (the caller's
            // guarantee).
            v = _mm512_add_ps(v, unsafe { _mm512_maskz_loadu_ps(m, rp) });
        }
        if ep.in_place {
            // SAFETY: the lanes in `m` are pixels of the row (the caller's guarantee).
            v = _mm512_add_ps(v, unsafe { _mm512_maskz_loadu_ps(m, at) });
        }
        v = act_avx512(v, ep.act);
        // SAFETY: as for the load from the row, above.
        unsafe { _mm512_mask_storeu_ps(at, m, v) };
    }

    /// Columns `0..16 V` (`V` is 1 or 2) of an `8 x 32` tile; `a`, `b`, `acc` hold exactly
    /// `kc * 8`, `kc * 32` and `8 * 32` values, and `acc`'s other columns are left as they are.
    /// With `V = 1` (a panel's last 16 pixels or fewer), eight accumulators.
    #[target_feature(enable = "avx512f")]
    pub(super) fn tile_avx512<const V: usize>(a: &[f32], b: &[f32], acc: &mut [f32]) {
        const NR: usize = 32;
        const { assert!(V == 1 || V == 2) };
        let mut c = [[_mm512_setzero_ps(); V]; MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            // SAFETY: `bk` has 32 values: `V <= 2` unaligned 16-lane loads stay inside it.
            let bv: [__m512; V] =
                std::array::from_fn(|h| unsafe { _mm512_loadu_ps(bk.as_ptr().add(16 * h)) });
            for (ci, &av) in c.iter_mut().zip(ak) {
                let av = _mm512_set1_ps(av);
                for (cv, &b) in ci.iter_mut().zip(&bv) {
                    *cv = _mm512_fmadd_ps(av, b, *cv);
                }
            }
        }
        for (dst, ci) in acc.chunks_exact_mut(NR).zip(&c) {
            for (h, v) in ci.iter().enumerate() {
                // SAFETY: `dst` has 32 values: an unaligned 16-lane store at `16 h`, `h < 2`,
                // stays inside it.
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(16 * h), *v) };
            }
        }
    }

    /// Columns `0..8 V` (`V` is 2 or 3) of an `8 x 24` tile; `a`, `b`, `acc` hold exactly
    /// `kc * 8`, `kc * 24` and `8 * 24` values, and `acc`'s other columns are left as they are.
    /// Computed as two `4 x 8 V` halves: with `V = 3`, 12 accumulators, three pixel vectors and
    /// a broadcast weight fill the 16 ymm registers, and each step loads seven values for
    /// twelve FMAs (an `8 x 8` tile, `tile8_avx2`, loads nine for eight, and its eight
    /// accumulators barely cover the FMA latency; it serves a panel's last 8 pixels or fewer).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tile_avx2<const V: usize>(a: &[f32], b: &[f32], acc: &mut [f32]) {
        const NR: usize = 24;
        let kc = a.len() / MR;
        assert!(b.len() >= kc * NR, "a pixel panel of kc rows");
        for half in 0..2 {
            // SAFETY: row `k < kc` of `b` is `b[k * 24..][..24]`, inside `b` (the assertion
            // above), and weight `4 * half + i` of row `k` is inside `a` (`kc * 8` values).
            let zero = [[_mm256_setzero_ps(); V]; 4];
            let c = unsafe { half_avx2::<V>(zero, a, MR, half, b, (0..kc).map(|k| k * NR)) };
            store_half_avx2(acc, half, &c);
        }
    }

    /// Columns `0..8` of an `8 x 24` tile in one pass (eight accumulators, one per row: split
    /// into halves, four would leave the FMAs waiting on each other's latency); `a`, `b`,
    /// `acc` as in `tile_avx2`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn tile8_avx2(a: &[f32], b: &[f32], acc: &mut [f32]) {
        const NR: usize = 24;
        let mut c = [_mm256_setzero_ps(); MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            // SAFETY: `bk` has 24 values: an unaligned 8-lane load stays inside it.
            let bv = unsafe { _mm256_loadu_ps(bk.as_ptr()) };
            for (ci, &av) in c.iter_mut().zip(ak) {
                *ci = _mm256_fmadd_ps(_mm256_set1_ps(av), bv, *ci);
            }
        }
        for (dst, ci) in acc.chunks_exact_mut(NR).zip(&c) {
            // SAFETY: `dst` has 24 values: an unaligned 8-lane store stays inside it.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), *ci) };
        }
    }

    /// Reduction rows per pass of [`halves_avx2`]: 64 input rows read in place, each 24 values
    /// (two or three cache lines), take 8–12 KiB of L1, where a whole reduction of 256 rows
    /// (ResNet-50's 1x1 convs 256 -> 64) took 32 KiB or more and the second half read it
    /// from L2 again. Measured on the AMD EPYC (Zen 4), ResNet-50 with AVX2 on 2 threads, in
    /// passes against over the whole reduction, alternated run by run in one process (median
    /// of 40 runs, both orders): its GEMM convs 43.3 against 44.3 ms and 38.9 against 40.1; the
    /// 1x1 convs 256 -> 64 on 56x56 maps 0.66 against 0.70–0.73 ms and 0.66–0.67 against 0.72,
    /// the stride-2 1x1 conv 256 -> 512 1.50 against 1.63 and 1.37 against 1.44. Passes of
    /// 128 rows ran level with 64 over the network and lost on those 1x1 convs (0.57–0.62
    /// against 0.56–0.59 ms).
    const HALVES_AVX2_CHUNK: usize = 64;

    /// Both halves of an `8 x 24` tile whose input rows are read in place (`x[o..o + 24]` for
    /// the `k`-th `o` of `offs`, weights of row `k` at `a[k * stride..][..8]`), in passes of
    /// [`HALVES_AVX2_CHUNK`] rows: each pass takes its rows for the first half, then for the
    /// second, which finds them in L1. Every sum adds its rows in reduction order, as over the
    /// whole reduction at once.
    ///
    /// # Safety
    /// As `half_avx2` with `V = 3`, for both halves.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn halves_avx2(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
    ) -> [[[__m256; 3]; 4]; 2] {
        let mut cs = [[[_mm256_setzero_ps(); 3]; 4]; 2];
        for (p, rows) in offs.chunks(HALVES_AVX2_CHUNK).enumerate() {
            // Row `p * HALVES_AVX2_CHUNK` is one of the rows, so its weights start inside `a`.
            let a = &a[p * HALVES_AVX2_CHUNK * stride..];
            for (half, c) in cs.iter_mut().enumerate() {
                // SAFETY: the caller's guarantees, for these rows and their weights.
                *c = unsafe { half_avx2::<3>(*c, a, stride, half, x, rows.iter().copied()) };
            }
        }
        cs
    }

    /// Rows `4 * half..4 * half + 4` of an `8 x 24` tile, its columns `0..8 V` (`V <= 3`),
    /// added to `c`: weights of row `k` at `a[k * stride..][..8]`, pixels of row `k` at
    /// `x[o..o + 8 V]` for the `k`-th `o` of `offs`.
    ///
    /// # Safety
    /// `half < 2`, `a` holds `(rows - 1) * stride + 8` values for the `rows` offsets (or
    /// there are none), and `x[o..o + 8 V]` is inside `x` for every offset.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn half_avx2<const V: usize>(
        mut c: [[__m256; V]; 4],
        a: &[f32],
        stride: usize,
        half: usize,
        x: &[f32],
        offs: impl Iterator<Item = usize>,
    ) -> [[__m256; V]; 4] {
        const { assert!(V >= 1 && V <= 3) };
        let xp = x.as_ptr();
        let mut ap = a.as_ptr().wrapping_add(4 * half);
        for o in offs {
            // As in `rows_avx512` (the second half finds the weights in cache).
            _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(PREFETCH) as *const i8);
            // SAFETY: the caller guarantees `x[o..o + 8 V]` is inside `x`.
            let bv: [__m256; V] =
                std::array::from_fn(|h| unsafe { _mm256_loadu_ps(xp.add(o + 8 * h)) });
            for (i, ci) in c.iter_mut().enumerate() {
                // SAFETY: `ap` points at weight `4 * half` of this row's 8, so `ap + i`
                // (`i < 4`) is inside `a` (the caller's length guarantee).
                let av = _mm256_set1_ps(unsafe { *ap.add(i) });
                for (cv, &b) in ci.iter_mut().zip(&bv) {
                    *cv = _mm256_fmadd_ps(av, b, *cv);
                }
            }
            // Past the last row this points outside `a`, but is never read from.
            ap = ap.wrapping_add(stride);
        }
        c
    }

    /// Stores rows `4 * half..4 * half + 4` of an `8 x 24` tile, their columns `0..8 V`.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn store_half_avx2<const V: usize>(acc: &mut [f32], half: usize, c: &[[__m256; V]; 4]) {
        for (dst, ci) in acc[4 * half * 24..][..4 * 24].chunks_exact_mut(24).zip(c) {
            for (d, v) in dst.chunks_exact_mut(8).zip(ci) {
                // SAFETY: `d` has 8 values: one unaligned 8-lane store stays inside it.
                unsafe { _mm256_storeu_ps(d.as_mut_ptr(), *v) };
            }
        }
    }

    /// How far ahead (in weight values: 64 reduction steps, 2 KiB) the in-place tile asks for
    /// its weights.
    const PREFETCH: usize = 64 * MR;

    /// How far ahead (in reduction rows) the AVX-512 tiles that read their input in place ask
    /// for its rows. Measured on an Intel Xeon (ResNet-50, one plan, switched at run time): 8,
    /// 16, 24 and 32 rows ahead the same; without it, the 1x1 convs 10-25% slower
    /// (docs/benchmarks.md). With AVX2 the same prefetch made no difference that showed.
    const INPUT_AHEAD: usize = 16;

    /// `8 x 32` tile with input row `k` at `x[offs[k]..]` and its weights at
    /// `a[k * stride..][..8]`; `acc` holds exactly `8 * 32` values.
    ///
    /// # Safety
    /// `a` holds `(offs.len() - 1) * stride + 8` values (or none are read: `offs` is empty),
    /// and `x[o..o + 32]` is inside `x` for every `o` in `offs`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_avx512(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
        acc: &mut [f32],
    ) {
        const NR: usize = 32;
        // SAFETY: the caller's guarantees are `rows_acc_avx512`'s.
        let c = unsafe { rows_acc_avx512(a, stride, x, offs) };
        for (dst, ci) in acc.chunks_exact_mut(NR).zip(&c) {
            // SAFETY: `dst` has 32 values: two unaligned 16-lane stores stay inside it.
            unsafe {
                _mm512_storeu_ps(dst.as_mut_ptr(), ci[0]);
                _mm512_storeu_ps(dst.as_mut_ptr().add(16), ci[1]);
            }
        }
    }

    /// The accumulators of `rows_avx512`'s tile, channel `i`'s 32 columns in `c[i]`.
    ///
    /// # Safety
    /// As `rows_avx512`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn rows_acc_avx512(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
    ) -> [[__m512; 2]; MR] {
        let mut c = [[_mm512_setzero_ps(); 2]; MR];
        let (xp, mut ap) = (x.as_ptr(), a.as_ptr());
        for (k, &o) in offs.iter().enumerate() {
            // The input rows come from L2 or beyond the first time a tile reads them (one
            // reduction row per input channel and tap, each its own stream): ask for row
            // `k + INPUT_AHEAD`'s 32 pixels (three lines at most). As below, a prefetch never
            // faults, and the address is only computed.
            if let Some(&row) = offs.get(k + INPUT_AHEAD) {
                let p = xp.wrapping_add(row);
                for at in [0, 16, 31] {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(at) as *const i8);
                }
            }
            // The weights stream from memory when they are many (the last stages): ask for
            // them `PREFETCH` values ahead. A prefetch never faults, and the address is only
            // computed (`wrapping_add`), never read from.
            _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(PREFETCH) as *const i8);
            // SAFETY: the caller guarantees `x[o..o + 32]` is inside `x`.
            let (b0, b1) = unsafe { (_mm512_loadu_ps(xp.add(o)), _mm512_loadu_ps(xp.add(o + 16))) };
            for (i, ci) in c.iter_mut().enumerate() {
                // SAFETY: `ap` points at this row's 8 weights, inside `a` (the caller's
                // length guarantee).
                let av = _mm512_set1_ps(unsafe { *ap.add(i) });
                ci[0] = _mm512_fmadd_ps(av, b0, ci[0]);
                ci[1] = _mm512_fmadd_ps(av, b1, ci[1]);
            }
            // Past the last row this points outside `a`, but is never read from.
            ap = ap.wrapping_add(stride);
        }
        c
    }

    /// What `rows_out_avx512` adds to its tile and where it writes it (see `TileOut`).
    pub(super) struct Epilogue<'a> {
        pub runs: &'a [(usize, usize, usize)],
        pub bias: &'a [f32],
        pub residual: Option<(&'a [f32], usize)>,
        pub in_place: bool,
        pub act: Act,
    }

    /// `rows_avx512`'s tile written from its registers into `dst` (see `Isa::tile_rows_out`),
    /// each vector's part of each run by `write_runs`; a tile that is one run of all its 32
    /// columns (every tile of a conv without padding columns but the last) by `write_whole`,
    /// the same sums without the masks.
    ///
    /// # Safety
    /// As `rows_avx512`; and `dst` and `ep.bias` hold 8 entries, and for every run
    /// `s + n <= 32`, `d + n` is at most each row's length and, with a residual `(r, ld)`,
    /// `7 * ld + d + n <= r.len()`.
    // Not inlined into `panels_in_turn`'s loop, where its reduction loop would lose its
    // registers to the outer loop's (three more loads a step).
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rows_out_avx512(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
        dst: &mut [&mut [f32]],
        ep: &Epilogue,
    ) {
        // SAFETY: the caller's guarantees include `rows_acc_avx512`'s.
        let c = unsafe { rows_acc_avx512(a, stride, x, offs) };
        if let [(0, d, 32)] = *ep.runs {
            for (i, (row, ci)) in dst.iter_mut().zip(&c).enumerate() {
                // SAFETY: the caller's guarantees for channel `i < 8` and the run `(0, d, 32)`.
                unsafe { write_whole(row, i, ci, d, ep) };
            }
            return;
        }
        for (i, (row, ci)) in dst.iter_mut().zip(&c).enumerate() {
            for (h, &acc) in ci.iter().enumerate() {
                // SAFETY: the caller's guarantees for channel `i < 8`.
                unsafe { write_runs(row, i, acc, 16 * h, ep) };
            }
        }
    }

    /// The panels of `MR` rows of `dst` in turn, for `Isa::tile_rows_out_panels`: each
    /// panel's output lines of the run `(0, d, cols)` (and its residual's) asked for, as
    /// `TileOut::prefetch` asks for them, then `tile(p, rows, ep)` (the tile kernel, kept out
    /// of line) with the panel's rows and `ep`'s biases and residual rows from the panel's
    /// first channel on.
    ///
    /// # Safety
    /// `cols >= 1`; every row of `dst` holds at least `d + cols` values, `ep.bias` holds
    /// `dst.len()`, and with a residual `(r, ld)`, `(dst.len() - 1) * ld + d + cols <= r.len()`.
    #[inline(always)]
    pub(super) unsafe fn panels_in_turn(
        dst: &mut [&mut [f32]],
        d: usize,
        cols: usize,
        ep: &Epilogue,
        mut tile: impl FnMut(usize, &mut [&mut [f32]], &Epilogue),
    ) {
        for (p, rows) in dst.chunks_exact_mut(MR).enumerate() {
            let first = p * MR;
            let residual = ep.residual.map(|(r, ld)| (&r[first * ld..], ld));
            for (i, row) in rows.iter().enumerate() {
                for at in [d, d + 16.min(cols - 1), d + cols - 1] {
                    // A read prefetch (what `_MM_HINT_ET0` had compiled to): `prefetchw` here
                    // measured level, for outputs written over their residual or fresh
                    // (docs/benchmarks.md, 2026-12-05 17:45).
                    // SAFETY: `d + cols <= row.len()` (the caller's guarantee), so the address
                    // is inside the row; SSE is part of every x86-64 CPU, and a prefetch reads
                    // nothing and cannot fault.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().add(at) as *const i8) };
                    if let Some((r, ld)) = residual {
                        // SAFETY: `i * ld + d + cols <= r.len()` for this panel's residual
                        // rows, the caller's guarantee; as above.
                        unsafe {
                            _mm_prefetch::<_MM_HINT_T0>(r.as_ptr().add(i * ld + at) as *const i8)
                        };
                    }
                }
            }
            let ep = Epilogue {
                runs: ep.runs,
                bias: &ep.bias[first..],
                residual,
                in_place: ep.in_place,
                act: ep.act,
            };
            tile(p, rows, &ep);
        }
    }

    /// `write_runs` for a tile that is one run `(0, d, 32)`: channel `c`'s two vectors `acc`
    /// written whole to `row[d..d + 32]`, with unmasked loads and stores (the same sums, in
    /// the same order). On a short reduction the masks' arithmetic for 16 vectors per tile
    /// weighed: measured on the AMD EPYC (Zen 5), ResNet-50 with AVX-512 on 2 threads, both
    /// alternated in one process (median of 30 runs, twice), the 1x1 convs 64 -> 256 on 56x56
    /// maps (a reduction of 64) took 0.265 ms against 0.290, `layer1.0`'s 1x1 conv 64 -> 64
    /// 0.083 against 0.092.
    ///
    /// # Safety
    /// `c < ep.bias.len()`, `d + 32 <= row.len()` and, with a residual `(r, ld)`,
    /// `c * ld + d + 32 <= r.len()`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn write_whole(row: &mut [f32], c: usize, acc: &[__m512; 2], d: usize, ep: &Epilogue) {
        let b = _mm512_set1_ps(ep.bias[c]);
        for (h, &acc) in acc.iter().enumerate() {
            let at = row.as_mut_ptr().wrapping_add(d + 16 * h);
            let mut v = _mm512_add_ps(acc, b);
            if let Some((r, ld)) = ep.residual {
                // SAFETY: `c * ld + d + 16 * h + 16 <= r.len()`, the caller's guarantee.
                v = _mm512_add_ps(v, unsafe {
                    _mm512_loadu_ps(r.as_ptr().add(c * ld + d + 16 * h))
                });
            }
            if ep.in_place {
                // SAFETY: `d + 16 * h + 16 <= row.len()`, the caller's guarantee.
                v = _mm512_add_ps(v, unsafe { _mm512_loadu_ps(at) });
            }
            v = act_avx512(v, ep.act);
            // SAFETY: as for the load from the row, above.
            unsafe { _mm512_storeu_ps(at, v) };
        }
    }

    /// `8 x 24` tile with input row `k` at `x[offs[k]..]` and its weights at
    /// `a[k * stride..][..8]`; `acc` holds exactly `8 * 24` values. Two `4 x 24` halves, as
    /// `tile_avx2`.
    ///
    /// # Safety
    /// As `rows_avx512`, with `x[o..o + 24]` inside `x`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_avx2(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
        acc: &mut [f32],
    ) {
        // SAFETY: the caller's guarantees are `halves_avx2`'s.
        let cs = unsafe { halves_avx2(a, stride, x, offs) };
        for (half, c) in cs.iter().enumerate() {
            store_half_avx2(acc, half, c);
        }
    }

    /// `rows_avx2`'s tile, its columns `0..cols` at least (the others are left as they are
    /// where `cols <= 16`): with `cols <= 8` in one pass of eight accumulators (as
    /// `tile8_avx2`, whose halves of four would leave the multiply-adds waiting on each
    /// other's latency), with `cols <= 16` its halves' first two vectors (`half_avx2` with
    /// `V = 2`), else the whole tile. Each sum adds its rows in reduction order, as
    /// `rows_avx2` does, so every column computed is the same as its.
    ///
    /// # Safety
    /// As `rows_avx2`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_part_avx2(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
        acc: &mut [f32],
        cols: usize,
    ) {
        if cols <= 8 {
            let mut c = [_mm256_setzero_ps(); MR];
            let xp = x.as_ptr();
            for (k, &o) in offs.iter().enumerate() {
                let ak = &a[k * stride..][..MR];
                // SAFETY: the caller guarantees `x[o..o + 24]` is inside `x`.
                let bv = unsafe { _mm256_loadu_ps(xp.add(o)) };
                for (ci, &av) in c.iter_mut().zip(ak) {
                    *ci = _mm256_fmadd_ps(_mm256_set1_ps(av), bv, *ci);
                }
            }
            for (dst, ci) in acc.chunks_exact_mut(24).zip(&c) {
                // SAFETY: `dst` has 24 values: an unaligned 8-lane store stays inside it.
                unsafe { _mm256_storeu_ps(dst.as_mut_ptr(), *ci) };
            }
        } else if cols <= 16 {
            let mut cs = [[[_mm256_setzero_ps(); 2]; 4]; 2];
            for (p, rows) in offs.chunks(HALVES_AVX2_CHUNK).enumerate() {
                let a = &a[p * HALVES_AVX2_CHUNK * stride..];
                for (half, c) in cs.iter_mut().enumerate() {
                    // SAFETY: the caller's guarantees, for these rows and their weights
                    // (columns `0..16` of rows whose 24 are inside `x`).
                    *c = unsafe { half_avx2::<2>(*c, a, stride, half, x, rows.iter().copied()) };
                }
            }
            for (half, c) in cs.iter().enumerate() {
                store_half_avx2(acc, half, c);
            }
        } else {
            // SAFETY: the caller's guarantees are `rows_avx2`'s.
            unsafe { rows_avx2(a, stride, x, offs, acc) };
        }
    }

    /// `rows_avx2`'s tile written from its registers into `dst`, for a tile that is one run
    /// `(0, d, 24)` of all its columns (see `Isa::tile_rows_out`): each half's four rows as
    /// soon as they are summed, with `write_whole`'s sums in its order (`ep.runs` is not
    /// read). Measured on the AMD EPYC (Zen 5) with AVX2, ResNet-50 on 2 threads, against the
    /// tile stored and then written out (both alternated in one process, median of 30 runs,
    /// twice): the 1x1 convs 64 -> 256 on 56x56 maps 0.61-0.63 against 0.73-0.77 ms, the
    /// run 47.6-48.8 against 49.2-49.7 ms.
    ///
    /// # Safety
    /// As `rows_avx2`; and `dst` and `ep.bias` hold 8 entries, `d + 24` is at most each row's
    /// length and, with a residual `(r, ld)`, `7 * ld + d + 24 <= r.len()`.
    // Not inlined into `panels_in_turn`'s loop (see `rows_out_avx512`).
    #[inline(never)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rows_out_avx2(
        a: &[f32],
        stride: usize,
        x: &[f32],
        offs: &[usize],
        dst: &mut [&mut [f32]],
        d: usize,
        ep: &Epilogue,
    ) {
        // SAFETY: the caller's guarantees are `halves_avx2`'s.
        let cs = unsafe { halves_avx2(a, stride, x, offs) };
        for (half, c) in cs.iter().enumerate() {
            for (i, ci) in c.iter().enumerate() {
                let ch = 4 * half + i;
                let b = _mm256_set1_ps(ep.bias[ch]);
                let row = &mut dst[ch];
                assert!(d + 24 <= row.len(), "the run lies inside the row");
                for (h, &acc) in ci.iter().enumerate() {
                    let at = row.as_mut_ptr().wrapping_add(d + 8 * h);
                    let mut v = _mm256_add_ps(acc, b);
                    if let Some((r, ld)) = ep.residual {
                        // SAFETY: `ch * ld + d + 24 <= r.len()`, the caller's guarantee.
                        v = _mm256_add_ps(v, unsafe {
                            _mm256_loadu_ps(r.as_ptr().add(ch * ld + d + 8 * h))
                        });
                    }
                    if ep.in_place {
                        // SAFETY: `d + 8 * h + 8 <= row.len()` (asserted above).
                        v = _mm256_add_ps(v, unsafe { _mm256_loadu_ps(at) });
                    }
                    v = act_avx2(v, ep.act);
                    // SAFETY: as for the load from the row, above.
                    unsafe { _mm256_storeu_ps(at, v) };
                }
            }
        }
    }

    /// `act_avx512` in 8 lanes: `vmaxps(0, v)` and `vminps(cap, v)` keep NaN and -0.0 as
    /// they are.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn act_avx2(mut v: __m256, act: Act) -> __m256 {
        if act.relu {
            v = _mm256_max_ps(_mm256_setzero_ps(), v);
        }
        if let Some(cap) = act.cap {
            v = _mm256_min_ps(_mm256_set1_ps(cap), v);
        }
        v
    }

    /// How far ahead (in weight values: 128 reduction steps, 16 KiB) [`pixels_avx512`] asks
    /// for its weights, which on the narrow maps it serves stream from memory once per run
    /// (ResNet-18's 7x7 convs took 0.65 ms at 2 KiB ahead, 0.58 at 6 KiB, 0.55 at 16 KiB, the
    /// same at 32 KiB).
    const PREFETCH_WIDE: usize = 128 * CR;

    /// `32 x P` transposed tile (see `Isa::tile_pixels`): pixel `j` at `o + j * STEP` for
    /// `j < S`, at `o + (gap + j) * STEP` after; `a` and `acc` hold exactly `offs.len() * 32`
    /// and `P * 32` values.
    ///
    /// Where `STEP` is [`super::BLOCK`] (channels innermost), each pixel is a line of its own
    /// for `BLOCK` rows: step `k` also asks for the line of pixel `k % BLOCK` (where there is
    /// one) `BLOCK` rows on, so that the next block's lines arrive one a step.
    ///
    /// # Safety
    /// `S <= P`, and `x[o + (gap + P - 1) * STEP]` (or `x[o + (P - 1) * STEP]` when `S == P`)
    /// is inside `x` for every `o` in `offs`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pixels_avx512<const P: usize, const S: usize, const STEP: usize>(
        a: &[f32],
        x: &[f32],
        offs: &[usize],
        gap: usize,
        acc: &mut [f32],
        ep: Option<(&[f32; CR], Act)>,
    ) {
        let mut c = [[_mm512_setzero_ps(); 2]; P];
        let xp = x.as_ptr();
        // The tile's last pixel, from a row's first.
        let last = STEP * if S < P { gap + P - 1 } else { P - 1 };
        let at_pixel = |j: usize| STEP * if j < S { j } else { gap + j };
        let (n, ap, op) = (offs.len(), a.as_ptr(), offs.as_ptr());
        // By index rather than through `chunks_exact(CR).zip(offs).enumerate()`, whose state
        // the compiler kept on the stack: a store and two loads a step before the pixels'
        // address was known.
        for k in 0..n {
            // SAFETY: `k < n = offs.len()`.
            let o = unsafe { *op.add(k) };
            // As in `rows_acc_avx512`: the lines of the first and the last of the tile's
            // pixels in row `k + INPUT_AHEAD` (all of them on ResNet's maps, where they are at
            // most 16 values apart).
            if STEP > 1 {
                let j = k % STEP;
                if j < P && k + STEP < n {
                    // SAFETY: `k + STEP < offs.len()`.
                    let p = xp.wrapping_add(unsafe { *op.add(k + STEP) } + at_pixel(j));
                    _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
                }
            } else if k + INPUT_AHEAD < n {
                // SAFETY: `k + INPUT_AHEAD < offs.len()`.
                let p = xp.wrapping_add(unsafe { *op.add(k + INPUT_AHEAD) });
                _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(last) as *const i8);
            }
            let ak = ap.wrapping_add(k * CR);
            // As in `rows_avx512`: the weights stream from memory on the last stages. A
            // prefetch never faults; the addresses are only computed.
            let ahead = ak.wrapping_add(PREFETCH_WIDE);
            _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(16) as *const i8);
            // SAFETY: `a` holds `n * 32` values (the caller's guarantee), so row `k < n`'s
            // 32 are inside it: two unaligned 16-lane loads.
            let (w0, w1) = unsafe { (_mm512_loadu_ps(ak), _mm512_loadu_ps(ak.add(16))) };
            for (j, cj) in c.iter_mut().enumerate() {
                let at = o + at_pixel(j);
                // SAFETY: `at` is at most the last pixel's offset, which the caller
                // guarantees is inside `x`.
                let v = _mm512_set1_ps(unsafe { *xp.add(at) });
                cj[0] = _mm512_fmadd_ps(w0, v, cj[0]);
                cj[1] = _mm512_fmadd_ps(w1, v, cj[1]);
            }
        }
        // Each channel's bias and the activation, in the registers (`Isa::tile_pixels_act`).
        if let Some((bias, act)) = ep {
            // SAFETY: `bias` holds 32 values: two unaligned 16-lane loads at 0 and 16.
            let b = unsafe {
                [
                    _mm512_loadu_ps(bias.as_ptr()),
                    _mm512_loadu_ps(bias.as_ptr().add(16)),
                ]
            };
            for cj in &mut c {
                for (v, &b) in cj.iter_mut().zip(&b) {
                    *v = act_avx512(_mm512_add_ps(*v, b), act);
                }
            }
        }
        // By index, as in `pixels3_avx2` (through `acc`'s chunks the sums went to the stack).
        assert!(acc.len() >= P * CR, "a sum per pixel and channel");
        for (j, cj) in c.iter().enumerate() {
            // SAFETY: `acc` holds at least `P * 32` values (asserted): two unaligned 16-lane
            // stores at `j * 32`, `j < P`, stay inside it.
            unsafe {
                _mm512_storeu_ps(acc.as_mut_ptr().add(j * CR), cj[0]);
                _mm512_storeu_ps(acc.as_mut_ptr().add(j * CR + 16), cj[1]);
            }
        }
    }

    /// Reduction rows per pass of `pixels_avx2` where the rows are dense ([`super::Rows`]: a 3x3
    /// conv's): 128 rows of a 32-channel panel are 16 KiB of weights, which stay in L1 (with
    /// the few input lines the pass reads) while the tile's pixels go by three at a time.
    /// Passes over the whole reduction streamed the panel from L2 once per three pixels:
    /// ResNet-50's 1x1 and 3x3 convs on 14x14 and 7x7 maps ran 12-19% slower on one thread
    /// (docs/benchmarks.md). Shorter passes pay more for loading and storing the twelve
    /// accumulators around each: measured on the AMD EPYC (Zen 4), 2 threads, the two settings
    /// alternated in one process, ResNet-18's 3x3 convs on 7x7 maps took 1.65–1.67 ms against
    /// 1.71–1.78 at 64 rows (and 1.80–1.87 against 1.91–1.99 in a busier minute), the tile
    /// alone (`cargo bench --bench fma_peak`, one thread) 98–100 GFLOP/s against 94 on a 14x14
    /// map and 81–83 at 32 rows; 256 rows ran as 128.
    const PIXELS_AVX2_CHUNK: usize = 128;

    /// Reduction rows per pass of `pixels_avx2` where the rows are spread, each in input lines
    /// of its own (a 1x1 conv's, a stride-2 conv's): 128 such rows of a 14-pixel tile read up
    /// to 256 lines of input (12-16 KiB) beside the pass's 16 KiB of weights, more than a
    /// 32 KiB L1 keeps for the pass's later pixels. Measured on the AMD EPYC (Zen 3, AVX2
    /// only), ResNet-50 on 2 threads, spread rows in 64-row passes against 128, alternated
    /// run by run in one process, both orders: the 1x1 convs of `layer4` 0.95–1.04 ms
    /// against 1.02–1.11 and 0.86–0.93 against 0.96–1.05 (the one of 1024 -> 2048, 1.86
    /// against 2.05 and 1.78 against 1.94), the GEMM convs 41.1 against 42.3 ms and level
    /// (45.1 and 45.1), the stride-2 convs and the 3x3 convs (dense, unchanged) level; one
    /// thread, the 1x1 conv 512 -> 2048 alone, 1.61 against 1.83 ms; 32 rows ran as 64.
    const PIXELS_AVX2_SPREAD_CHUNK: usize = 64;

    /// Reduction rows per pass of `pixels_avx2` for rows that are dense or not ([`super::Rows`]).
    pub(super) fn avx2_pass(dense: bool) -> usize {
        if dense {
            PIXELS_AVX2_CHUNK
        } else {
            PIXELS_AVX2_SPREAD_CHUNK
        }
    }

    /// `channels_major_avx512` with AVX2: blocks of 8 pixels by 8 channels turned around in
    /// registers (unpacks, shuffles and lane swaps), each channel's 8 pixels one store; the
    /// blocks of pixels `8..16` only where the tile has any (their slots past `p` then hold
    /// zeros). Value by value, the loop the compiler made of it took about as long as the
    /// tile's products at a reduction of 64 (docs/benchmarks.md).
    ///
    /// # Safety
    /// `p <= 16` and `acc` holds `p * 32` values.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn channels_major_avx2(acc: &[f32], p: usize, out: &mut [f32; CR * TR]) {
        for j0 in (0..p).step_by(8) {
            for c0 in (0..CR).step_by(8) {
                // SAFETY: `j0 < p <= 16` and `c0 + 8 <= 32`, the caller's guarantees.
                let c = unsafe { turn8_avx2(acc, p, j0, c0) };
                for (i, v) in c.iter().enumerate() {
                    // SAFETY: `(c0 + i) * 16 + j0 + 8 <= 31 * 16 + 16 = CR * TR`: inside `out`.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add((c0 + i) * TR + j0), *v) };
                }
            }
        }
    }

    /// The block of pixels `j0..j0 + 8` by channels `c0..c0 + 8` of the transposed tile
    /// `acc` (`p` pixels of 32 channels) turned around in registers (unpacks, shuffles and
    /// lane swaps): vector `i` holds channel `c0 + i`, lane `j` its pixel `j0 + j` (zero for
    /// the pixels from `p` on).
    ///
    /// # Safety
    /// `acc` holds `p * 32` values and `c0 + 8 <= 32`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn turn8_avx2(acc: &[f32], p: usize, j0: usize, c0: usize) -> [__m256; 8] {
        let r: [__m256; 8] = std::array::from_fn(|j| {
            if j0 + j < p {
                // SAFETY: pixel `j0 + j < p`: its channels `c0..c0 + 8` are inside `acc`
                // (`c0 + 8 <= 32`).
                unsafe { _mm256_loadu_ps(acc.as_ptr().add((j0 + j) * CR + c0)) }
            } else {
                _mm256_setzero_ps()
            }
        });
        let t = [
            _mm256_unpacklo_ps(r[0], r[1]),
            _mm256_unpackhi_ps(r[0], r[1]),
            _mm256_unpacklo_ps(r[2], r[3]),
            _mm256_unpackhi_ps(r[2], r[3]),
            _mm256_unpacklo_ps(r[4], r[5]),
            _mm256_unpackhi_ps(r[4], r[5]),
            _mm256_unpacklo_ps(r[6], r[7]),
            _mm256_unpackhi_ps(r[6], r[7]),
        ];
        let u = [
            _mm256_shuffle_ps::<0x44>(t[0], t[2]),
            _mm256_shuffle_ps::<0xee>(t[0], t[2]),
            _mm256_shuffle_ps::<0x44>(t[1], t[3]),
            _mm256_shuffle_ps::<0xee>(t[1], t[3]),
            _mm256_shuffle_ps::<0x44>(t[4], t[6]),
            _mm256_shuffle_ps::<0xee>(t[4], t[6]),
            _mm256_shuffle_ps::<0x44>(t[5], t[7]),
            _mm256_shuffle_ps::<0xee>(t[5], t[7]),
        ];
        // Channel `c0 + i`: lanes 0-3 the pixels `j0..j0 + 4` (from `u[i % 4]`), 4-7 the next
        // four (from `u[i % 4 + 4]`), the low halves for `i < 4`.
        [
            _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
            _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
            _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
            _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
            _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
        ]
    }

    /// The transposed tile `acc` (`p` pixels of 32 channels) written as `write_from` writes
    /// it, for a tile that is one run `(0, d, n)` (every tile of `run_task_pixels`): each
    /// block of 8 pixels by 8 channels turned around in registers (`turn8_avx2`), then each
    /// channel's pixels stored from there, whole vectors with plain loads and stores and the
    /// run's last `n % 8` pixels through 4-, 2- and 1-lane ones (`lanes_avx2`), not masked
    /// stores, which are slow on AMD's cores.
    ///
    /// # Safety
    /// `p <= 16`, `n <= p` and `acc` holds `p * 32` values; `dst` and `ep.bias` hold 32
    /// entries, `d + n` is at most each row's length and, with a residual `(r, ld)`,
    /// `31 * ld + d + n <= r.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pixels_out_avx2(
        acc: &[f32],
        p: usize,
        d: usize,
        n: usize,
        dst: &mut [&mut [f32]],
        ep: &Epilogue,
    ) {
        assert!(
            dst.len() >= CR && dst.iter().all(|row| d + n <= row.len()),
            "the run lies inside every row"
        );
        for j0 in (0..n).step_by(8) {
            let m = (n - j0).min(8);
            for c0 in (0..CR).step_by(8) {
                // SAFETY: `j0 < n <= p <= 16` and `c0 + 8 <= 32`, the caller's guarantees.
                let c = unsafe { turn8_avx2(acc, p, j0, c0) };
                for (i, &v) in c.iter().enumerate() {
                    let ch = c0 + i;
                    let at = dst[ch].as_mut_ptr().wrapping_add(d + j0);
                    let mut v = _mm256_add_ps(v, _mm256_set1_ps(ep.bias[ch]));
                    if let Some((r, ld)) = ep.residual {
                        // SAFETY: `ch * ld + d + j0 + m <= 31 * ld + d + n <= r.len()`, the
                        // caller's guarantee.
                        v = _mm256_add_ps(v, unsafe {
                            lanes_avx2(r.as_ptr().add(ch * ld + d + j0), m)
                        });
                    }
                    if ep.in_place {
                        // SAFETY: `d + j0 + m <= d + n <=` the row's length (asserted above).
                        v = _mm256_add_ps(v, unsafe { lanes_avx2(at, m) });
                    }
                    v = act_avx2(v, ep.act);
                    // SAFETY: as for the load from the row, above.
                    unsafe { store_lanes_avx2(at, v, m) };
                }
            }
        }
    }

    /// The `m` (1 to 8) values from `at` in the first `m` lanes, zeros in the others: a plain
    /// load, or 4-, 2- and 1-lane ones.
    ///
    /// # Safety
    /// `at..at + m` is inside one slice.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes_avx2(at: *const f32, m: usize) -> __m256 {
        // Up to four values into one 128-bit half.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn half(at: *const f32, m: usize) -> __m128 {
            // SAFETY: the caller's guarantee, for `at..at + m`.
            unsafe {
                match m {
                    0 => _mm_setzero_ps(),
                    1 => _mm_load_ss(at),
                    2 => _mm_castsi128_ps(_mm_loadu_si64(at.cast())),
                    3 => _mm_movelh_ps(
                        _mm_castsi128_ps(_mm_loadu_si64(at.cast())),
                        _mm_load_ss(at.add(2)),
                    ),
                    _ => _mm_loadu_ps(at),
                }
            }
        }
        if m >= 8 {
            // SAFETY: `at..at + 8` is inside one slice (the caller's guarantee).
            return unsafe { _mm256_loadu_ps(at) };
        }
        // SAFETY: the values `at..at + m` only, the caller's guarantee.
        unsafe {
            _mm256_set_m128(
                half(at.wrapping_add(4), m.saturating_sub(4)),
                half(at, m.min(4)),
            )
        }
    }

    /// Stores the first `m` (1 to 8) lanes of `v` at `at..at + m`: a plain store, or 4-, 2-
    /// and 1-lane ones.
    ///
    /// # Safety
    /// `at..at + m` is inside one slice, which may be written.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn store_lanes_avx2(at: *mut f32, v: __m256, m: usize) {
        // SAFETY (every store): inside `at..at + m`, the caller's guarantee.
        if m >= 8 {
            return unsafe { _mm256_storeu_ps(at, v) };
        }
        let (mut at, mut m, mut h) = (at, m, _mm256_castps256_ps128(v));
        if m >= 4 {
            unsafe { _mm_storeu_ps(at, h) };
            (at, m, h) = (at.wrapping_add(4), m - 4, _mm256_extractf128_ps::<1>(v));
        }
        if m >= 2 {
            unsafe { _mm_storeu_si64(at.cast(), _mm_castps_si128(h)) };
            (at, m, h) = (at.wrapping_add(2), m - 2, _mm_movehl_ps(h, h));
        }
        if m == 1 {
            unsafe { _mm_store_ss(at, h) };
        }
    }

    /// `32 x P` transposed tile as in `pixels_avx512`, by `pixels_group_avx2` on its pixels.
    ///
    /// # Safety
    /// As `pixels_avx512`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pixels_avx2<const P: usize, const S: usize>(
        a: &[f32],
        x: &[f32],
        offs: &[usize],
        gap: usize,
        acc: &mut [f32],
        pass: usize,
        step: usize,
    ) {
        let d: [usize; P] = std::array::from_fn(|j| step * if j < S { j } else { gap + j });
        // SAFETY: the caller's guarantees, for the tile's pixels `d`.
        unsafe { pixels_group_avx2(a, x, offs, &d, &mut acc[..P * CR], pass) }
    }

    /// The transposed tile over any pixels, pixel `j` at `x[o + d[j]]` for row offset `o`,
    /// its sums in `acc[j * CR..(j + 1) * CR]`: in passes of `pass` reduction rows
    /// ([`avx2_pass`]), each up to three pixels at a time across its part of the panel (12
    /// accumulators, the 8-channel quarter of the weights being multiplied and the three
    /// broadcasts fill the 16 ymm registers: 7 loads per 12 multiply-adds). Each pass adds to
    /// the sums in `acc` in reduction order, so every sum is the same as in one pass, and the
    /// same whatever the pixels beside it.
    ///
    /// Each part asks for its share of the next pass's weight lines into L1 before it starts
    /// (part `i` of `n`, the rows `i * pass / n..(i + 1) * pass / n`): on the last stages the
    /// weights stream from memory once per group of tiles, and the parts of a pass would
    /// otherwise wait for them. Measured on the AMD EPYC (Zen 4), AVX2, 2 threads, builds'
    /// processes alternated (`steps`, medians of 6-8 each), against every request issued by
    /// the pass's first part into L2 (`_MM_HINT_T1`, as before): six 3x3 convs of 512
    /// channels on 7x7 maps (`benches/nets/stage4_convs.res`, 56 MB of weights) 7.50 ms
    /// against 7.87 with the requests spread, still into L2, and 7.25 against 7.41 spread
    /// into L1 rather than L2; ResNet-18's run 14.70 against 15.10 ms (its `layer4` convs
    /// 1.20-1.23 against 1.30-1.32 ms), ResNet-50's 2.7% faster (its `layer4` convs 6-11%),
    /// the other convs within 2% (all from the first part into L1 had been 4-10% slower than
    /// into L2: presumably its burst of requests filled the core's queue of misses and waited
    /// on it, where spread they overlap the pass's products). One such conv whose weights
    /// stay in L3 runs in 1.15 ms; from memory each took 1.27 before, 1.20-1.23 now. (Asking
    /// for them at all, from the first part into L2, had made ResNet-18's 3x3 convs on 7x7
    /// maps 5-8% faster than no request: 1.40-1.41 ms against 1.47-1.50, same machine.)
    ///
    /// # Safety
    /// `x[o + d[j]]` is inside `x` for every `o` in `offs` and every `j`; `a` holds
    /// `offs.len() * CR` values and `acc` `d.len() * CR`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn pixels_group_avx2(
        a: &[f32],
        x: &[f32],
        offs: &[usize],
        d: &[usize],
        acc: &mut [f32],
        pass: usize,
    ) {
        let p = d.len();
        acc[..p * CR].fill(0.0);
        let k = offs.len();
        let parts = p.div_ceil(3);
        let all = a;
        let mut k0 = 0;
        while k0 < k {
            let k1 = k.min(k0 + pass);
            let (a, offs) = (&all[k0 * CR..k1 * CR], &offs[k0..k1]);
            // The next pass's weights, which each part asks for a share of (past the panel's
            // end the lines are never read: a prefetch never faults, the addresses are only
            // computed).
            let next = all.as_ptr().wrapping_add(k1 * CR);
            let (mut j, mut part) = (0, 0);
            while j < p {
                for r in part * pass / parts..(part + 1) * pass / parts {
                    let at = next.wrapping_add(r * CR);
                    _mm_prefetch::<_MM_HINT_T0>(at as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(16) as *const i8);
                }
                part += 1;
                match p - j {
                    1 => {
                        // SAFETY: as this function's (pixel `j` is one of the tile's).
                        unsafe { pixels3_avx2::<1>(a, x, offs, [d[j]], &mut acc[j * CR..]) };
                        j += 1;
                    }
                    2 => {
                        // SAFETY: as above, for pixels `j` and `j + 1`.
                        let d = [d[j], d[j + 1]];
                        unsafe { pixels3_avx2::<2>(a, x, offs, d, &mut acc[j * CR..]) };
                        j += 2;
                    }
                    _ => {
                        let dj = [d[j], d[j + 1], d[j + 2]];
                        // SAFETY: as above, for pixels `j..j + 3`.
                        unsafe { pixels3_avx2::<3>(a, x, offs, dj, &mut acc[j * CR..]) };
                        j += 3;
                    }
                }
            }
            k0 = k1;
        }
    }

    /// `N` (at most 3) pixels of `pixels_avx2`'s tile, pixel `j` at `x[o + d[j]]` for row
    /// offset `o`, added to `acc[j * CR..(j + 1) * CR]`; each sum over `k` in order, as in the
    /// other tiles (the next pass's weights are asked for by the caller).
    ///
    /// Inlined into its one caller, `pixels_group_avx2` (compiled with AVX2 and FMA), rather
    /// than a function of its own with those features: called as one, each part went through
    /// the stack twice (the sums loaded from `acc` and stored to the stack before the loop,
    /// loaded back, and after it stored to the stack and copied to `acc`), once per part and
    /// pass of 64 or 128 rows. Measured on the AMD EPYC (Zen 4), AVX2, 2 threads, the two
    /// builds' processes alternated (`steps`, six each, median): six 1x1 convs 2048 -> 512 ->
    /// 2048 on 7x7 maps 3.91 ms against 4.18, each conv 5-8% faster; the sums stored by index
    /// (below) as well, 3.70 against 3.86.
    ///
    /// # Safety
    /// As `pixels_avx512`, for the pixels `d` names; `acc` holds at least `N * CR` values; the
    /// CPU has AVX2 and FMA.
    #[inline(always)]
    unsafe fn pixels3_avx2<const N: usize>(
        a: &[f32],
        x: &[f32],
        offs: &[usize],
        d: [usize; N],
        acc: &mut [f32],
    ) {
        // SAFETY: `acc` holds at least `N * CR` values (the caller's guarantee): each 8-lane
        // load at `j * CR + 8 q`, `j < N`, `q < 4`, stays inside it.
        let mut c: [[__m256; 4]; N] = std::array::from_fn(|j| {
            std::array::from_fn(|q| unsafe { _mm256_loadu_ps(acc.as_ptr().add(j * CR + 8 * q)) })
        });
        let xp = x.as_ptr();
        for (ak, &o) in a.chunks_exact(CR).zip(offs) {
            // SAFETY: `o + d[j]` is a pixel of the tile, which the caller guarantees is inside
            // `x`; the CPU has AVX (the caller's guarantee).
            let v: [__m256; N] =
                std::array::from_fn(|j| unsafe { _mm256_set1_ps(*xp.add(o + d[j])) });
            for q in 0..4 {
                // SAFETY: `ak` has 32 values: an unaligned 8-lane load at `8 q` stays inside it.
                let w = unsafe { _mm256_loadu_ps(ak.as_ptr().add(8 * q)) };
                for (cj, vj) in c.iter_mut().zip(&v) {
                    // SAFETY: the CPU has FMA (the caller's guarantee).
                    cj[q] = unsafe { _mm256_fmadd_ps(w, *vj, cj[q]) };
                }
            }
        }
        // By index into `acc` rather than through its chunks, whose count the compiler does
        // not know: it then put the sums on the stack to loop over them.
        for (j, cj) in c.iter().enumerate() {
            for (q, cq) in cj.iter().enumerate() {
                // SAFETY: `acc` holds at least `N * CR` values (the caller's guarantee): each
                // 8-lane store at `j * CR + 8 q`, `j < N`, `q < 4`, stays inside it.
                unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(j * CR + 8 * q), *cq) };
            }
        }
    }

    /// `f()`, compiled with AVX-512 enabled.
    #[target_feature(enable = "avx512f")]
    pub(super) fn with_avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// `f()`, compiled with AVX2 and FMA enabled.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// 12 independent chains of 16-lane FMAs, `iters` rounds.
    #[target_feature(enable = "avx512f")]
    pub(super) fn peak_avx512(iters: u64) -> f32 {
        let m = _mm512_set1_ps(0.999_999);
        let d = _mm512_set1_ps(1e-7);
        let mut c = [_mm512_set1_ps(1.0); 12];
        for _ in 0..iters {
            for v in c.iter_mut() {
                *v = _mm512_fmadd_ps(*v, m, d);
            }
        }
        let s = c
            .iter()
            .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
        _mm512_reduce_add_ps(s)
    }

    /// 12 independent chains of 8-lane FMAs, `iters` rounds.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn peak_avx2(iters: u64) -> f32 {
        let m = _mm256_set1_ps(0.999_999);
        let d = _mm256_set1_ps(1e-7);
        let mut c = [_mm256_set1_ps(1.0); 12];
        for _ in 0..iters {
            for v in c.iter_mut() {
                *v = _mm256_fmadd_ps(*v, m, d);
            }
        }
        let s = c
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        let mut out = [0.0f32; 8];
        // SAFETY: `out` has 8 values.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }
}

/// Whether the CPU has `prefetchw` (CPUID `0x8000_0001`, ECX bit 8: AMD's since the K8,
/// Intel's since Broadwell), read once.
#[cfg(target_arch = "x86_64")]
pub fn has_prefetchw() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        use std::arch::x86_64::__cpuid;
        // Leaf 0x8000_0001 only where the highest extended leaf (0x8000_0000's EAX) reaches it.
        let ecx = (__cpuid(0x8000_0000).eax >= 0x8000_0001).then(|| __cpuid(0x8000_0001).ecx);
        ecx.is_some_and(|ecx| ecx & (1 << 8) != 0)
    })
}

/// Asks for the 64-byte line at `p` to be written: with `prefetchw` the line arrives ready
/// for the store (exclusive to this core), where a read prefetch brings a line another core
/// read last (a residual both threads read, then written over) shared, and the store then
/// waits for the other core's copy to go. `_mm_prefetch::<_MM_HINT_ET0>` compiles to
/// `prefetcht0` unless the whole build targets `prfchw`, hence the instruction itself. A
/// hint: it never faults and changes no value.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_line_write(p: *const i8) {
    if has_prefetchw() {
        // SAFETY: the CPU has `prefetchw` (above); a prefetch reads nothing, writes nothing
        // and cannot fault, whatever the address.
        unsafe {
            std::arch::asm!("prefetchw [{0}]", in(reg) p, options(nostack, preserves_flags, readonly));
        }
    } else {
        // SAFETY: SSE is part of every x86-64 CPU; a prefetch cannot fault.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p) };
    }
}
