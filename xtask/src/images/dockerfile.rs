//! A service's Dockerfile, read as the description of the image xtask assembles: a
//! `FROM scratch` image of one static binary needs no builder, only what the Dockerfile says
//! (user, environment, ports, volumes, healthcheck, entrypoint, labels, and what `COPY` puts
//! where). `docker build ./backend` reads the same file, so the two cannot drift apart.
//!
//! Only what such an image can hold is read: anything that needs a builder (`RUN`, `ADD`, a base
//! image) or a shell inside the image (the shell forms of `CMD`, `ENTRYPOINT`, `HEALTHCHECK`) is
//! refused, naming the line.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

/// Docker's builder gives a `FROM scratch` image this `PATH`; so do we, so that the two
/// configurations are the same.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One service's image, as its Dockerfile describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// What the layer holds, sorted by path.
    pub entries: Vec<Entry>,
    /// `uid:gid`, numeric and not root.
    pub user: String,
    /// `KEY=value`, in order, `PATH` first.
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    /// `8000/tcp`.
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub healthcheck: Option<Healthcheck>,
    pub labels: BTreeMap<String, String>,
}

/// One entry of the layer: the binary (its bytes come later) or an empty directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to `/`, without a trailing slash: `gati-backend`, `data`.
    pub path: String,
    pub kind: Kind,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Binary,
    Dir,
}

/// `HEALTHCHECK [options] CMD [...]`; durations in nanoseconds, as Docker's config has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub retries: u64,
}

impl ImageSpec {
    /// Reads `dockerfile` (the file `service/Dockerfile` holds) for the binary `binary`, with
    /// `args` as `--build-arg`s: each must be declared by an `ARG`.
    pub fn from_dockerfile(
        dockerfile: &str,
        binary: &str,
        args: &BTreeMap<String, String>,
    ) -> anyhow::Result<ImageSpec> {
        let mut spec = ImageSpec {
            entries: Vec::new(),
            user: String::new(),
            env: vec![DEFAULT_PATH.to_string()],
            entrypoint: Vec::new(),
            cmd: Vec::new(),
            working_dir: None,
            exposed_ports: Vec::new(),
            volumes: Vec::new(),
            healthcheck: None,
            labels: BTreeMap::new(),
        };
        let mut reading = Reading { binary, args, vars: BTreeMap::new(), declared: Vec::new(), from: false };
        for (number, line) in instructions(dockerfile) {
            let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let at = || format!("Dockerfile line {number}: {line}");
            let instruction = instruction.to_ascii_uppercase();
            if !reading.from && instruction != "FROM" && instruction != "ARG" {
                bail!("{}: the first instruction must be `FROM scratch`", at());
            }
            spec.apply(&mut reading, &instruction, rest.trim()).with_context(at)?;
        }
        if let Some(unused) = args.keys().find(|a| !reading.declared.contains(a)) {
            bail!("--build-arg {unused}: the Dockerfile declares no `ARG {unused}`");
        }
        spec.finish(binary)
    }

