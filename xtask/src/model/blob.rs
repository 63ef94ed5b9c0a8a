//! Bytes named by their digest: what a registry stores, an image is made of and an
//! attestation names. Below the images and the registry, which both speak of them.

use serde_json::{json, Value};

/// Bytes named by their digest, as a registry stores them.
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({}, {}, {} bytes)", self.media_type, self.digest, self.bytes.len())
    }
}

impl Blob {
    pub fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob { media_type, digest: sha256(&bytes), bytes }
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The descriptor that points at this blob from a manifest or an index.
    pub fn descriptor(&self) -> Value {
        json!({ "mediaType": self.media_type, "digest": self.digest, "size": self.size() })
    }

    /// The digest's hex part: the blob's file name in an OCI layout or a Docker archive.
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }
}

/// `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = hmac_sha256::Hash::hash(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
