#[test]
fn man_page_documents_every_option() {
    testkit::check_man_page(
        concat!(env!("CARGO_MANIFEST_DIR"), "/work-seed"),
        testkit::man_page!("work-seed"),
    );
}

#[test]
fn the_summary_man_page_documents_every_option() {
    testkit::check_man_page(
        env!("CARGO_BIN_EXE_work-seed-summary"),
        testkit::man_page!("work-seed-summary"),
    );
}

#[test]
fn the_helper_man_page_documents_every_option() {
    testkit::check_man_page(
        env!("CARGO_BIN_EXE_work-seed-fs"),
        testkit::man_page!("work-seed-fs"),
    );
}
