//! The contract's reference in `docs/plugins.md` is checked against `wit/plugin.wit`: every
//! function the page lists is in the WIT, under the same interface, and every function of the
//! WIT is on the page.

use std::collections::BTreeSet;

/// (interface, function) of every `name: func(` in the WIT, resource methods included.
fn wit_functions(wit: &str) -> BTreeSet<(String, String)> {
    let mut interface = None;
    let mut found = BTreeSet::new();
    for line in wit.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("interface ") {
            interface = rest.split_whitespace().next().map(str::to_string);
        } else if line.starts_with("world ") {
            interface = None;
        } else if let (Some(interface), Some((name, _))) = (&interface, line.split_once(": func("))
        {
            if !name.starts_with("//") {
                found.insert((interface.clone(), name.trim().to_string()));
            }
        }
    }
    found
}

/// (interface, function) of every row of the page's contract table.
fn documented_functions(page: &str) -> BTreeSet<(String, String)> {
    let table = page
        .split("## The contract")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a contract section");
    let mut found = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let first_code = |cell: &str| cell.split('`').nth(1).map(str::to_string);
        if let (Some(interface), Some(function)) = (first_code(cells[1]), first_code(cells[2])) {
            found.insert((interface, function));
        }
    }
    found
}

#[test]
fn the_documented_contract_is_the_wits() {
    let wit = include_str!("../wit/plugin.wit");
    let page = include_str!("../../docs/plugins.md");
    let (in_wit, on_page) = (wit_functions(wit), documented_functions(page));
    assert!(in_wit.len() > 20, "parsed the WIT: {in_wit:?}");
    let missing: Vec<_> = in_wit.difference(&on_page).collect();
    let extra: Vec<_> = on_page.difference(&in_wit).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not on docs/plugins.md: {missing:?}; not in the WIT: {extra:?}"
    );
}
