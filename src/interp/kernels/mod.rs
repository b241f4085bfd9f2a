//! CPU tensor kernels of the interpreter: NCHW `f32` convolution, pooling, elementwise ops and
//! the linear layer, resizing, cropping and padding.
//!
//! Every fast kernel has a naive reference beside it (`conv2d_ref`, `conv_transpose2d_ref`, `maxpool2d_ref`,
//! `avgpool2d_ref`, `linear_ref`, `resize_ref`, `crop_ref`, `pad_ref`), written as plain loops to serve as the specification, and
//! property tests check the fast kernel against it on random small shapes. Elementwise kernels
//! are single one-pass loops and are their own reference. Kernels trust the shape checker: they
//! `expect` what it guarantees (documented as preconditions) and never re-validate user input.
//! This module must not use `unsafe`, nor reference anything but `ndarray`, `std`,
//! `crate::shape::formula`, and for the fast convolutions rayon and `crate::machine::simd`.

pub mod conv;
pub mod conv_blocked;
pub mod conv_depthwise;
pub mod conv_gemm;
pub mod conv_transpose;
pub mod conv_winograd;
pub mod elementwise;
pub mod linear;
pub mod pool;
pub mod resample;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_blocked;
#[cfg(test)]
mod tests_depthwise;
#[cfg(test)]
mod tests_gemm;
#[cfg(test)]
mod tests_resample;
#[cfg(test)]
mod tests_winograd;

pub use crate::machine::simd::Act;
pub use conv::{Conv2dParams, conv2d, conv2d_ref, conv2d_threads, fold_batchnorm};
pub use conv_depthwise::{DepthwiseConv, conv2d_depthwise};
pub use conv_gemm::{PackedConv, conv2d_packed};
pub use conv_transpose::{ConvTranspose2dParams, conv_transpose2d, conv_transpose2d_ref};
pub use conv_winograd::{WinogradConv, conv2d_winograd, conv2d_winograd_into};
pub use elementwise::{
    add, add_inplace, add_relu, batchnorm_scale_shift, concat_channels, flatten, gelu_ref, gelu1,
    hardsigmoid1, hardswish1, leaky_relu, leaky_relu_inplace, mul, mul_broadcast, relu,
    relu_inplace, relu1, relu6_1, scale_shift_channels, shortcut_a, sigmoid, sigmoid_inplace,
    sigmoid1, sigmoid1_fma, silu1, silu1_fma, softmax, softmax_axis1, tanh, tanh_inplace,
};
pub use linear::{linear, linear_ref};
pub use pool::{
    Pool2dParams, adaptive_avgpool2d, avgpool2d, avgpool2d_ref, global_avgpool, maxpool2d,
    maxpool2d_ref,
};
pub use resample::{
    Interpolation, ResizeParams, crop, crop_offset, crop_ref, pad, pad_ref, resize, resize_ref,
};

/// A conv's weights as the interpreter's fast kernels read them: Winograd F(4x4, 3x3) or
/// F(2x2, 3x3) where it applies ([`conv_winograd::applies`]) and is wanted, the depthwise
/// kernel for one channel per group ([`DepthwiseConv::applies`]), the packed GEMM otherwise;
/// or, where Winograd pays on several images only, both ([`FastConv::ByImages`]).
#[derive(Debug, Clone)]
pub enum FastConv {
    Gemm(PackedConv),
    Winograd(WinogradConv),
    Depthwise(DepthwiseConv),
    /// The GEMM conv for one image and the Winograd conv for two or more (a
    /// [`conv_winograd::Pick::several_only`]).
    ByImages(Box<(PackedConv, WinogradConv)>),
}

