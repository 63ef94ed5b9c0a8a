//! The Rust supply-chain tools, pinned, from crates.io into `.tools/cargo`: cargo-auditable
//! embeds each binary's dependency list (the `.dep-v0` section, zlib'd JSON) so that Trivy,
//! syft, grype and `cargo audit bin` see the crates inside a FROM-scratch image;
//! rust-audit-info reads that list back; auditable2cdx turns it into the binary's CycloneDX SBOM.
//! Both readers work on a binary of any architecture, without building again. And the
//! Python package's SBOM, from cyclonedx-py (pinned in xtask/python-tools.txt).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::{bail, ensure, Context};
use serde_json::Value;
use xshell::{cmd, Shell};

/// A tool from crates.io at the version the release uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    pub krate: &'static str,
    pub version: &'static str,
    pub binary: &'static str,
}

pub const CARGO_AUDITABLE: Tool = Tool { krate: "cargo-auditable", version: "0.7.7", binary: "cargo-auditable" };
pub const RUST_AUDIT_INFO: Tool = Tool { krate: "rust-audit-info", version: "0.5.4", binary: "rust-audit-info" };
pub const AUDITABLE2CDX: Tool = Tool { krate: "auditable2cdx", version: "0.1.0", binary: "auditable2cdx" };
pub const TOOLS: [Tool; 3] = [CARGO_AUDITABLE, RUST_AUDIT_INFO, AUDITABLE2CDX];

/// Where the tools are installed: `xtask/rust-tools` of cargo's target directory (its `bin/`
/// holds them), shared by the clones that share that directory.
pub fn root(sh: &Shell) -> PathBuf {
    crate::ops::shell::target_dir(sh).join("xtask").join("rust-tools")
}

/// Installs the tools `root` lacks at their pinned versions (about a minute, cold, once).
pub fn ensure(sh: &Shell) -> anyhow::Result<()> {
    for tool in missing(sh, &TOOLS)? {
        eprintln!("installing {} {} (cargo install) into {}", tool.krate, tool.version, root(sh).display());
        install_command(sh, tool).run().with_context(|| format!("installing {} {}", tool.krate, tool.version))?;
    }
    Ok(())
}

pub fn path(sh: &Shell, tool: Tool) -> PathBuf {
    root(sh).join("bin").join(tool.binary)
}

/// `cargo install` of `tool` at its pinned version, with the versions of its own dependencies
/// that it was released with (`--locked`). Unoptimised (`--debug`): a cold install of the three
/// takes about a minute instead of four, they only ever handle a few kB, and auditable2cdx then
/// validates each SBOM it writes (its debug assertions).
pub fn install_command<'a>(sh: &'a Shell, tool: Tool) -> xshell::Cmd<'a> {
    let (root, Tool { krate, version, .. }) = (root(sh), tool);
    cmd!(sh, "cargo install --locked --debug --version {version} --root {root} {krate}")
}

/// Where cargo-auditable runs from during a build, the same absolute path on every machine.
/// cargo hashes the workspace wrapper's path (cargo-auditable's own, `current_exe()`) into every
/// workspace crate's metadata, and so into its symbols: the same sources built with the tool at
/// `.tools/cargo/bin` of two checkouts give different binaries, and `verify --rebuild` could
/// never match a release made elsewhere.
pub const WRAPPER_DIR: &str = "/tmp/gati-cargo-auditable-0.7.7";

/// [`WRAPPER_DIR`] holding a copy of the pinned cargo-auditable. The directory must belong to
/// whoever owns `.tools` (a shared /tmp: nobody else's binary runs as our compiler wrapper).
pub fn wrapper_dir(sh: &Shell) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let installed = path(sh, CARGO_AUDITABLE);
    let owner =
        std::fs::metadata(root(sh)).with_context(|| format!("{} (install the tools first)", root(sh).display()))?.uid();
    let dir = PathBuf::from(WRAPPER_DIR);
    if !dir.exists() {
        std::fs::create_dir(&dir).with_context(|| format!("creating {WRAPPER_DIR}"))?;
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    ensure!(
        meta.is_dir() && meta.uid() == owner,
        "{WRAPPER_DIR} exists and is not a directory of the user who owns .tools: remove it, then run again"
    );
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let copy = dir.join(CARGO_AUDITABLE.binary);
    let bytes = std::fs::read(&installed).with_context(|| format!("reading {}", installed.display()))?;
    if std::fs::read(&copy).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(&copy, &bytes).with_context(|| format!("writing {}", copy.display()))?;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir)
}

