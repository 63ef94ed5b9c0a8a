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

/// xtask's layers, top to bottom: the commands, the release, the clients, the model and the
/// effects. A module uses its own layer and those below it, never one above.
const LAYERS: [&[&str]; 4] = [
    &["main", "flags", "commands", "bump", "verify", "yank", "rehearse", "test", "bench", "doctor", "lint", "tidy"],
    &["release"],
    &["images", "registry", "python"],
    &["model", "ops"],
];

/// The imports up a layer that are still there: (file, the module it uses).
/// - The release's verify step runs `cargo xtask verify` itself: the verify command's checks
///   would have to move below the release first.
const STILL_UP: [(&str, &str); 1] = [("release/verify.rs", "verify")];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules of the crate that `text` names (`crate::x…`, `use crate::{x…}`),
/// outside comments and its `tests` module.
fn used_modules(text: &str) -> std::collections::BTreeSet<String> {
    let code: String = (text.lines())
        .take_while(|l| !l.starts_with("mod tests"))
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used = std::collections::BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::b, c::{d, e}}`: the names at the group's top level.
            let (mut depth, mut start) = (0usize, 0);
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        used.insert(first_name(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        used.insert(first_name(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            used.insert(first_name(rest));
        }
    }
    used.remove("");
    used
}

fn first_name(path: &str) -> String {
    path.trim().split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("").to_string()
}

#[test]
fn imports_point_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut up = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap().display().to_string();
        let module = relative.split(['/', '.']).next().unwrap();
        let own = layer_of(module).unwrap_or_else(|| panic!("{relative}: {module} is in no layer of LAYERS"));
        for used in used_modules(&std::fs::read_to_string(file).unwrap()) {
            // `crate::shell_in` and `crate::target_dir` are re-exports of ops::shell.
            let Some(layer) = layer_of(&used) else { continue };
            if layer < own && !STILL_UP.contains(&(relative.as_str(), used.as_str())) {
                up.push(format!("{relative}: {module} uses {used}, a layer above it"));
            }
        }
    }
    assert!(up.is_empty(), "imports up the layers ({LAYERS:?}), move what they share down:\n{}", up.join("\n"));
}

#[test]
fn the_modules_a_file_uses_are_read_from_its_paths_and_use_groups() {
    let text =
        "use crate::{\n    images::{self, Plan},\n    ops::exec,\n};\n// crate::release\nlet x = crate::model::f();\n\
                #[cfg(test)]\nmod tests {\n    use crate::verify;\n}\n";
    let used: Vec<String> = used_modules(text).into_iter().collect();
    assert_eq!(used, ["images", "model", "ops"]);
}