/// The kernel of a [`FastConv`] that runs a pass of a given number of images.
enum Chosen<'a> {
    Gemm(&'a PackedConv),
    Winograd(&'a WinogradConv),
    Depthwise(&'a DepthwiseConv),
}

impl FastConv {
    /// Prepare `w` (`[C_out, C_in/groups, K_h, K_w]`) and its bias for the fastest kernel;
    /// Winograd only where it applies, the output (`out_hw`, its height and width when known)
    /// is large enough, and `winograd` (the network's budget of extra weight bytes, `None` for
    /// none) still has room for it; otherwise the GEMM, packed for the output's width on `isa`
    /// (the instruction set the budget, when given, was made for too).
    pub fn new(
        w: ndarray::ArrayView4<f32>,
        bias: Option<ndarray::ArrayView1<f32>>,
        p: Conv2dParams,
        winograd: Option<&mut conv_winograd::Budget>,
        out_hw: Option<(u64, u64)>,
        isa: crate::machine::simd::Isa,
    ) -> FastConv {
        let (c_out, cin_g, kh, kw) = w.dim();
        let pixels = out_hw.map(|(h, w)| h.saturating_mul(w));
        let pick = winograd.and_then(|b| b.take(&p, [kh, kw], cin_g * p.groups, c_out, pixels));
        let gemm = || PackedConv::for_width(w, bias, p, out_hw.map(|(_, w)| w), isa);
        match pick {
            Some(pick) if pick.several_only => {
                FastConv::ByImages(Box::new((gemm(), WinogradConv::new(w, bias, p, pick.tile))))
            }
            Some(pick) => FastConv::Winograd(WinogradConv::new(w, bias, p, pick.tile)),
            None if DepthwiseConv::applies(w.dim(), p.groups) => {
                FastConv::Depthwise(DepthwiseConv::new(w, bias, p))
            }
            None => FastConv::Gemm(gemm()),
        }
    }

    /// This conv (of weights `w` and `bias`) as [`FastConv::run_maxpool`] runs it fastest
    /// with a max pool fused after it: a GEMM conv packed for
    /// [`conv_gemm::pooled_width`] on `isa`; any other as it is.
    pub fn before_max_pool(
        self,
        w: ndarray::ArrayView4<f32>,
        bias: Option<ndarray::ArrayView1<f32>>,
        isa: crate::machine::simd::Isa,
    ) -> FastConv {
        match self {
            FastConv::Gemm(c) if c.width() != conv_gemm::pooled_width(isa) => FastConv::Gemm(
                PackedConv::with_panels(w, bias, c.params(), conv_gemm::pooled_width(isa)),
            ),
            conv => conv,
        }
    }

    /// The kernel that runs a pass of `images` images: for [`FastConv::ByImages`] its GEMM
    /// conv on one image and its Winograd conv on more.
    fn chosen(&self, images: usize) -> Chosen<'_> {
        match self {
            FastConv::Gemm(c) => Chosen::Gemm(c),
            FastConv::Winograd(c) => Chosen::Winograd(c),
            FastConv::Depthwise(c) => Chosen::Depthwise(c),
            FastConv::ByImages(both) if images > 1 => Chosen::Winograd(&both.1),
            FastConv::ByImages(both) => Chosen::Gemm(&both.0),
        }
    }

    /// Multiply-adds per output value: the reduction length `C_in/groups * K_h * K_w`.
    pub fn taps(&self) -> usize {
        match self {
            FastConv::Gemm(c) => c.taps(),
            FastConv::Winograd(c) => c.taps(),
            FastConv::Depthwise(c) => c.taps(),
            FastConv::ByImages(both) => both.0.taps(),
        }
    }

    /// The name of the kernel that runs a pass of `images` images: `winograd4` or `winograd2`
    /// (by output tile), `depthwise` or `gemm`.
    pub fn kind(&self, images: usize) -> &'static str {
        match self.chosen(images) {
            Chosen::Gemm(_) => "gemm",
            Chosen::Winograd(c) if c.tile() == 4 => "winograd4",
            Chosen::Winograd(_) => "winograd2",
            Chosen::Depthwise(_) => "depthwise",
        }
    }

    /// `act(conv(x, w) + bias + residual)`, on `pool` (see [`conv2d_packed`] and
    /// [`conv2d_winograd`] for shapes and preconditions), its output in memory from `spare`
    /// where it has some (the same bits either way). The GEMM and depthwise convs apply `act`
    /// in their output pass; the Winograd conv applies its ReLU there and a cap after.
    pub fn run(
        &self,
        x: ndarray::ArrayView4<f32>,
        residual: Option<ndarray::ArrayView4<f32>>,
        act: Act,
        isa: crate::machine::simd::Isa,
        pool: Option<&rayon::ThreadPool>,
        spare: Option<&mut Spare>,
    ) -> ndarray::Array4<f32> {
        match self.chosen(x.dim().0) {
            Chosen::Gemm(c) => conv_gemm::conv(x, c, residual, None, act, isa, pool, spare),
            Chosen::Winograd(c) => capped(
                conv_winograd::conv(x, c, residual, None, act.relu, isa, pool, spare),
                act,
            ),
            Chosen::Depthwise(c) => on(pool, || {
                conv_depthwise::depthwise(x, c, residual, act, isa, spare)
            }),
        }
    }

    /// `maxpool(act(conv(x) + bias))` with the max pool `pool_p`: for a GEMM conv with a ReLU
    /// or none, `conv_gemm::conv2d_packed_maxpool`, which pools each band of the conv's rows
    /// as it computes them; otherwise the conv and then [`maxpool2d`]. The same bits.
    pub fn run_maxpool(
        &self,
        x: ndarray::ArrayView4<f32>,
        pool_p: &Pool2dParams,
        act: Act,
        isa: crate::machine::simd::Isa,
        pool: Option<&rayon::ThreadPool>,
        spare: Option<&mut Spare>,
    ) -> ndarray::Array4<f32> {
        match self.chosen(x.dim().0) {
            Chosen::Gemm(c) if act.cap.is_none() => {
                conv_gemm::conv2d_packed_maxpool(x, c, pool_p, act.relu, isa, pool, spare)
            }
            _ => {
                let y = self.run(x, None, act, isa, pool, spare);
                on(pool, || maxpool2d(y.view(), pool_p))
            }
        }
    }

    /// [`FastConv::run`] with a residual the caller no longer needs, which the GEMM and
    /// Winograd convs write their output over where they can
    /// ([`conv_gemm::conv2d_packed_into`], [`conv2d_winograd_into`]); the same bits.
    pub fn run_into(
        &self,
        x: ndarray::ArrayView4<f32>,
        residual: ndarray::Array4<f32>,
        act: Act,
        isa: crate::machine::simd::Isa,
        pool: Option<&rayon::ThreadPool>,
        spare: Option<&mut Spare>,
    ) -> ndarray::Array4<f32> {
        match self.chosen(x.dim().0) {
            Chosen::Gemm(c) => conv_gemm::conv(x, c, None, Some(residual), act, isa, pool, spare),
            Chosen::Winograd(c) => capped(
                conv_winograd::conv(x, c, None, Some(residual), act.relu, isa, pool, spare),
                act,
            ),
            Chosen::Depthwise(c) => on(pool, || {
                conv_depthwise::depthwise(x, c, Some(residual.view()), act, isa, spare)
            }),
        }
    }
}

