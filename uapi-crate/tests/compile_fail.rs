//! What must not compile: a batch's borrowed buffers and fds cannot die,
//! be used, or escape while the batch holds them; `OwnedOp::recv` takes no
//! `MSG_TRUNC`. Each `tests/compile-fail/*.rs` must fail to build with the
//! error its `.stderr` holds (`TRYBUILD=overwrite cargo test --test
//! compile_fail` writes them anew after a compiler upgrade changes the
//! wording; check the diff).

mod common;

#[test]
fn borrows_cannot_escape_a_batch() {
    // trybuild drives cargo: it works where cargo runs the test, not in the
    // VM, which runs test binaries by themselves.
    if std::env::var_os("CARGO").is_none() {
        common::skipped(&common::test_name(), "compile-fail tests need cargo (run them with cargo test)");
        return;
    }
    trybuild::TestCases::new().compile_fail("tests/compile-fail/*.rs");
}
