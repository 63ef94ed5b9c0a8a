//! Who talks to the registry and how the registry wants it proven: credentials from the
//! environment, the challenge of a 401 (`Bearer realm=…` as Docker Hub, or `Basic`), and the
//! token a realm grants for a scope.

use std::collections::HashMap;

/// Kept with the other secrets, below the registry: Docker's login takes them too.
pub use crate::ops::secrets::Credentials;

#[derive(Clone, Default)]
pub enum Scheme {
    #[default]
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// `Bearer realm="…",service="…"` or `Basic realm="…"`.
pub fn parse_challenge(challenge: &str) -> Option<Scheme> {
    let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Scheme::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut values = HashMap::new();
    let mut rest = params;
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some((value, after)) = after.split_once('"') else { break };
        values.insert(key.trim().trim_start_matches(',').trim().to_ascii_lowercase(), value.to_string());
        rest = after;
    }
    Some(Scheme::Bearer { realm: values.remove("realm")?, service: values.remove("service") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let bearer = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        let Some(Scheme::Bearer { realm, service }) = bearer else { panic!("not a bearer challenge") };
        assert_eq!((realm.as_str(), service.as_deref()), ("https://auth.docker.io/token", Some("registry.docker.io")));
        assert!(matches!(parse_challenge(r#"Basic realm="gati""#), Some(Scheme::Basic)));
        assert!(parse_challenge("Negotiate").is_none());
    }

    #[test]
    fn credentials_never_print_the_password() {
        let c = Credentials { user: "alice".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