/// `y` with `act`'s cap applied after the fact (its ReLU already was), for a conv whose output
/// pass applies only the ReLU.
fn capped(mut y: ndarray::Array4<f32>, act: Act) -> ndarray::Array4<f32> {
    if act.cap.is_some() {
        y.mapv_inplace(|v| act.apply(v));
    }
    y
}

/// The memory of values a run no longer reads, kept for the next convs' outputs.
///
/// A conv writes every value of its output, so a fresh output need not be zeroed first: taken
/// from a dead value, its stale values are overwritten, never read. Zeroing it was a serial
/// pass over every output before the conv's threads started (on ResNet-50, 1% of the run's
/// CPU time, all of it on one thread), and it left the whole output in the zeroing core's
/// cache for the other core's tasks to take back. The largest buffers are kept: at most
/// [`SPARE_BUFFERS`] of them, or, where the run's largest value is known
/// ([`Spare::within`]), as many as fit in [`SPARE_SHARE`] times its size (at most
/// [`SPARE_MOST`]): memory the allocator would otherwise have handed to the next allocation.
/// A program keeps them from one run to the next (`Program::take_spare`), so that the first
/// convs of a run, before any value has died, find memory too.
#[derive(Debug)]
pub struct Spare {
    buffers: Vec<Vec<f32>>,
    /// Most buffers kept.
    most: usize,
    /// Most values kept, all buffers together.
    values: usize,
}

