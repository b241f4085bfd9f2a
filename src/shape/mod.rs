//! Shape inference: the NCHW shape of every value, and a diagnostic for every op whose
//! operands do not fit.

pub mod formula;
