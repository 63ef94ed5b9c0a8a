//! The release's pure model: versions and their spellings, tags, the version surfaces, the
//! configuration, the changelog. Nothing here spawns a process or asks the network; the files
//! it reads and writes are the surfaces themselves.

pub mod blob;
pub mod changelog;
pub mod check;
pub mod config;
pub mod platform;
pub mod surfaces;
pub mod tags;
pub mod version;
