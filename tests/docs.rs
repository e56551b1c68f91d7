//! The user guide (`docs/`) and the README hold together: every relative link reaches
//! a file and, with `#anchor`, one of its headings; every page is in SUMMARY.md; every
//! `{{#include}}` names a file; and every generated table (`docs/src/generated/`) says
//! when, where and at which commit it was made and is a well-formed table. Whether the
//! numbers are fresh is not checked: they are a run's, with its date.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn guide() -> PathBuf {
    Path::new(ROOT).join("docs/src")
}

fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = vec![Path::new(ROOT).join("README.md")];
    walk(&guide(), &mut out);
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text outside fenced code blocks and inline code spans, line by line.
fn prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            lines.push(String::new());
            continue;
        }
        if fenced {
            lines.push(String::new());
            continue;
        }
        let mut kept = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                kept.push_str(part);
            }
        }
        lines.push(kept);
    }
    lines
}

/// Link targets written `[text](target)`, with their line numbers.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (number, line) in prose(text).iter().enumerate() {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push((number + 1, after[..end].to_string()));
            rest = &after[end..];
        }
    }
    out
}

/// Heading anchors as mdBook (and GitHub) make them: lowercase, spaces to `-`,
/// punctuation dropped.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .flat_map(char::to_lowercase)
            .collect();
        out.insert(slug);
    }
    out
}

fn includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("{{#include "))
        .filter_map(|l| l.strip_suffix("}}"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn every_relative_link_reaches_a_file_and_a_heading() {
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match target.split_once('#') {
                Some((file, anchor)) => (file, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let at = format!(
                "{}:{line}: `{target}`",
                page.strip_prefix(ROOT).unwrap().display()
            );
            if !resolved.exists() {
                broken.push(format!("{at}: no file {}", resolved.display()));
                continue;
            }
            if let Some(anchor) = anchor
                && !anchors(&read(&resolved)).contains(anchor)
            {
                broken.push(format!("{at}: no heading with anchor `{anchor}`"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_of_the_guide_is_in_the_summary() {
    let summary = read(&guide().join("SUMMARY.md"));
    let listed: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .map(|(_, t)| guide().join(t))
        .collect();
    let generated = guide().join("generated");
    let missing: Vec<String> = pages()
        .into_iter()
        .filter(|p| p.starts_with(guide()) && !p.starts_with(&generated))
        .filter(|p| p.file_name().is_some_and(|n| n != "SUMMARY.md"))
        .filter(|p| !listed.contains(p))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "pages not in docs/src/SUMMARY.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_generated_table_is_included_dated_and_well_formed() {
    let generated = guide().join("generated");
    let mut included = BTreeSet::new();
    for page in pages() {
        for target in includes(&read(&page)) {
            let path = page.parent().unwrap().join(&target);
            assert!(
                path.exists(),
                "{}: includes `{target}`, which does not exist",
                page.display()
            );
            included.insert(path);
        }
    }
    let files: Vec<PathBuf> = std::fs::read_dir(&generated)
        .unwrap_or_else(|e| panic!("{}: {e}", generated.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        !files.is_empty(),
        "no generated tables in {}",
        generated.display()
    );
    for file in files {
        let name = file.display();
        assert!(included.contains(&file), "{name} is included by no page");
        let text = read(&file);
        let first = text.lines().next().unwrap_or_default();
        let dated = ["*Made ", "*Measured "]
            .iter()
            .find_map(|p| first.strip_prefix(p));
        let (date, rest) = dated
            .and_then(|d| d.split_once(" at commit "))
            .unwrap_or_else(|| panic!("{name}: the first line must say `*Made|Measured DATE at commit HASH …*`, not {first:?}"));
        let date_ok = date.len() == 10
            && date.chars().enumerate().all(|(i, c)| {
                if i == 4 || i == 7 {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            });
        assert!(date_ok, "{name}: {date:?} is not a date (YYYY-MM-DD)");
        let hash = rest.split_whitespace().next().unwrap_or_default();
        assert!(
            hash.len() >= 7 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{name}: {hash:?} is not a commit"
        );
        assert!(
            first.contains(" on ") && first.ends_with('*'),
            "{name}: the first line must name the machine (` on …`)"
        );
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
        assert!(
            rows.len() >= 3,
            "{name}: no table (a header, its rule and a row)"
        );
        let columns = |row: &str| row.trim().trim_matches('|').split('|').count();
        let width = columns(rows[0]);
        assert!(
            rows[1].chars().all(|c| "|-: ".contains(c)),
            "{name}: the header's rule is missing"
        );
        for row in &rows {
            assert_eq!(
                columns(row),
                width,
                "{name}: `{row}` has not {width} columns"
            );
        }
    }
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: the long form goes into docs/"
    );
    let quickstart = readme.find("cargo run --release -- run pipelines/quickstart.ron");
    let tests = readme.find("cargo test --workspace --locked");
    let first_section = readme.find("\n## ").unwrap_or(readme.len());
    assert!(
        quickstart.is_some_and(|q| tests.is_some_and(|t| q < t)),
        "README.md must give the quickstart command, then the test command"
    );
    let second_section = readme[first_section + 1..]
        .find("\n## ")
        .map(|i| i + first_section + 1);
    assert!(
        tests < second_section,
        "the two commands belong in the README's first section"
    );
}
