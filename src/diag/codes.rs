//! The stable error codes, grouped by phase, and their `resnetc explain` pages.
//!
//! E00xx syntax, E01xx names and lowering, W01xx lowering warnings, E02xx shapes,
//! E03xx weights and running. A code is never reused for another meaning; each has a page in
//! `src/diag/explain/CODE.md` (summary, an erroneous example, why, the fixed example).

use serde::{Serialize, Serializer};

macro_rules! codes {
    ($($variant:ident = $code:literal: $title:literal;)*) => {
        /// A stable diagnostic code.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as printed: `E0203`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            /// A one-line summary of what the code means.
            pub fn title(self) -> &'static str {
                match self {
                    $(Code::$variant => $title,)*
                }
            }

            /// The `explain` page, Markdown.
            pub fn page(self) -> &'static str {
                match self {
                    $(Code::$variant => include_str!(concat!("explain/", $code, ".md")),)*
                }
            }
        }
    };
}

codes! {
    SyntaxError = "E0001": "syntax error";
    NestingTooDeep = "E0002": "brackets nested too deep";
    IntegerTooLarge = "E0003": "integer literal too large";
    NotUtf8 = "E0004": "source is not UTF-8 text";
    NoNetwork = "E0101": "no network to compile";
    UnknownName = "E0102": "unknown name";
    UnknownFunction = "E0103": "unknown op or block";
    DuplicateDefinition = "E0104": "duplicate definition";
    MissingArgument = "E0105": "missing argument";
    UnknownArgument = "E0106": "unknown argument";
    DuplicateArgument = "E0107": "argument given twice";
    WrongType = "E0108": "value of the wrong type";
    RecursiveBlock = "E0109": "block instantiates itself";
    RepeatCount = "E0110": "repetition count out of range";
    WrongInputCount = "E0111": "wrong number of tensor inputs";
    DuplicateLayer = "E0112": "two layers with the same path";
    Arithmetic = "E0113": "integer arithmetic error";
    Structure = "E0114": "misplaced or missing input/output";
    TooLarge = "E0115": "network too large";
    BadValue = "E0116": "argument value out of range";
    BlockDepth = "E0117": "blocks nested too deep";
    SizeNotKnown = "E0118": "size read in an expression is not a number";
    UnusedValue = "W0101": "value computed but never used";
    UnusedBlock = "W0102": "block never used";
    FlattenSpatial = "W0103": "flatten of a spatial map straight into linear";
    SwappedInput = "W0104": "inputs with H and W swapped";
    LinearDominates = "W0105": "one linear layer holds most of the parameters";
    Rank = "E0201": "tensor of the wrong rank";
    StatedChannels = "E0202": "stated channels or features differ from the input";
    AddMismatch = "E0203": "shape mismatch in residual add";
    ConcatMismatch = "E0204": "shape mismatch in concat";
    Groups = "E0205": "groups do not divide the channels";
    WindowTooLarge = "E0206": "kernel larger than its padded input";
    GateMismatch = "E0207": "gate shape does not fit in mul";
    ShortcutChannels = "E0208": "option-A shortcut cannot pad these channels";
    SizeOverflow = "E0209": "tensor size overflows";
    CropTooLarge = "E0210": "crop larger than its input";
    MissingWeights = "E0301": "weights missing for a layer";
    UnexpectedWeights = "E0302": "weights that match no layer";
    WeightShape = "E0303": "weights of the wrong shape";
    WeightDtype = "E0304": "weights of the wrong dtype";
}

impl Code {
    /// Parse `E0203` (any case).
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The explain page for a code given as text, or `None` if there is no such code.
pub fn explain(code: &str) -> Option<String> {
    let code = Code::parse(code)?;
    Some(format!(
        "{}: {}\n\n{}",
        code.as_str(),
        code.title(),
        code.page()
    ))
}
