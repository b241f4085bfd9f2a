//! The built-in ops as the language sees them: their argument lists, defaults and how bound
//! arguments become an [`Op`].

use crate::ir::op::{BatchNorm, Conv, Linear, Op, Pool, ShortcutA};

#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Kind {
    Int,
    Bool,
    Float,
    /// An integer, or stated channels `c_in -> c_out`.
    Channels,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Int => "an integer",
            Kind::Bool => "a boolean",
            Kind::Float => "a number",
            Kind::Channels => "a channel count (`64` or `4 -> 3`)",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Fallback {
    Required,
    /// Optional with no value (the op decides, e.g. a pool's stride defaults to its kernel).
    Absent,
    Int(i64),
    Bool(bool),
    Float(f64),
}

#[derive(Copy, Clone, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Fallback,
    /// Whether it may be given by position (only the leading ones are).
    pub positional: bool,
}

const fn p(name: &'static str, kind: Kind, default: Fallback, positional: bool) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        default,
        positional,
    }
}

use Fallback::{Absent, Required};
use Kind::*;

const CONV: &[ParamSpec] = &[
    p("channels", Channels, Required, true),
    p("k", Int, Required, false),
    p("stride", Int, Fallback::Int(1), false),
    p("pad", Int, Fallback::Int(0), false),
    p("dilation", Int, Fallback::Int(1), false),
    p("groups", Int, Fallback::Int(1), false),
    p("bias", Bool, Fallback::Bool(false), false),
];
const BATCHNORM: &[ParamSpec] = &[p("channels", Kind::Int, Absent, true)];
const LINEAR: &[ParamSpec] = &[
    p("channels", Channels, Required, true),
    p("bias", Kind::Bool, Fallback::Bool(true), false),
];
const MAXPOOL: &[ParamSpec] = &[
    p("k", Kind::Int, Required, false),
    p("stride", Kind::Int, Absent, false),
    p("pad", Kind::Int, Fallback::Int(0), false),
    p("ceil", Kind::Bool, Fallback::Bool(false), false),
];
const AVGPOOL: &[ParamSpec] = &[
    p("k", Kind::Int, Required, false),
    p("stride", Kind::Int, Absent, false),
    p("pad", Kind::Int, Fallback::Int(0), false),
    p("ceil", Kind::Bool, Fallback::Bool(false), false),
    p("count_pad", Kind::Bool, Fallback::Bool(true), false),
];
const LEAKY: &[ParamSpec] = &[p("slope", Kind::Float, Fallback::Float(0.01), true)];
const DROPOUT: &[ParamSpec] = &[p("p", Kind::Float, Fallback::Float(0.5), true)];
const SHORTCUT_A: &[ParamSpec] = &[
    p("channels", Kind::Int, Required, true),
    p("stride", Kind::Int, Fallback::Int(2), false),
];
const NONE: &[ParamSpec] = &[];

/// The built-in op names, for "did you mean" suggestions.
pub const OP_NAMES: &[&str] = &[
    "conv",
    "batchnorm",
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "softmax",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "flatten",
    "add",
    "mul",
    "concat",
    "identity",
    "dropout",
    "shortcut_a",
];

/// The argument list of a built-in op, or `None` if `name` is not one.
pub fn signature(name: &str) -> Option<&'static [ParamSpec]> {
    Some(match name {
        "conv" => CONV,
        "batchnorm" => BATCHNORM,
        "linear" => LINEAR,
        "maxpool" => MAXPOOL,
        "avgpool" => AVGPOOL,
        "leaky_relu" => LEAKY,
        "dropout" => DROPOUT,
        "shortcut_a" => SHORTCUT_A,
        "relu" | "sigmoid" | "tanh" | "softmax" | "global_avgpool" | "flatten" | "add" | "mul"
        | "concat" | "identity" => NONE,
        _ => return None,
    })
}

/// A bound argument value, after type checking.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Arg {
    Int(u64),
    Bool(bool),
    Float(f64),
    Channels(Option<u64>, u64),
}

/// Looks up bound arguments by name; a missing optional argument is `None`.
pub trait Args {
    fn get(&self, name: &str) -> Option<Arg>;

    fn int(&self, name: &str) -> u64 {
        match self.get(name) {
            Some(Arg::Int(v)) => v,
            _ => 0,
        }
    }
    fn opt_int(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Arg::Int(v)) => Some(v),
            _ => None,
        }
    }
    fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Arg::Bool(true)))
    }
    fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Arg::Float(v)) => v,
            _ => 0.0,
        }
    }
    fn channels(&self) -> (Option<u64>, u64) {
        match self.get("channels") {
            Some(Arg::Channels(i, o)) => (i, o),
            Some(Arg::Int(o)) => (None, o),
            _ => (None, 0),
        }
    }
}

/// Build the op from its checked arguments.
pub fn build(name: &str, a: &dyn Args) -> Op {
    match name {
        "conv" => {
            let (c_in, c_out) = a.channels();
            Op::Conv(Conv {
                c_in,
                c_out,
                kernel: a.int("k"),
                stride: a.int("stride"),
                pad: a.int("pad"),
                dilation: a.int("dilation"),
                groups: a.int("groups"),
                bias: a.bool("bias"),
            })
        }
        "batchnorm" => Op::BatchNorm(BatchNorm {
            c: a.opt_int("channels"),
        }),
        "linear" => {
            let (c_in, c_out) = a.channels();
            Op::Linear(Linear {
                c_in,
                c_out,
                bias: a.bool("bias"),
            })
        }
        "maxpool" | "avgpool" => {
            let kernel = a.int("k");
            let pool = Pool {
                kernel,
                stride: a.opt_int("stride").unwrap_or(kernel),
                pad: a.int("pad"),
                ceil_mode: a.bool("ceil"),
                count_include_pad: name == "avgpool" && a.bool("count_pad"),
            };
            if name == "maxpool" {
                Op::MaxPool(pool)
            } else {
                Op::AvgPool(pool)
            }
        }
        "leaky_relu" => Op::LeakyRelu {
            slope: a.float("slope"),
        },
        "dropout" => Op::Dropout { p: a.float("p") },
        "shortcut_a" => Op::ShortcutA(ShortcutA {
            c_out: a.int("channels"),
            stride: a.int("stride"),
        }),
        "relu" => Op::Relu,
        "sigmoid" => Op::Sigmoid,
        "tanh" => Op::Tanh,
        "softmax" => Op::Softmax,
        "global_avgpool" => Op::GlobalAvgPool,
        "flatten" => Op::Flatten,
        "add" => Op::Add,
        "mul" => Op::Mul,
        "concat" => Op::Concat,
        _ => Op::Identity,
    }
}

/// The smallest value an argument may take (`pad` may be 0; sizes must be positive).
pub fn min_value(op: &str, arg: &str) -> u64 {
    match (op, arg) {
        (_, "pad") => 0,
        _ => 1,
    }
}

/// Argument names users bring from PyTorch, and what they are called here.
pub fn alias(arg: &str) -> Option<&'static str> {
    Some(match arg {
        "kernel_size" | "kernel" | "kernel_shape" => "k",
        "padding" | "pads" => "pad",
        "strides" => "stride",
        "ceil_mode" => "ceil",
        "count_include_pad" => "count_pad",
        "out_channels" | "out_features" | "num_features" | "planes" => "channels",
        "negative_slope" => "slope",
        "group" => "groups",
        _ => return None,
    })
}

impl Args for Vec<(&'static str, Arg)> {
    fn get(&self, name: &str) -> Option<Arg> {
        self.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }
}
