//! The docs' generated sections: each lies between two markers in a file under `docs/`,
//! and a test fails when it differs from what the code generates.
//! `WRITE_DOCS=1 cargo test -p gateway-wire` rewrites them.

/// Fails when the section `name` of `file` (relative to the repository) is not `content`;
/// rewrites it first under `WRITE_DOCS`.
pub fn assert_current(file: &str, name: &str, source: &str, content: &str) {
    let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
    let begin = format!("<!-- {name}: generated from {source} -->");
    let end = format!("<!-- end of {name} -->");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (head, rest) = text
        .split_once(&begin)
        .unwrap_or_else(|| panic!("{file} lacks {begin}"));
    let (_, tail) = rest
        .split_once(&end)
        .unwrap_or_else(|| panic!("{file} lacks {end}"));
    let current = format!("{head}{begin}\n{content}{end}{tail}");
    if std::env::var_os("WRITE_DOCS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    assert!(
        text == current,
        "{file} is stale: run `WRITE_DOCS=1 cargo test -p gateway-wire`"
    );
}
