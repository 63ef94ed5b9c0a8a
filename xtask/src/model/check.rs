//! What a check of the world (the preflight, `doctor`) reports: shared by the release's
//! checks and the images' own.

/// What a check found (`Ok`), or each problem, saying how to fix it.
pub type Outcome = Result<String, Vec<String>>;