impl Default for Spare {
    fn default() -> Spare {
        Spare {
            buffers: Vec::new(),
            most: SPARE_BUFFERS,
            values: usize::MAX,
        }
    }
}

/// Most dead values a [`Spare`] keeps where the run's largest value is not known.
pub const SPARE_BUFFERS: usize = 2;

/// How many times the run's largest value the buffers of a [`Spare::within`] may hold
/// together. ResNet-50 at batch 1 (Intel Xeon, AVX-512, 2 threads), kept from run to run:
/// every run zeroed 8.4 MB of fresh outputs (seven) with two buffers kept, 4.8 MB (two) with
/// twice the largest value, none with three times; the run took about 0.4 ms less with three
/// times than with twice (two programs alternated in one process, both orders, 2026-12-05).
pub const SPARE_SHARE: usize = 3;

/// Most dead values a [`Spare::within`] keeps.
pub const SPARE_MOST: usize = 8;

/// Fewest values of a buffer worth keeping (smaller ones cost little to zero).
const SPARE_MIN: usize = 1 << 14;

impl Spare {
    /// A spare for a run whose largest value has `largest` values: up to [`SPARE_MOST`]
    /// buffers of at most [`SPARE_SHARE`] times `largest` values together, each at most
    /// `largest`. The buffers of `self` that fit are kept.
    pub fn within(self, largest: usize) -> Spare {
        let mut spare = Spare {
            buffers: Vec::new(),
            most: SPARE_MOST,
            values: largest.saturating_mul(SPARE_SHARE),
        };
        for buffer in self.buffers {
            if buffer.len() <= largest {
                spare.keep(buffer);
            }
        }
        spare
    }

    /// Keeps `value`'s memory, when it is one contiguous buffer worth keeping, in place of the
    /// smallest kept ones if the spare is full.
    pub fn give(&mut self, value: ndarray::ArrayD<f32>) {
        if !value.is_standard_layout() || value.len() < SPARE_MIN {
            return;
        }
        let (buffer, offset) = value.into_raw_vec_and_offset();
        if offset.unwrap_or(0) != 0 {
            return;
        }
        self.keep(buffer);
    }

    /// Keeps `other`'s buffers too (the largest that fit, as [`Spare::give`] keeps them).
    pub fn absorb(&mut self, other: Spare) {
        for buffer in other.buffers {
            self.keep(buffer);
        }
    }

    /// The number of buffers kept.
    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    /// Whether no buffer is kept.
    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }

    /// The values of all kept buffers together.
    pub fn values(&self) -> usize {
        self.buffers.iter().map(Vec::len).sum()
    }

    /// The values of the largest kept buffer (0 when none is kept).
    pub fn largest(&self) -> usize {
        self.buffers.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Keeps `buffer`, then drops the smallest kept ones until the spare is within its limits.
    fn keep(&mut self, buffer: Vec<f32>) {
        self.buffers.push(buffer);
        while self.buffers.len() > self.most || self.values() > self.values {
            let Some(i) = (0..self.buffers.len()).min_by_key(|&i| self.buffers[i].len()) else {
                break;
            };
            self.buffers.swap_remove(i);
        }
    }

    /// An array of `shape` for a kernel that writes every one of its values: the smallest
    /// kept buffer that holds them (its values stale, the rest of it handed back to the
    /// allocator, so that a value never holds more memory than its size), else zeros.
    pub(crate) fn output(&mut self, shape: (usize, usize, usize, usize)) -> ndarray::Array4<f32> {
        match self.take(shape.0 * shape.1 * shape.2 * shape.3) {
            Some(buffer) => {
                ndarray::Array4::from_shape_vec(shape, buffer).expect("the buffer holds the shape")
            }
            None => zeros(shape),
        }
    }

    /// The smallest kept buffer that holds `len` values, cut to `len` (its values stale, the
    /// rest of it handed back to the allocator), if one does.
    pub(crate) fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let i = (0..self.buffers.len())
            .filter(|&i| self.buffers[i].len() >= len)
            .min_by_key(|&i| self.buffers[i].len())?;
        let mut buffer = self.buffers.swap_remove(i);
        buffer.truncate(len);
        buffer.shrink_to_fit();
        Some(buffer)
    }
}