    /// One instruction of the Dockerfile, read into the spec.
    fn apply(&mut self, reading: &mut Reading, instruction: &str, rest: &str) -> anyhow::Result<()> {
        match instruction {
            "FROM" if rest == "scratch" => reading.from = true,
            "FROM" => bail!("xtask assembles `FROM scratch` images only (a base image needs a builder)"),
            "ARG" => {
                for (name, default) in pairs(rest, &reading.vars, true)? {
                    let value = reading.args.get(&name).cloned().unwrap_or(default);
                    reading.declared.push(name.clone());
                    reading.vars.insert(name, value);
                }
            }
            "ENV" => {
                for (name, value) in pairs(rest, &reading.vars, false)? {
                    self.env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(name.as_str()));
                    self.env.push(format!("{name}={value}"));
                    reading.vars.insert(name, value);
                }
            }
            "LABEL" => self.labels.extend(pairs(rest, &reading.vars, false)?),
            "USER" => self.user = user(rest)?,
            "WORKDIR" if rest.starts_with('/') => self.working_dir = Some(rest.to_string()),
            "EXPOSE" => self.exposed_ports.extend(rest.split_whitespace().map(|p| match p.contains('/') {
                true => p.to_string(),
                false => format!("{p}/tcp"),
            })),
            "VOLUME" if rest.starts_with('[') => self.volumes.extend(exec_form(rest)?),
            "VOLUME" => self.volumes.extend(rest.split_whitespace().map(str::to_owned)),
            "ENTRYPOINT" => self.entrypoint = exec_form(rest)?,
            "CMD" => self.cmd = exec_form(rest)?,
            "HEALTHCHECK" => self.healthcheck = Some(healthcheck(rest)?),
            "COPY" => self.entries.push(copy(rest, reading.binary)?),
            _ => bail!(
                "not something a `FROM scratch` image of one binary can hold without a builder (xtask reads \
                 FROM scratch, ARG, ENV, LABEL, USER, WORKDIR, EXPOSE, VOLUME, ENTRYPOINT, CMD, HEALTHCHECK \
                 and COPY of the binary or an empty directory)"
            ),
        }
        Ok(())
    }

    /// What the whole file must say, and what Docker's builder adds.
    fn finish(mut self, binary: &str) -> anyhow::Result<ImageSpec> {
        if self.user.is_empty() {
            bail!("the Dockerfile sets no USER: the image runs as a numeric non-root user (`USER 65532:65532`)");
        }
        if !self.entries.iter().any(|e| e.kind == Kind::Binary) {
            bail!("the Dockerfile does not `COPY {binary} /{binary}`: the image would hold no binary");
        }
        // Docker's builder creates a missing WORKDIR, owned by root.
        if let Some(dir) = &self.working_dir {
            let path = dir.trim_matches('/').to_string();
            if !path.is_empty() && !self.entries.iter().any(|e| e.path == path) {
                self.entries.push(Entry { path, kind: Kind::Dir, uid: 0, gid: 0 });
            }
        }
        self.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(self)
    }
}

/// What reading a Dockerfile carries from line to line.
struct Reading<'a> {
    binary: &'a str,
    /// The `--build-arg`s.
    args: &'a BTreeMap<String, String>,
    /// `ARG` and `ENV` values, for `$NAME` in later lines.
    vars: BTreeMap<String, String>,
    declared: Vec<String>,
    from: bool,
}

/// The instructions with their line numbers: comments dropped, continued lines joined.
fn instructions(dockerfile: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in dockerfile.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_none()) {
            continue;
        }
        let (text, continued) = match line.strip_suffix('\\') {
            Some(text) => (text.trim_end(), true),
            None => (line, false),
        };
        let (number, mut joined) = current.take().unwrap_or((i + 1, String::new()));
        if !joined.is_empty() && !text.is_empty() {
            joined.push(' ');
        }
        joined.push_str(text);
        if continued {
            current = Some((number, joined));
        } else if !joined.is_empty() {
            out.push((number, joined));
        }
    }
    out.extend(current);
    out
}

/// `KEY=value ...` (ENV, LABEL) or, for ARG, `NAME[=default] ...`: words as Docker's shell-like
/// lexer reads them, `$VAR` and `${VAR}` replaced by earlier ARGs and ENVs.
fn pairs(text: &str, vars: &BTreeMap<String, String>, arg: bool) -> anyhow::Result<Vec<(String, String)>> {
    words(text, vars)?
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => Ok((key.to_string(), value.to_string())),
            None if arg => Ok((word, String::new())),
            None => bail!("{word:?}: write `KEY=value` (the legacy `KEY value` form is not read)"),
        })
        .collect()
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes and substituting
/// variables outside single quotes.
fn words(text: &str, vars: &BTreeMap<String, String>) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => word.get_or_insert_with(String::new).push(c),
            (_, '\\') => {
                let next = chars.next().context("a backslash ends the line")?;
                word.get_or_insert_with(String::new).push(next);
            }
            (_, '$') => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if !(n.is_ascii_alphanumeric() || n == '_') {
                        break;
                    }
                    name.push(n);
                    chars.next();
                }
                if braced && chars.next() != Some('}') {
                    bail!("${{{name}…: only plain `${{NAME}}` substitutions are read");
                }
                let value = vars.get(&name).map(String::as_str).unwrap_or_default();
                word.get_or_insert_with(String::new).push_str(value);
            }
            (_, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        bail!("an unclosed quote");
    }
    words.extend(word);
    Ok(words)
}

/// The JSON array form, `["/gati-backend", "healthcheck"]`: a `FROM scratch` image has no shell
/// to run the other form.
fn exec_form(text: &str) -> anyhow::Result<Vec<String>> {
    serde_json::from_str(text).with_context(|| {
        format!("{text}: write the JSON array form, e.g. [\"/gati-backend\"] (the image has no shell)")
    })
}

