//! Files replaced whole: written beside their place and renamed over it, so that a reader (or a
//! run stopped half-way) sees the old content or the new one, never part of either.

use std::path::Path;

use anyhow::Context;

/// Replaces `path` with `text` atomically.
pub fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    let temp = path.with_file_name(format!(".{}.xtask-new", name.to_string_lossy()));
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("replacing {}", path.display()))
}