/// `dst.copy_from_slice(src)` in vector-wide steps (16 values, or 8, the last step
/// overlapping the one before), so that a short row (a 14x14 map's, a Winograd tile row's)
/// costs no library call.
///
/// # Panics
/// If `src` is shorter than `dst`.
#[inline(always)]
pub(super) fn copy_row(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn by<const W: usize>(dst: &mut [f32], src: &[f32]) {
        steps::<W>(
            dst.len(),
            #[inline(always)]
            |at| dst[at..at + W].copy_from_slice(&src[at..at + W]),
        );
    }
    match dst.len() {
        n if n >= 16 => by::<16>(dst, src),
        n if n >= 8 => by::<8>(dst, src),
        _ => by::<1>(dst, src),
    }
}

/// `dst.fill(0.0)` in steps as [`copy_row`] takes them.
#[inline(always)]
pub(super) fn zero_row(dst: &mut [f32]) {
    #[inline(always)]
    fn by<const W: usize>(dst: &mut [f32]) {
        steps::<W>(
            dst.len(),
            #[inline(always)]
            |at| dst[at..at + W].copy_from_slice(&[0.0; W]),
        );
    }
    match dst.len() {
        n if n >= 16 => by::<16>(dst),
        n if n >= 8 => by::<8>(dst),
        _ => by::<1>(dst),
    }
}

/// Calls `f(at)` for `at = 0, W, ...` and a last `n - W` (so every value of `0..n` is
/// covered, the last step overlapping the one before); nothing when `n < W`.
#[inline(always)]
pub(super) fn steps<const W: usize>(n: usize, mut f: impl FnMut(usize)) {
    if n < W {
        return;
    }
    let mut at = 0;
    while at + W < n {
        f(at);
        at += W;
    }
    f(n - W);
}

/// An output array of `shape` for a kernel that writes every value: from `spare` when given.
fn output(spare: Option<&mut Spare>, shape: (usize, usize, usize, usize)) -> ndarray::Array4<f32> {
    match spare {
        Some(spare) => spare.output(shape),
        None => zeros(shape),
    }
}

/// A fresh output of `shape`, zeros, whose memory starts on a cache line under the binary's
/// allocator (see [`crate::machine::memory::zeros`]).
pub(super) fn zeros(shape: (usize, usize, usize, usize)) -> ndarray::Array4<f32> {
    let len = shape.0 * shape.1 * shape.2 * shape.3;
    ndarray::Array4::from_shape_vec(shape, crate::machine::memory::zeros(len))
        .expect("the vector holds the shape")
}

/// Whether the caller runs on a worker pool of several threads (as `run` calls the kernels
/// with more than one thread), whose threads a parallel loop would then share.
pub fn on_worker_pool() -> bool {
    rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1
}

/// `f` on `pool` (whose threads its parallel loops then share), or here without one.
fn on<R: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> R + Send) -> R {
    match pool {
        Some(pool) => pool.install(f),
        None => f(),
    }
}

