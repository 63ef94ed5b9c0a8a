//! The credentials a command was given, taken out of xtask's own environment before anything
//! is started, so that no child inherits them: not cargo, not a dependency's build script,
//! not setuptools, not docker, not the signer. Each is handed back, by name, only to the one
//! process that uses it ([`Secret::pass_to`]): twine its password, the signer and twine the
//! CI's OIDC request token. curl gets the registry's on stdin, Docker a login file of its own.
//! One place for every child, since a list of call sites that must remember would miss one.

use std::sync::OnceLock;

/// A user and a password or token. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.user)
    }
}

impl Credentials {
    /// `DOCKER_USERNAME`/`DOCKER_PASSWORD`, when both are set and not empty.
    pub fn from_env() -> Option<Credentials> {
        let user = std::env::var("DOCKER_USERNAME").ok().filter(|u| !u.is_empty())?;
        let password = Secret::DockerPassword.get()?;
        Some(Credentials { user, password })
    }
}

/// A credential that arrives in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    DockerPassword,
    TwinePassword,
    /// GitHub Actions' token for asking an OIDC identity (trusted publishing, PEP 740 signing).
    ActionsIdTokenRequestToken,
}

impl Secret {
    pub const ALL: [Secret; 3] = [Secret::DockerPassword, Secret::TwinePassword, Secret::ActionsIdTokenRequestToken];

    /// Its environment variable.
    pub fn name(self) -> &'static str {
        match self {
            Secret::DockerPassword => "DOCKER_PASSWORD",
            Secret::TwinePassword => "TWINE_PASSWORD",
            Secret::ActionsIdTokenRequestToken => "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        }
    }

    /// Its value, when set and not empty (an absent CI secret arrives as an empty variable).
    pub fn get(self) -> Option<String> {
        taken().iter().find(|(s, _)| *s == self).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }

    /// `command` with this secret in its environment, when there is one.
    pub fn pass_to<'a>(self, command: xshell::Cmd<'a>) -> xshell::Cmd<'a> {
        match self.get() {
            Some(value) => command.env(self.name(), value),
            None => command,
        }
    }
}

static TAKEN: OnceLock<Vec<(Secret, String)>> = OnceLock::new();

fn taken() -> &'static [(Secret, String)] {
    // Taken on first use too: a unit test has no `main` to take them.
    TAKEN.get_or_init(take)
}

fn take() -> Vec<(Secret, String)> {
    let mut found = Vec::new();
    for secret in Secret::ALL {
        if let Some(value) = std::env::var_os(secret.name()) {
            found.push((secret, value.to_string_lossy().into_owned()));
            std::env::remove_var(secret.name());
        }
    }
    found
}

/// Takes the secrets out of the environment: the first thing `main` does, while it is the one
/// thread (changing the environment beside another thread that reads it is undefined).
pub fn take_from_environment() {
    taken();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_gone_from_the_environment_and_reaches_only_whom_it_is_passed_to() {
        take_from_environment();
        for secret in Secret::ALL {
            assert!(std::env::var_os(secret.name()).is_none(), "{} is still in the environment", secret.name());
        }
        let sh = xshell::Shell::new().unwrap();
        let env = xshell::cmd!(sh, "env").read().unwrap();
        assert!(Secret::ALL.iter().all(|s| !env.contains(&format!("{}=", s.name()))), "{env}");
    }
}
