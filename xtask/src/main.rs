//! `cargo xtask`: the project automation.
fn main() {}
