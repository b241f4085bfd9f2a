//! Tidy checks of the op registry: the registry, the op table of `docs/language.md` and the
//! explain pages agree, and no source file maps an op it does not know to a default.

use resnetc::ops::{REGISTRY, Ranks};
use std::collections::BTreeSet;

/// The rows of the op table: (op names of the first column, the input column).
fn docs_rows() -> Vec<(Vec<String>, String)> {
    let docs = crate::read("docs/language.md");
    let table = docs
        .split("## Built-in ops")
        .nth(1)
        .expect("docs/language.md has a `## Built-in ops` section");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| Op |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let names = cells[1]
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                .map(str::to_string)
                .collect();
            (names, cells[3].to_string())
        })
        .collect()
}

#[test]
fn every_registry_op_has_a_docs_row_and_every_row_an_op() {
    let registry: BTreeSet<&str> = REGISTRY.iter().map(|d| d.name).collect();
    let documented: BTreeSet<String> = docs_rows().into_iter().flat_map(|(n, _)| n).collect();
    let documented: BTreeSet<&str> = documented.iter().map(String::as_str).collect();
    assert_eq!(
        registry.difference(&documented).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "ops without a row in docs/language.md's op table"
    );
    assert_eq!(
        documented.difference(&registry).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "rows of docs/language.md's op table that name no op"
    );
    assert_eq!(REGISTRY.len(), registry.len(), "two entries share a name");
}

#[test]
fn the_docs_input_column_states_the_ranks_the_registry_accepts() {
    for (names, input) in docs_rows() {
        for name in names {
            let def = resnetc::ops::lookup(&name).unwrap();
            let says = match def.ranks {
                Ranks::Nchw => input.contains("NCHW") && !input.contains("any rank"),
                Ranks::Features => input.contains("`[N, F]`"),
                Ranks::Any => input.contains("any rank"),
            };
            assert!(
                says,
                "`{name}` accepts {:?} ({}), but its docs row's input says: {input}",
                def.ranks,
                def.ranks.words()
            );
        }
    }
}

/// The ops E0201's page lists as working on one rank only.
fn explain_rank_list(page: &str, rank: &str) -> BTreeSet<String> {
    let sentence = page
        .split(". ")
        .flat_map(|s| s.split("; "))
        .find(|s| {
            s.contains(&format!("work on {rank} only"))
                || s.contains(&format!("works on {rank} only"))
        })
        .unwrap_or_else(|| panic!("E0201's page has no sentence listing the ops on {rank} only"));
    let before = sentence.split(" work").next().unwrap();
    before
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_wrong_rank_page_lists_the_ops_of_each_rank() {
    let page = crate::read("src/diag/explain/E0201.md").replace('\n', " ");
    for (ranks, text) in [
        (Ranks::Nchw, "`[N, C, H, W]`"),
        (Ranks::Features, "`[N, features]`"),
    ] {
        let listed = explain_rank_list(&page, text);
        let registry: BTreeSet<String> = REGISTRY
            .iter()
            .filter(|d| d.ranks == ranks)
            .map(|d| d.name.to_string())
            .collect();
        assert_eq!(
            listed, registry,
            "E0201's page and the registry disagree on {text}"
        );
    }
}

/// Whether `text` has `word` not preceded by an identifier character (`Op::`, not `BinOp::`).
fn names_path(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn no_source_maps_an_unknown_op_to_a_default() {
    let mut offenders = Vec::new();
    let mut stack = vec![crate::root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let lines: Vec<&str> = text.lines().collect();
                for (i, line) in lines.iter().enumerate() {
                    let Some(arm) = line.split("_ =>").nth(1) else {
                        continue;
                    };
                    // The arm's value: the rest of the line, or the next line after `{`.
                    let value = if arm.trim().is_empty() || arm.trim() == "{" {
                        lines.get(i + 1).copied().unwrap_or("")
                    } else {
                        arm
                    };
                    if ["Op::", "Kernel::", "OpDef", "_DEF"]
                        .iter()
                        .any(|p| names_path(value, p))
                    {
                        offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "a `_ =>` arm maps unknown ops to a default:\n{}",
        offenders.join("\n")
    );
}
