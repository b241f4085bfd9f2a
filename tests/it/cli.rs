//! CLI behaviour
