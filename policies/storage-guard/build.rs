//! The guest's shadow stack: 64 KiB instead of Rust's 1 MiB wasm default (wasm-ld `-z stack-size`).
//!
//! The webhook resets every byte range of linear memory an evaluation may have dirtied; with
//! `PAGEMAP_SCAN` it walks the page-table entries of the whole accessible memory, so the 1 MiB
//! stack (of which an evaluation touches a few KiB) was half of what it walked per request
//! (BENCHMARKS.md, issue 19). 64 KiB holds the deepest request the guest's JSON decoder accepts
//! (serde_json's 128 levels; `tests/tests/policies_wasm.rs` evaluates one). A stack overflow in a
//! wasm32 guest is a trap (the stack sits below the data, at the bottom of memory), never a silent
//! overwrite: the webhook answers it as a policy failure.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size=65536");
    }
}
