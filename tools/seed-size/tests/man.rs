#[test]
fn man_page_documents_every_option() {
    testkit::check_man_page(
        env!("CARGO_BIN_EXE_seed-size"),
        testkit::man_page!("seed-size"),
    );
}
