//! Bundles the web UI into the binary: every file under `ui/` as it is, and the npm packages'
//! files that `vendor/vendored.json` lists, kept in the tree under `vendor/` as `npm ci` gives
//! them from `package-lock.json`. Nothing is downloaded or transformed here and no npm is needed,
//! so the same commit gives the same binary on any machine, a fresh clone's `cargo build` (or
//! `cargo install --path dashboard`) included.
//!
//! npm is needed only to change those packages: edit package.json, `npm install
//! --package-lock-only`, then `python3 dashboard/vendor/refresh.py` (it runs `npm ci` and copies
//! the files). A lockfile that pins other packages than `vendored.json` records stops the build
//! and names that command; a test (`refresh.py --check`) proves the kept bytes are npm's.

use std::{
    collections::BTreeMap,
    fmt::Write,
    fs,
    path::{Path, PathBuf},
};

use serde_json::Value;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for watched in ["ui", "vendor", "package-lock.json"] {
        println!("cargo::rerun-if-changed={watched}");
    }
    let vendored = match vendored(&dir) {
        Ok(files) => files,
        Err(problem) => {
            println!("cargo::error={problem}");
            println!(
                "cargo::error=refresh the dashboard's kept npm files: `python3 dashboard/vendor/refresh.py` \
                 (it runs `npm ci` from package-lock.json), then commit dashboard/vendor/"
            );
            return;
        }
    };
    let mut assets: BTreeMap<String, PathBuf> = BTreeMap::new();
    collect(&dir.join("ui"), "", &mut assets);
    for (url, file) in vendored {
        assets.insert(url, dir.join("vendor").join(file));
    }
    let mut code =
        String::from("/// Every file the dashboard serves, by URL path: (path, content type, ETag, bytes).\n");
    code.push_str("pub static ASSETS: &[(&str, &str, &str, &[u8])] = &[\n");
    for (url, path) in &assets {
        let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let etag = format!("\"{:016x}\"", fnv1a(&bytes));
        let _ = writeln!(code, "    ({url:?}, {:?}, {etag:?}, include_bytes!({path:?})),", content_type(url));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// Files under `dir`, by URL path (`prefix/name`), in a fixed order.
fn collect(dir: &Path, prefix: &str, assets: &mut BTreeMap<String, PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let url = format!("{prefix}/{name}");
        if entry.file_type().expect("a file type").is_dir() {
            collect(&entry.path(), &url, assets);
        } else {
            assets.insert(url, entry.path());
        }
    }
}

/// The kept npm files (URL path, file under `vendor/`), once `vendor/vendored.json` is proven to
/// record exactly the packages, versions and integrities `package-lock.json` pins.
fn vendored(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let read = |path: &Path| -> Result<Value, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
    };
    let lock = read(&dir.join("package-lock.json"))?;
    let record = read(&dir.join("vendor").join("vendored.json"))?;
    let pinned = lock["packages"].as_object().cloned().unwrap_or_default();
    let kept = record["packages"].as_object().cloned().unwrap_or_default();
    let mut stale = Vec::new();
    for (path, pinned) in pinned.iter().filter(|(path, _)| !path.is_empty()) {
        for field in ["version", "integrity"] {
            let have = kept.get(path).map(|k| &k[field]);
            if have != Some(&pinned[field]) {
                let found = have.map_or("nothing".to_string(), Value::to_string);
                stale.push(format!("{path}: {field} {} pinned, {found} kept", pinned[field]));
            }
        }
    }
    stale
        .extend(kept.keys().filter(|path| !pinned.contains_key(*path)).map(|path| format!("{path}: kept, not pinned")));
    if !stale.is_empty() {
        return Err(format!("dashboard/vendor/ is stale ({})", stale.join("; ")));
    }
    let files = record["files"].as_object().ok_or("dashboard/vendor/vendored.json has no `files` object")?;
    files
        .iter()
        .map(|(url, file)| match file.as_str() {
            Some(file) if dir.join("vendor").join(file).is_file() => Ok((url.clone(), file.to_string())),
            _ => Err(format!("dashboard/vendor/{file} is missing")),
        })
        .collect()
}

fn content_type(url: &str) -> &'static str {
    match url.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A stable 64-bit hash of a file for its ETag (FNV-1a): no crate needed for a cache key.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
