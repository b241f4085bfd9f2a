//! `resnetc graph FILE`: Graphviz output.

use super::CliError;

/// Draw a network as a Graphviz graph.
#[derive(clap::Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    pub source: super::SourceArgs,
}

pub fn run(_a: &GraphArgs) -> Result<i32, CliError> {
    Err(CliError::io("not implemented yet"))
}