/// `USER uid:gid`, numeric (no /etc/passwd in the image) and not root.
fn user(text: &str) -> anyhow::Result<String> {
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !numeric(uid) || !numeric(gid) {
        bail!("USER {text}: give a numeric uid:gid, e.g. 65532:65532 (the image has no /etc/passwd)");
    }
    if uid.trim_start_matches('0').is_empty() {
        bail!("USER {text}: the image runs as a non-root user, e.g. 65532:65532");
    }
    Ok(text.to_string())
}

/// `HEALTHCHECK [--interval=5s ...] CMD ["/bin", "arg"]`.
fn healthcheck(text: &str) -> anyhow::Result<Healthcheck> {
    // Docker's defaults for options not given.
    let mut check = Healthcheck {
        test: Vec::new(),
        interval: 30_000_000_000,
        timeout: 30_000_000_000,
        start_period: 0,
        retries: 3,
    };
    let mut rest = text;
    while let Some(option) = rest.strip_prefix("--") {
        let (option, after) = option.split_once(char::is_whitespace).context("HEALTHCHECK options without CMD")?;
        let (name, value) = option.split_once('=').with_context(|| format!("--{option}: write --name=value"))?;
        match name {
            "interval" => check.interval = nanoseconds(value)?,
            "timeout" => check.timeout = nanoseconds(value)?,
            "start-period" => check.start_period = nanoseconds(value)?,
            "retries" => check.retries = value.parse().with_context(|| format!("--retries={value}"))?,
            _ => bail!("HEALTHCHECK --{name}: not an option xtask reads (interval, timeout, start-period, retries)"),
        }
        rest = after.trim_start();
    }
    let command = rest.strip_prefix("CMD").context("write `HEALTHCHECK [options] CMD [\"/binary\", ...]`")?;
    check.test = std::iter::once("CMD".to_string()).chain(exec_form(command.trim())?).collect();
    Ok(check)
}

/// A Go-style duration of whole units, `5s`, `1m30s`, `500ms`, in nanoseconds.
fn nanoseconds(text: &str) -> anyhow::Result<u64> {
    let bad = || format!("{text}: write a duration such as 5s, 500ms or 1m30s");
    let (mut total, mut rest) = (0u64, text);
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).with_context(bad)?;
        let number: u64 = rest[..digits].parse().with_context(bad)?;
        let unit_end = rest[digits..].find(|c: char| c.is_ascii_digit()).map_or(rest.len(), |i| digits + i);
        let unit = match &rest[digits..unit_end] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => bail!(bad()),
        };
        total += number * unit;
        rest = &rest[unit_end..];
    }
    Ok(total)
}