/// The tools of `wanted` that `.tools/cargo` lacks at their pinned versions.
pub fn missing(sh: &Shell, wanted: &[Tool]) -> anyhow::Result<Vec<Tool>> {
    let record = root(sh).join(".crates2.json");
    let installed = match sh.read_file(&record) {
        Ok(text) => installed(&serde_json::from_str(&text).with_context(|| format!("reading {}", record.display()))?),
        Err(_) => BTreeSet::new(),
    };
    let on_disk = |t: &Tool| path(sh, *t).exists();
    Ok(wanted
        .iter()
        .filter(|t| !(on_disk(t) && installed.contains(&(t.krate.into(), t.version.into()))))
        .copied()
        .collect())
}

/// `(crate, version)` of every install that `cargo install` recorded in `.crates2.json`, whose
/// keys read `cargo-auditable 0.7.7 (registry+https://github.com/rust-lang/crates.io-index)`.
pub fn installed(crates2: &Value) -> BTreeSet<(String, String)> {
    let installs = crates2["installs"].as_object().into_iter().flatten();
    installs
        .filter_map(|(key, _)| {
            let mut words = key.split(' ');
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

/// The dependency list embedded in `binary` by cargo-auditable, as rust-audit-info prints it.
pub fn embedded_list(sh: &Shell, binary: &Path) -> anyhow::Result<Value> {
    let reader = path(sh, RUST_AUDIT_INFO);
    let text = cmd!(sh, "{reader} {binary}").quiet().read().with_context(|| {
        format!("reading the dependency list embedded in {} (built without cargo-auditable?)", binary.display())
    })?;
    serde_json::from_str(&text).with_context(|| format!("rust-audit-info's output for {}", binary.display()))
}

/// The CycloneDX SBOM of the binary `bytes`, from the dependency list it embeds. auditable2cdx
/// reads a file: it is given a copy of these very bytes, of this call's own, as `name`.
pub fn cyclonedx(sh: &Shell, name: &str, bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = crate::ops::shell::target_dir(sh).join("xtask").join(format!("sbom-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let binary = dir.join(name);
    let made = std::fs::write(&binary, bytes)
        .with_context(|| format!("writing {}", binary.display()))
        .and_then(|()| cyclonedx_of_file(sh, &binary));
    let _ = std::fs::remove_dir_all(&dir);
    made
}

fn cyclonedx_of_file(sh: &Shell, binary: &Path) -> anyhow::Result<Vec<u8>> {
    let generator = path(sh, AUDITABLE2CDX);
    let out = cmd!(sh, "{generator} {binary}")
        .quiet()
        .output()
        .with_context(|| format!("auditable2cdx {}", binary.display()))?;
    Ok(out.stdout)
}

/// The CycloneDX SBOM of the Python environment of `python`: a fresh venv holding the wheel
/// (installed by name from `--find-links`, never by path: pip then records no `direct_url.json`
/// and the SBOM names no file of this machine) and its dependencies. Reproducible: no random
/// serial number (`--output-reproducible`), the commit's time (`SOURCE_DATE_EPOCH`). Not
/// validated against the CycloneDX schema here: that costs 1.5 s of a release's CPU to check
/// the tool against itself; the tests validate the SBOM a release writes.
pub fn python_sbom(sh: &Shell, tools_python: &Path, python: &Path, source_date_epoch: u64) -> anyhow::Result<Vec<u8>> {
    let out = cmd!(sh, "{tools_python} -m cyclonedx_py environment --no-validate --output-reproducible --output-format JSON --output-file - {python}")
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
        .quiet()
        .output()
        .with_context(|| format!("cyclonedx-py environment {}", python.display()))?;
    Ok(out.stdout)
}

/// A crate as a binary embeds it and an SBOM lists it.
pub type Crate = (String, String);

/// `(name, version)` of every package in rust-audit-info's JSON (`{"packages": [{"name",
/// "version", "source", "kind", "dependencies", "root"}]}`), build-time crates included.
pub fn crates_embedded(list: &Value) -> anyhow::Result<BTreeSet<Crate>> {
    let packages = list["packages"].as_array().context("the embedded list has no \"packages\"")?;
    ensure!(
        packages.iter().filter(|p| p["root"] == true).count() == 1,
        "the embedded list names no single root package"
    );
    packages.iter().map(crate_of).collect()
}

/// `(name, version)` of the root component and every component of a CycloneDX SBOM.
pub fn crates_listed(sbom: &Value) -> anyhow::Result<BTreeSet<Crate>> {
    let root = sbom["metadata"]["component"].clone();
    let components = sbom["components"].as_array().cloned().unwrap_or_default();
    std::iter::once(&root).chain(&components).map(crate_of).collect()
}

fn crate_of(package: &Value) -> anyhow::Result<Crate> {
    let name = package["name"].as_str().with_context(|| format!("a package without a name: {package}"))?;
    let version = package["version"].as_str().with_context(|| format!("{name}: no version"))?;
    Ok((name.into(), version.into()))
}

/// The binary's embedded list and the SBOM attached to its image name the same crates, or the
/// difference, both ways.
pub fn agree(embedded: &Value, sbom: &Value) -> anyhow::Result<()> {
    let (embedded, listed) = (crates_embedded(embedded)?, crates_listed(sbom)?);
    let show = |set: Vec<&Crate>| set.iter().map(|(n, v)| format!("{n} {v}")).collect::<Vec<_>>().join(", ");
    let unlisted: Vec<&Crate> = embedded.difference(&listed).collect();
    let extra: Vec<&Crate> = listed.difference(&embedded).collect();
    if !unlisted.is_empty() || !extra.is_empty() {
        bail!(
            "the SBOM and the binary's embedded dependency list differ: in the binary only: [{}]; in the SBOM only: [{}] \
             (an SBOM of another binary, or of another build?)",
            show(unlisted),
            show(extra)
        );
    }
    Ok(())
}

/// The crates of `names` that the SBOM does not list: each service's own stack (axum for the
/// backend, rmcp for the MCP server) must be there, or the SBOM is another binary's.
pub fn unlisted<'a>(sbom: &Value, names: &[&'a str]) -> anyhow::Result<Vec<&'a str>> {
    let listed = crates_listed(sbom)?;
    Ok(names.iter().copied().filter(|n| !listed.iter().any(|(name, _)| name == n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// rust-audit-info's output for gati-backend, trimmed to four of its 79 packages (its shape as
    /// 0.5.4 prints it: a root with its dependencies' indexes, build-time crates of kind "build").
    fn embedded() -> Value {
        json!({"format": 1, "packages": [
            {"name": "axum", "version": "0.8.4", "source": "crates.io", "dependencies": [2]},
            {"name": "gati-backend", "version": "0.1.0", "source": "local", "dependencies": [0, 2], "root": true},
            {"name": "tokio", "version": "1.47.1", "source": "crates.io"},
            {"name": "cc", "version": "1.2.30", "source": "crates.io", "kind": "build"},
        ]})
    }

    /// auditable2cdx 0.1.0's output for the same binary, trimmed alike (CycloneDX 1.3, no serial
    /// number, no timestamp; the root is `metadata.component`).
    fn sbom() -> Value {
        json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.3",
            "metadata": {"component": {"type": "application", "bom-ref": "1", "name": "gati-backend", "version": "0.1.0"}},
            "components": [
                {"type": "library", "bom-ref": "0", "name": "axum", "version": "0.8.4", "purl": "pkg:cargo/axum@0.8.4"},
                {"type": "library", "bom-ref": "2", "name": "tokio", "version": "1.47.1", "purl": "pkg:cargo/tokio@1.47.1"},
                {"type": "library", "bom-ref": "3", "name": "cc", "version": "1.2.30",
                 "properties": [{"name": "cdx:rustc:dependency_kind", "value": "build"}]},
            ],
        })
    }

    #[test]
    fn cargo_install_records_are_read_as_crate_and_version() {
        let record = json!({"installs": {
            "cargo-auditable 0.7.7 (registry+https://github.com/rust-lang/crates.io-index)": {"bins": ["cargo-auditable"]},
            "rust-audit-info 0.5.3 (registry+https://github.com/rust-lang/crates.io-index)": {},
        }});
        let installed = installed(&record);
        assert!(installed.contains(&("cargo-auditable".into(), "0.7.7".into())));
        // Another version than the pinned one is not the pinned one.
        assert!(!installed.contains(&("rust-audit-info".into(), RUST_AUDIT_INFO.version.into())));
        assert!(super::installed(&json!({})).is_empty());
    }

    #[test]
    fn the_embedded_list_and_its_sbom_agree() {
        agree(&embedded(), &sbom()).unwrap();
        assert_eq!(crates_embedded(&embedded()).unwrap().len(), 4);
    }

    #[test]
    fn an_sbom_of_another_binary_is_named_with_the_difference() {
        let mut other = sbom();
        other["components"][0] = json!({"name": "rmcp", "version": "0.3.0"});
        let e = agree(&embedded(), &other).unwrap_err().to_string();
        assert!(e.contains("in the binary only: [axum 0.8.4]"), "{e}");
        assert!(e.contains("in the SBOM only: [rmcp 0.3.0]"), "{e}");
        // Another version is another crate.
        let mut bumped = sbom();
        bumped["components"][1]["version"] = "1.47.2".into();
        assert!(agree(&embedded(), &bumped).is_err());
    }

    #[test]
    fn the_services_own_crates_must_be_listed() {
        assert!(unlisted(&sbom(), &["axum", "tokio"]).unwrap().is_empty());
        assert_eq!(unlisted(&sbom(), &["axum", "rmcp"]).unwrap(), ["rmcp"]);
    }

    #[test]
    fn a_list_without_a_single_root_is_refused() {
        let mut two_roots = embedded();
        two_roots["packages"][0]["root"] = true.into();
        let e = crates_embedded(&two_roots).unwrap_err().to_string();
        assert!(e.contains("no single root"), "{e}");
    }
}
