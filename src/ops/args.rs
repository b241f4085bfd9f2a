//! How an op's arguments are declared (kind, default, position, PyTorch aliases, smallest
//! value) and read back once lowering has bound and checked them.
//!
//! Declarations are data in each registry entry; lowering (`ir::lower`) checks a call against
//! them and hands the bound values to the entry's `build`, which cannot see an unchecked value.

/// What an argument accepts.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Kind {
    Int,
    Bool,
    /// A finite number (an integer is accepted too).
    Float,
    /// A probability in `[0, 1)`.
    Prob,
    /// An integer, or stated channels `c_in -> c_out`.
    Channels,
    /// A list of this many integers, `[h, w]`; for two or four, one integer `s` also means
    /// `[s, s]` (`[s, s, s, s]`).
    Ints(usize),
    /// Another tensor in scope (`like: skip`): it becomes the op's last operand.
    Tensor,
    /// One of these words, written bare (`mode: bilinear`).
    Choice(&'static [&'static str]),
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Int => "an integer",
            Kind::Bool => "a boolean",
            Kind::Float | Kind::Prob => "a number",
            Kind::Channels => "a channel count (`64` or `4 -> 3`)",
            Kind::Ints(2) => "a size (`7` or `[h, w]`)",
            Kind::Ints(4) => "a padding (`1` or `[left, right, top, bottom]`)",
            Kind::Ints(_) => "a list of integers",
            Kind::Tensor => "a tensor",
            Kind::Choice(_) => "one of the words listed in the usage",
        }
    }

    /// The placeholder a usage line shows for a required argument.
    pub fn placeholder(self) -> &'static str {
        match self {
            // A size takes one integer for both axes as well as `[h, w]`.
            Kind::Int | Kind::Channels | Kind::Ints(2) => "INT",
            Kind::Bool => "BOOL",
            Kind::Float | Kind::Prob => "NUMBER",
            Kind::Ints(_) => "[INT, ...]",
            Kind::Tensor => "TENSOR",
            Kind::Choice(_) => "WORD",
        }
    }
}

/// What an argument is when the call does not give it.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Fallback {
    Required,
    /// Optional with no value (the op decides, e.g. a pool's stride defaults to its kernel).
    Absent,
    Int(i64),
    Bool(bool),
    Float(f64),
}

/// One declared argument of an op.
#[derive(Copy, Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Fallback,
    /// Whether it may be given by position (only the leading ones are).
    pub positional: bool,
    /// The smallest integer value (sizes 1, paddings 0).
    pub min: u64,
    /// Names users bring from PyTorch; suggested, never accepted.
    pub aliases: &'static [&'static str],
}

impl Param {
    /// A named, optional size argument (at least 1).
    pub const fn int(name: &'static str, default: Fallback) -> Param {
        Param {
            name,
            kind: Kind::Int,
            default,
            positional: false,
            min: 1,
            aliases: &[],
        }
    }

    pub const fn bool(name: &'static str, default: bool) -> Param {
        Param {
            kind: Kind::Bool,
            ..Param::int(name, Fallback::Bool(default))
        }
    }

    pub const fn float(name: &'static str, default: f64) -> Param {
        Param {
            kind: Kind::Float,
            ..Param::int(name, Fallback::Float(default))
        }
    }

    pub const fn kind(self, kind: Kind) -> Param {
        Param { kind, ..self }
    }

    pub const fn positional(self) -> Param {
        Param {
            positional: true,
            ..self
        }
    }

    pub const fn min(self, min: u64) -> Param {
        Param { min, ..self }
    }

    pub const fn aliases(self, aliases: &'static [&'static str]) -> Param {
        Param { aliases, ..self }
    }
}

/// PyTorch's argument names, shared by the entries that take the argument.
pub mod alias {
    pub const K: &[&str] = &["kernel_size", "kernel", "kernel_shape"];
    pub const PAD: &[&str] = &["padding", "pads"];
    pub const STRIDE: &[&str] = &["strides"];
    pub const CEIL: &[&str] = &["ceil_mode"];
    pub const COUNT_PAD: &[&str] = &["count_include_pad"];
    pub const CHANNELS: &[&str] = &["out_channels", "out_features", "num_features", "planes"];
    pub const SLOPE: &[&str] = &["negative_slope"];
    pub const GROUPS: &[&str] = &["group"];
}

/// A bound argument value, after type and range checking.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Arg {
    Int(u64),
    Bool(bool),
    Float(f64),
    Channels(Option<u64>, u64),
    /// A list of integers: the first `len` of the array.
    Ints([u64; 4], usize),
    /// A tensor operand, appended to the op's operands.
    Tensor,
    /// The word chosen among a [`Kind::Choice`]'s.
    Choice(&'static str),
}

/// Bound arguments by name; a missing optional argument is `None`. Every declared argument
/// with a default is present, so the getters' zero values are never seen by a `build`.
pub struct Args(pub Vec<(&'static str, Arg)>);

impl Args {
    pub fn get(&self, name: &str) -> Option<Arg> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
    }

    pub fn int(&self, name: &str) -> u64 {
        self.opt_int(name).unwrap_or(0)
    }

    pub fn opt_int(&self, name: &str) -> Option<u64> {
        match self.get(name) {
            Some(Arg::Int(v)) => Some(v),
            _ => None,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Arg::Bool(true)))
    }

    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Some(Arg::Float(v)) => v,
            _ => 0.0,
        }
    }

    /// The list argument `name` (empty when absent).
    pub fn ints(&self, name: &str) -> Vec<u64> {
        match self.get(name) {
            Some(Arg::Ints(v, len)) => v[..len].to_vec(),
            _ => Vec::new(),
        }
    }

    /// A two-integer size argument, `[h, w]`.
    pub fn pair(&self, name: &str) -> [u64; 2] {
        self.opt_pair(name).unwrap_or([0, 0])
    }

    /// A two-integer size argument, `[h, w]`, when given; an integer default `s` is `[s, s]`.
    pub fn opt_pair(&self, name: &str) -> Option<[u64; 2]> {
        match self.get(name) {
            Some(Arg::Ints([h, w, ..], 2)) => Some([h, w]),
            Some(Arg::Int(s)) => Some([s, s]),
            _ => None,
        }
    }

    /// The word of a [`Kind::Choice`] argument (empty when absent).
    pub fn choice(&self, name: &str) -> &'static str {
        match self.get(name) {
            Some(Arg::Choice(w)) => w,
            _ => "",
        }
    }

    /// `(stated input, output)` of a `channels` argument.
    pub fn channels(&self) -> (Option<u64>, u64) {
        match self.get("channels") {
            Some(Arg::Channels(i, o)) => (i, o),
            Some(Arg::Int(o)) => (None, o),
            _ => (None, 0),
        }
    }
}

/// Arguments that are each valid but do not fit together (a pool padding larger than half its
/// window): lowering reports it at the call as E0116.
#[derive(Clone, Debug, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub label: String,
    pub note: Option<&'static str>,
    pub help: Option<String>,
}