/// Whether [`for_each_banded_from`] times each thread's tasks ([`time_threads`]).
static TIME_THREADS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Nanoseconds, summed over the calls of [`for_each_banded_from`] since the last
/// [`take_uneven`] while [`time_threads`] is on: each call's busiest thread's time in its
/// tasks less the mean over its threads.
static UNEVEN_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Starts (`true`) or stops timing how evenly the convs share their tasks out among the
/// pool's threads ([`take_uneven`]): two clock reads a task while on. For the `steps` bench
/// (`RESNETC_BALANCE`).
#[doc(hidden)]
pub fn time_threads(on: bool) {
    TIME_THREADS.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// The time the pool's work went unevenly since the last call, while [`time_threads`] is on:
/// summed over the parallel conv passes, the busiest thread's time in its tasks less the
/// mean thread's (the time a thread is left waiting for the busiest, over the threads).
#[doc(hidden)]
pub fn take_uneven() -> std::time::Duration {
    std::time::Duration::from_nanos(UNEVEN_NS.swap(0, std::sync::atomic::Ordering::Relaxed))
}

/// Runs `f` on every task on `pool`'s threads (in order on this thread without one), keeping
/// each thread on the same part of the work from one call to the next. The tasks, in order,
/// are cut into one contiguous range per thread; thread `i` runs range `i` front to back, then
/// helps the others from the back of their ranges (a thread the machine slows down loses its
/// tail to the others). Tasks given in image, then position order (as the convs give them
/// where the activations weigh at least as much as the weights) thus leave each thread
/// computing the same rows of every layer's output, in proportion to the layer's height, so
/// that what a thread reads was mostly written by itself and is still in its core's cache.
/// Work-stealing alone hands each half of a layer to whichever thread comes first, and a layer
/// then reads about half its input from the other core. The calling thread, its own range
/// done and the others' tails taken, waits for the last tasks spinning.
pub(crate) fn for_each_banded<T: Send>(
    pool: Option<&rayon::ThreadPool>,
    tasks: Vec<T>,
    f: impl Fn(T) + Sync,
) {
    for_each_banded_from(pool, tasks, 1, f)
}

/// How long a thread of [`for_each_banded_from`] waits, its own range done, before it takes
/// the tasks of another range that it held back from (fewer than `left` untaken): the mean
/// time of its own tasks divided by this. Where both threads run at one speed, the range's
/// own thread takes them within that time (it is at most a task behind), and they cost no
/// more than before; where the host slows one core (on the shared AMD EPYC, often by 20-60%
/// for a second or so), the faster thread takes the slower one's last Winograd block after
/// half a block instead of waiting out the slower thread's whole last two. Measured on the
/// AMD EPYC (Zen 4), AVX2, 2 threads, ResNet-50, with and without the wait alternated run
/// by run in one process (`steps`, 20 runs each, eight processes): in the slowed processes
/// its eleven Winograd convs took 9.79, 9.63, 10.41 and 9.61 ms against 10.84, 9.71, 10.56
/// and 11.33 (runs 47.60, 47.96, 48.37 and 47.13 against 48.71, 48.65, 48.45 and 48.90), in
/// the quiet ones 7.58, 7.44, 7.56 and 7.70 against 7.62, 7.45, 7.54 and 7.65. A quarter of
/// a task made quiet runs slower (those convs 7.99-8.12 ms against 7.51-7.86 at a half); a
/// whole task ran level with a half in quiet processes (none slowed while measured).
const STEAL_WAIT_DIVISOR: u32 = 2;

/// [`for_each_banded`], where a thread takes tasks from another's range only while at least
/// `left` of them are untaken, or once it has waited [`STEAL_WAIT_DIVISOR`]'s part of a task
/// for that range's thread to take them: for tasks that cost a thread more when they come
/// from another range than from its own (Winograd's, which then transform their tiles again).
pub(crate) fn for_each_banded_from<T: Send>(
    pool: Option<&rayon::ThreadPool>,
    tasks: Vec<T>,
    left: usize,
    f: impl Fn(T) + Sync,
) {
    use std::sync::Mutex;
    let threads = pool.map_or(1, |p| p.current_num_threads());
    let Some(pool) = pool.filter(|_| threads > 1 && tasks.len() > 1) else {
        tasks.into_iter().for_each(f);
        return;
    };
    let n = tasks.len();
    let slots: Vec<Mutex<Option<T>>> = tasks.into_iter().map(|t| Mutex::new(Some(t))).collect();
    // Range `i`: the tasks `lo..hi` of thread `i` that no thread has taken yet.
    let ranges: Vec<Mutex<(usize, usize)>> = (0..threads)
        .map(|i| Mutex::new((n * i / threads, n * (i + 1) / threads)))
        .collect();
    // Whether a job has begun on range `i` as its own: it then takes every task left there,
    // so that another thread may leave it the last `left - 1` (before, a thread that takes
    // from range `i` takes all it finds: its owner may never come).
    let started: Vec<std::sync::atomic::AtomicBool> = (0..threads)
        .map(|_| std::sync::atomic::AtomicBool::new(false))
        .collect();
    // `Err(true)` where tasks are left that this thread may not take (yet).
    let take = |i: usize, front: bool, force: bool| -> Result<usize, bool> {
        let mut r = ranges[i].lock().unwrap_or_else(|e| e.into_inner());
        let (lo, hi) = *r;
        let owned = started[i].load(std::sync::atomic::Ordering::Acquire);
        if lo < hi && (front || force || hi - lo >= left || !owned) {
            *r = if front { (lo + 1, hi) } else { (lo, hi - 1) };
            Ok(if front { lo } else { hi - 1 })
        } else {
            Err(lo < hi)
        }
    };
    let finished = std::sync::atomic::AtomicUsize::new(0);
    // Each thread's time in its tasks, in nanoseconds, where timed (`time_threads`).
    let busy: Vec<std::sync::atomic::AtomicU64> =
        if TIME_THREADS.load(std::sync::atomic::Ordering::Relaxed) {
            (0..threads).map(|_| Default::default()).collect()
        } else {
            Vec::new()
        };
    let run = |j: usize, me: usize| {
        let _count = Finished(&finished);
        // Each index is taken once, so its slot still holds its task.
        let task = slots[j].lock().unwrap_or_else(|e| e.into_inner()).take();
        let start = busy.get(me).map(|_| std::time::Instant::now());
        task.into_iter().for_each(&f);
        if let (Some(start), Some(b)) = (start, busy.get(me)) {
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            b.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        }
    };
    // Each job works on the range of the thread that runs it, then on the others'. The
    // calling thread runs one job itself and, once every task is taken, any job no other
    // thread has started yet (which finds nothing left): it never waits for a thread slow to
    // wake up, as it would for a broadcast.
    let work = || {
        let me = rayon::current_thread_index().unwrap_or(0) % threads;
        started[me].store(true, std::sync::atomic::Ordering::Release);
        let begun = std::time::Instant::now();
        let mut own = 0u32;
        while let Ok(j) = take(me, true, false) {
            run(j, me);
            own += 1;
        }
        // Held back from another range's last tasks (fewer than `left`), a thread waits for
        // a part of what one of its own took (`STEAL_WAIT_DIVISOR`), then takes what is
        // still untaken there: that range's thread is behind by more than a task.
        let wait = (own > 0).then(|| begun.elapsed() / own / STEAL_WAIT_DIVISOR);
        for d in 1..threads {
            let i = (me + d) % threads;
            let mut held: Option<std::time::Instant> = None;
            loop {
                let force = match (wait, held) {
                    (Some(w), Some(since)) => since.elapsed() >= w,
                    _ => false,
                };
                match take(i, false, force) {
                    Ok(j) => {
                        run(j, me);
                        held = None;
                    }
                    Err(true) if wait.is_some() => {
                        held.get_or_insert_with(std::time::Instant::now);
                        // Between looks, off the range's lock, which its thread takes too.
                        for _ in 0..32 {
                            std::hint::spin_loop();
                        }
                    }
                    Err(_) => break,
                }
            }
        }
    };
    pool.scope(|s| {
        for _ in 1..threads {
            s.spawn(|_| work());
        }
        work();
        // Every task is taken by now, each running on some thread (or, with `left` above 1,
        // left to the thread that has begun its range, which takes them): wait for the last
        // spinning rather than in the scope, where a thread that waits long goes to sleep and
        // takes tens of microseconds to wake (more on a busy host). Measured on the AMD EPYC
        // (Zen 4, 2 threads, alternated run by run in one process, both orders): a 3x3 conv of 128
        // channels on a 28x28 map 0.741 and 0.671 ms against 0.773 and 0.689, ResNet-18 15.59
        // and 16.89 ms against 15.90 and 16.96 (AVX2: 23.07 and 21.07 against 23.29 and
        // 22.55), ResNet-50 46.76 and 52.53 against 47.01 and 53.74. Before, the thread that
        // called took 37-75 µs past the longest task to return (median, timed per call).
        let mut spins = 0u32;
        while finished.load(std::sync::atomic::Ordering::Acquire) < n {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                std::thread::yield_now();
            }
        }
    });
    if !busy.is_empty() {
        let times: Vec<u64> = busy
            .iter()
            .map(|b| b.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        let most = times.iter().copied().max().unwrap_or(0);
        let mean = times.iter().sum::<u64>() / times.len() as u64;
        UNEVEN_NS.fetch_add(most - mean, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Counts a task of [`for_each_banded`] finished when dropped, also when the task panics (so
/// that the wait for the last task ends, and the scope passes the panic on).
struct Finished<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}
