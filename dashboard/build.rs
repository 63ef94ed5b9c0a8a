//! Bundles the web UI into the binary: every file under `ui/` as it is, and the npm packages'
//! files listed in `VENDORED`, taken from `node_modules/` once it is proven to hold exactly what
//! `package-lock.json` pins. Nothing is downloaded or transformed here, so the same commit gives
//! the same binary on any machine: the bytes are the lockfile's (npm checked their integrity).
//!
//! `node_modules/` is installed by `npm ci` (`cargo xtask test`, `images` and `release` run it
//! first, see xtask/src/ui.rs); a missing or stale one stops the build and names that command.

use std::{
    collections::BTreeMap,
    fmt::Write,
    fs,
    path::{Path, PathBuf},
};

use serde_json::Value;

/// (URL path, file under node_modules/) of every npm file the UI loads.
const VENDORED: &[(&str, &str)] = &[("/vendor/chart.umd.min.js", "chart.js/dist/chart.umd.min.js")];

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    for watched in ["ui", "package.json", "package-lock.json", "node_modules/.package-lock.json"] {
        println!("cargo::rerun-if-changed={watched}");
    }
    if let Err(problem) = check_node_modules(&dir) {
        println!("cargo::error={problem}");
        println!(
            "cargo::error=install the dashboard's npm packages: `npm ci --prefix dashboard` \
             (or any `cargo xtask test|images|release`, which runs it)"
        );
        return;
    }
    let mut assets: BTreeMap<String, PathBuf> = BTreeMap::new();
    collect(&dir.join("ui"), "", &mut assets);
    for (url, file) in VENDORED {
        assets.insert(url.to_string(), dir.join("node_modules").join(file));
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

/// Why `node_modules/` is not what `package-lock.json` pins, if it is not. npm keeps what it
/// installed in `node_modules/.package-lock.json`; each package there must have the version and
/// integrity the lockfile names.
fn check_node_modules(dir: &Path) -> Result<(), String> {
    let read = |path: &Path| -> Result<Value, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
    };
    let wanted = read(&dir.join("package-lock.json"))?;
    let installed_path = dir.join("node_modules").join(".package-lock.json");
    if !installed_path.exists() {
        return Err(format!("{} is missing: the npm packages are not installed", installed_path.display()));
    }
    let installed = read(&installed_path)?;
    let packages = |lock: &Value| lock["packages"].as_object().cloned().unwrap_or_default();
    let installed = packages(&installed);
    let mut stale = Vec::new();
    for (path, pinned) in packages(&wanted).iter().filter(|(path, _)| !path.is_empty()) {
        let have = installed.get(path);
        for field in ["version", "integrity"] {
            if have.map(|h| &h[field]) != Some(&pinned[field]) {
                let found = have.map_or("nothing".to_string(), |h| h[field].to_string());
                stale.push(format!("{path}: {field} {} pinned, {found} installed", pinned[field]));
            }
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("dashboard/node_modules is stale ({})", stale.join("; ")))
    }
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
