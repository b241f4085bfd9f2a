//! Graphviz DOT (placeholder, replaced by the graph export).
