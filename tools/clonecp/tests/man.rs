//! The man page documents every long option of --help, has every section, and is clean for
//! groff.

#[test]
fn man_page_documents_every_option() {
    testkit::check_man_page(env!("CARGO_BIN_EXE_clonecp"), testkit::man_page!("clonecp"));
}

#[test]
fn man_page_describes_input_and_output() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../man/clonecp.1"))
        .expect("man/clonecp.1");
    assert!(page.contains(".SH INPUT AND OUTPUT"));
}
