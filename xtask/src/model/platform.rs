//! The platforms gati ships (`[workspace.metadata.release] platforms`), each with the Rust
//! target its static binaries are built for and, where it is not the host's, the cross linker.

use anyhow::Context;
use serde_json::{json, Value};

/// A platform gati ships, with the Rust target its binaries are built for.
#[derive(Debug, PartialEq, Eq)]
pub struct Platform {
    /// As Docker writes it: `linux/arm64`.
    pub name: &'static str,
    pub os: &'static str,
    pub architecture: &'static str,
    /// The CPU variant the index names, as BuildKit writes it for arm64.
    pub variant: Option<&'static str>,
    pub rust_target: &'static str,
    /// The C cross compiler that links its binaries on another host (Debian's and Ubuntu's
    /// `gcc-<arch>-linux-gnu`).
    pub linker: &'static str,
    /// What runs its binaries on another host (`qemu-user-static`).
    pub qemu: &'static str,
}

pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "linux/amd64",
        os: "linux",
        architecture: "amd64",
        variant: None,
        rust_target: "x86_64-unknown-linux-gnu",
        linker: "x86_64-linux-gnu-gcc",
        qemu: "qemu-x86_64-static",
    },
    Platform {
        name: "linux/arm64",
        os: "linux",
        architecture: "arm64",
        variant: Some("v8"),
        rust_target: "aarch64-unknown-linux-gnu",
        linker: "aarch64-linux-gnu-gcc",
        qemu: "qemu-aarch64-static",
    },
];

/// The platform named `name` (`linux/arm64`), as `[workspace.metadata.release] platforms` lists it.
pub fn platform(name: &str) -> anyhow::Result<&'static Platform> {
    let known = || PLATFORMS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
    PLATFORMS.iter().find(|p| p.name == name).with_context(|| format!("platform {name:?}: xtask knows {}", known()))
}

impl Platform {
    /// The `platform` of an index entry.
    pub fn json(&self) -> Value {
        let mut platform = json!({ "architecture": self.architecture, "os": self.os });
        if let Some(variant) = self.variant {
            platform["variant"] = variant.into();
        }
        platform
    }
}

impl Platform {
    /// The platform of the machine xtask runs on, if gati ships it.
    pub fn host() -> Option<&'static Platform> {
        let target = match std::env::consts::ARCH {
            "x86_64" => "x86_64-unknown-linux-gnu",
            "aarch64" => "aarch64-unknown-linux-gnu",
            _ => return None,
        };
        PLATFORMS.iter().find(|p| p.rust_target == target && std::env::consts::OS == "linux")
    }

    /// The Debian and Ubuntu package of its cross compiler (`gcc-x86-64-linux-gnu` for
    /// `x86_64-linux-gnu-gcc`: package names have no `_`).
    pub fn cross_gcc_package(&self) -> String {
        format!("gcc-{}", self.linker.trim_end_matches("-gcc").replace('_', "-"))
    }

    /// `CARGO_TARGET_<TRIPLE>_<what>`: cargo's per-target settings.
    pub fn cargo_env(&self, what: &str) -> String {
        format!("CARGO_TARGET_{}_{what}", self.rust_target.to_ascii_uppercase().replace('-', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_by_name_and_their_cargo_settings() {
        let arm = platform("linux/arm64").unwrap();
        assert_eq!((arm.rust_target, arm.variant), ("aarch64-unknown-linux-gnu", Some("v8")));
        assert_eq!(arm.cargo_env("LINKER"), "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER");
        assert_eq!(arm.json(), json!({"architecture": "arm64", "os": "linux", "variant": "v8"}));
        assert_eq!(arm.cross_gcc_package(), "gcc-aarch64-linux-gnu");
        assert_eq!(platform("linux/amd64").unwrap().cross_gcc_package(), "gcc-x86-64-linux-gnu");
        let err = platform("linux/riscv64").unwrap_err().to_string();
        assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    }
}