/// `COPY [--chown=uid:gid] SOURCE /DEST`: the binary, or an empty directory (`name/`).
fn copy(text: &str, binary: &str) -> anyhow::Result<Entry> {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    let (mut uid, mut gid) = (0, 0);
    while let Some(option) = words.first().and_then(|w| w.strip_prefix("--")) {
        let ids = option.strip_prefix("chown=").with_context(|| format!("COPY --{option}: only --chown is read"))?;
        let (u, g) = ids.split_once(':').unwrap_or((ids, ids));
        let parse = |s: &str| s.parse::<u64>().with_context(|| format!("--chown={ids}: give numeric ids"));
        (uid, gid) = (parse(u)?, parse(g)?);
        words.remove(0);
    }
    let [source, dest] = words[..] else { bail!("COPY takes one source and one destination here") };
    let path = dest.trim_matches('/').to_string();
    if !dest.starts_with('/') || path.is_empty() {
        bail!("COPY {source} {dest}: give an absolute destination");
    }
    if source == binary {
        return Ok(Entry { path, kind: Kind::Binary, uid, gid });
    }
    match source.strip_suffix('/') {
        Some(_) => Ok(Entry { path, kind: Kind::Dir, uid, gid }),
        None => bail!("COPY {source}: an image holds only the binary {binary} and empty directories (`name/`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn read(service: &str, args: &BTreeMap<String, String>) -> ImageSpec {
        let dockerfile = std::fs::read_to_string(format!("{}/../{service}/Dockerfile", env!("CARGO_MANIFEST_DIR")))
            .expect("the service's Dockerfile");
        ImageSpec::from_dockerfile(&dockerfile, &format!("gati-{service}"), args).unwrap()
    }

    #[test]
    fn reads_the_backends_dockerfile_as_docker_builds_it() {
        let spec = read("backend", &args(&[("VERSION", "1.2.3"), ("REVISION", "abc")]));
        assert_eq!(
            spec.entries,
            [
                Entry { path: "data".into(), kind: Kind::Dir, uid: 65532, gid: 65532 },
                Entry { path: "gati-backend".into(), kind: Kind::Binary, uid: 0, gid: 0 },
            ]
        );
        assert_eq!(spec.user, "65532:65532");
        assert_eq!(
            spec.env,
            [
                DEFAULT_PATH,
                "GATI_HOST=0.0.0.0",
                "GATI_PORT=8000",
                "GATI_DATA_DIR=/data",
                "GATI_CONTAINER_HOSTS=backend"
            ]
        );
        assert_eq!((spec.entrypoint, spec.cmd), (vec!["/gati-backend".to_string()], vec![]));
        assert_eq!((spec.working_dir.as_deref(), &spec.volumes[..]), (Some("/data"), &["/data".to_string()][..]));
        assert_eq!(spec.exposed_ports, ["8000/tcp"]);
        let check = spec.healthcheck.unwrap();
        assert_eq!(check.test, ["CMD", "/gati-backend", "healthcheck"]);
        assert_eq!(
            (check.interval, check.timeout, check.start_period, check.retries),
            (5e9 as u64, 3e9 as u64, 5e9 as u64, 3)
        );
        // Build arguments replace the ARG defaults; the others keep theirs.
        assert_eq!(spec.labels["org.opencontainers.image.version"], "1.2.3");
        assert_eq!(spec.labels["org.opencontainers.image.revision"], "abc");
        assert_eq!(spec.labels["org.opencontainers.image.created"], "unknown");
        assert_eq!(spec.labels["org.opencontainers.image.title"], "gati-backend");
        assert_eq!(spec.labels["org.opencontainers.image.licenses"], "MIT");
    }

    #[test]
    fn reads_every_services_dockerfile() {
        let mcp = read("mcp-server", &args(&[]));
        assert_eq!((mcp.entrypoint, mcp.cmd), (vec!["/gati-mcp-server".to_string()], vec!["--http".to_string()]));
        assert_eq!(mcp.exposed_ports, ["8080/tcp"]);
        let dashboard = read("dashboard", &args(&[]));
        assert_eq!(dashboard.entries, [Entry { path: "gati-dashboard".into(), kind: Kind::Binary, uid: 0, gid: 0 }]);
        assert!(dashboard.env.contains(&"BACKEND_URL=http://backend:8000".to_string()));
    }

    #[test]
    fn refuses_what_needs_a_builder_or_a_shell() {
        let refused = |dockerfile: &str| {
            let e = ImageSpec::from_dockerfile(dockerfile, "gati-x", &BTreeMap::new()).unwrap_err();
            format!("{e:#}")
        };
        let base = "FROM scratch\nUSER 1:1\nCOPY gati-x /gati-x\n";
        assert!(refused("FROM debian:12\n").contains("line 1"));
        assert!(refused(&format!("{base}RUN true\n")).contains("line 4: RUN true"));
        assert!(refused(&format!("{base}ENTRYPOINT /gati-x --http\n")).contains("JSON array"));
        assert!(refused(&format!("{base}COPY secrets.txt /s\n")).contains("only the binary"));
        assert!(refused("FROM scratch\nUSER 0:0\nCOPY gati-x /gati-x\n").contains("non-root"));
        assert!(refused("FROM scratch\nUSER nobody\nCOPY gati-x /gati-x\n").contains("numeric"));
        assert!(refused("FROM scratch\nUSER 1:1\n").contains("no binary"));
        let e = ImageSpec::from_dockerfile(base, "gati-x", &args(&[("VERSION", "1")])).unwrap_err();
        assert!(e.to_string().contains("declares no `ARG VERSION`"), "{e}");
    }

    #[test]
    fn lexes_like_docker() {
        let vars = args(&[("V", "1.0")]);
        assert_eq!(words(r#"a="x ${V}" b='$V' c=\"q\" d=$V"#, &vars).unwrap(), ["a=x 1.0", "b=$V", "c=\"q\"", "d=1.0"]);
        let joined = instructions("# c\nLABEL a=1 \\\n  # inside\n  b=2\n\nUSER 1\n");
        assert_eq!(joined, [(2, "LABEL a=1 b=2".to_string()), (6, "USER 1".to_string())]);
        assert_eq!(nanoseconds("1m30s").unwrap(), 90_000_000_000);
        assert!(nanoseconds("5").is_err());
    }
}
