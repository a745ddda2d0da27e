//! The `k8s-envelope` command line (placeholder until the CLI lands).
fn main() {}
