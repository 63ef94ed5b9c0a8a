//! The MCP Registry's entry for the MCP server: `server.json` among the release files, which
//! the workflow publishes with `mcp-publisher` after the images (GitHub OIDC login).
//!
//! It names the OCI image by tag and digest, with both transports (stdio, and streamable HTTP
//! on its port). For an OCI package the registry checks that the image carries the label
//! `io.modelcontextprotocol.server.name` with the entry's name: `mcp-server/Dockerfile` has it,
//! and the assembled image reads its labels from there.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{json, Value};

use super::Release;
use crate::model::version::ReleaseVersion;

/// The server's name in the registry: `io.github.<owner>` is what a GitHub login may publish.
pub const SERVER_NAME: &str = "io.github.gati-dev/gati-mcp-server";
/// The label the registry reads from the image.
#[cfg(test)]
const NAME_LABEL: &str = "io.modelcontextprotocol.server.name";
/// The registry's schema this entry follows (a copy: `tests/release/mcp-server.schema.json`).
pub const SCHEMA: &str = "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json";
const SERVICE: &str = "mcp-server";
/// Where `--http` serves MCP (the Dockerfile's `EXPOSE`).
const HTTP_PORT: u16 = 8080;

/// `server.json` of the MCP server of `version`, whose image index is `image`
/// (`registry/namespace/gati-mcp-server:X@sha256:…`).
pub fn server_json(version: &ReleaseVersion, image: &str, repository: &str) -> Value {
    let backend = json!({
        "name": "BACKEND_URL",
        "description": "The gati backend the tools query (`gati start` runs it on port 8000)",
        "default": "http://host.docker.internal:8000",
    });
    json!({
        "$schema": SCHEMA,
        "name": SERVER_NAME,
        "title": "gati",
        "description": "Ask what your AI agents did: runs, LLM and tool calls, errors, costs, recorded by gati",
        "version": version.to_string(),
        "repository": {"url": repository, "source": "github", "subfolder": SERVICE},
        "packages": [
            {
                "registryType": "oci",
                "identifier": image,
                "runtimeHint": "docker",
                "transport": {"type": "stdio"},
                "packageArguments": [{"type": "positional", "value": "--stdio"}],
                "environmentVariables": [backend.clone()],
            },
            {
                "registryType": "oci",
                "identifier": image,
                "runtimeHint": "docker",
                "transport": {"type": "streamable-http", "url": format!("http://127.0.0.1:{HTTP_PORT}/mcp")},
                "runtimeArguments": [{"type": "named", "name": "--publish", "value": format!("127.0.0.1:{HTTP_PORT}:{HTTP_PORT}")}],
                "packageArguments": [{"type": "positional", "value": "--http"}],
                "environmentVariables": [backend],
            },
        ],
    })
}

/// Writes `server.json` among the release files, naming the index the registry serves.
pub fn write(release: &Release) -> anyhow::Result<PathBuf> {
    let plan = &release.plan;
    let image = (plan.images.iter().find(|i| i.service == SERVICE))
        .with_context(|| format!("{SERVICE} is not among the configured services"))?;
    let tag = release.version.to_string();
    let digest = (plan.registry().digest(&image.repo, &tag)?)
        .with_context(|| format!("{}:{tag} is not on the registry", image.reference))?;
    let repository = plan.build_args.iter().find(|(k, _)| k == "SOURCE").map(|(_, v)| v.clone()).unwrap_or_default();
    let entry = server_json(&release.version, &format!("{}:{tag}@{digest}", image.reference), &repository);
    let dir = &release.files.release;
    let (path, temporary) = (dir.join("server.json"), dir.join(".server.json.new"));
    std::fs::write(&temporary, serde_json::to_vec_pretty(&entry)?)?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry refuses an OCI package whose image lacks this label with this value.
    #[test]
    fn the_mcp_servers_dockerfile_labels_the_image_with_the_entrys_name() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dockerfile = std::fs::read_to_string(root.join("mcp-server/Dockerfile")).unwrap();
        assert!(dockerfile.contains(&format!("{NAME_LABEL}=\"{SERVER_NAME}\"")), "{dockerfile}");
    }

    #[test]
    fn the_entry_names_the_image_by_tag_and_digest_with_both_transports() {
        let version = ReleaseVersion::parse("0.2.0-rc.1").unwrap();
        let image = "docker.io/gatidev/gati-mcp-server:0.2.0-rc.1@sha256:aa";
        let entry = server_json(&version, image, "https://github.com/gati-dev/gati");
        assert_eq!(entry["version"], "0.2.0-rc.1");
        let transports: Vec<&str> = (entry["packages"].as_array().unwrap().iter())
            .inspect(|p| assert_eq!(p["identifier"], image))
            .map(|p| p["transport"]["type"].as_str().unwrap())
            .collect();
        assert_eq!(transports, ["stdio", "streamable-http"]);
        assert!(entry["description"].as_str().unwrap().len() <= 100, "the registry's limit");
    }
}
