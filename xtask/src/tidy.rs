//! Tidy tests: what the code of xtask promises of its own shape, checked like any test.

use std::path::{Path, PathBuf};

/// Longer than this, a function hides the steps it is made of: give them names.
const MAX_FUNCTION_LINES: usize = 70;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `(name, first line, lines)` of every function with a body in `text`: from its `fn` line to
/// the closing brace at the same indentation.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let words: Vec<&str> = code.split_whitespace().take_while(|w| !w.starts_with("fn")).collect();
        let is_fn = code.split_whitespace().nth(words.len()) == Some("fn")
            && words.iter().all(|w| ["pub", "pub(crate)", "pub(super)", "const", "async", "unsafe"].contains(w))
            && !code.starts_with("//");
        if !is_fn {
            continue;
        }
        let name = code.split("fn ").nth(1).unwrap_or("").split(['(', '<']).next().unwrap_or("").to_string();
        let close = format!("{}}}", " ".repeat(indent));
        // A declaration without a body (a trait's) ends with `;` before any `{`.
        let opening = lines[i..].iter().find(|l| l.contains('{') || l.trim_end().ends_with(';'));
        if opening.is_none_or(|l| !l.contains('{')) {
            continue;
        }
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            found.push((name, i + 1, end + 1));
        }
    }
    found
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut long = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (name, line, length) in functions(&text) {
            if length > MAX_FUNCTION_LINES {
                long.push(format!("{}:{line}: fn {name} has {length} lines", file.display()));
            }
        }
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    assert!(long.is_empty(), "functions longer than {MAX_FUNCTION_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn function_lengths_are_measured_from_fn_to_its_brace() {
    let text = "fn a() {\n    1;\n}\n\n    pub fn b(x: u8) -> u8 {\n        x\n    }\n    fn c();\n// fn d() {\n";
    assert_eq!(functions(text), [("a".to_string(), 1, 3), ("b".to_string(), 5, 3)]);
}
