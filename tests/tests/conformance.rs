//! Every scenario against every proxy: the three library adapters and the binary.

switchyard_tests::conformance_suite! {
    async_std => switchyard_tests::proxies::AsyncStd,
    tokio => switchyard_tests::proxies::Tokio,
    blocking => switchyard_tests::proxies::Blocking,
    binary => switchyard_tests::proxies::Binary,
}
