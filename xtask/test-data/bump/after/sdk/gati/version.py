"""The package's version: the single source for the wheel's metadata and the compose file's
image tags. Written by `cargo xtask bump`; do not edit by hand."""

__version__ = "0.2.0rc1"
