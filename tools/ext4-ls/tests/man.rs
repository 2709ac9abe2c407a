#[test]
fn man_page_documents_every_option() {
    testkit::check_man_page(env!("CARGO_BIN_EXE_ext4-ls"), testkit::man_page!("ext4-ls"));
}
