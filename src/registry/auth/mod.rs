//! Registry credentials and challenges: where a username and password come from (flags,
//! environment, the auth files `docker login` and `podman login` write) and how a
//! `WWW-Authenticate` header asks for them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Environment variable holding the registry username.
pub const USER_ENV: &str = "DEBLESS_REGISTRY_USER";

/// Environment variable holding the registry password.
pub const PASSWORD_ENV: &str = "DEBLESS_REGISTRY_PASSWORD";

/// Environment variable naming the containers auth file searched first.
pub const AUTH_FILE_ENV: &str = "REGISTRY_AUTH_FILE";

/// Why no usable credentials could be found.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// `--password-stdin` without a username.
    #[error("--password-stdin needs --username (or ${USER_ENV})")]
    PasswordWithoutUser,
    /// `$DEBLESS_REGISTRY_PASSWORD` without a username.
    #[error("${PASSWORD_ENV} is set but no username is: pass --username or set ${USER_ENV}")]
    EnvPasswordWithoutUser,
    /// A username without a password.
    #[error(
        "{from} gives a username but no password: set ${PASSWORD_ENV}, or pipe it to \
         `debless push --password-stdin`"
    )]
    UserWithoutPassword {
        /// Where the username came from (`--username`, `$DEBLESS_REGISTRY_USER`).
        from: String,
    },
    /// `--password-stdin` could not read stdin.
    #[error("cannot read the password from stdin")]
    ReadPassword(#[source] std::io::Error),
    /// `--password-stdin` read an empty line.
    #[error(
        "--password-stdin read an empty password; pipe it in, e.g. \
         `printenv TOKEN | debless push ... --password-stdin`"
    )]
    EmptyPassword,
    /// An auth file exists but cannot be read.
    #[error("{}: cannot read it", path.display())]
    ReadAuthFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An auth file exists but cannot be used.
    #[error("{}", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: AuthFileError,
    },
}

/// What is wrong with an auth file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    /// Not JSON of the expected shape.
    #[error("not a valid auth file; fix or remove it")]
    NotJson(#[source] serde_json::Error),
    /// The entry's `auth` is not base64 of `user:password`.
    #[error(
        "auths.{host:?}.auth is not base64 of \"user:password\"; run `docker login {host}` again"
    )]
    BadAuth {
        /// The registry host.
        host: String,
    },
}

/// A username and password for one registry, and where they came from (for error messages;
/// the password itself is never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password or access token.
    pub password: String,
    /// Where they came from: `--username`, `$DEBLESS_REGISTRY_USER`, an auth file's path.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    /// Everything but the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", STANDARD.encode(pair))
    }
}

/// Where registry credentials come from. One precedence, for `debless push` and
/// `build --push` alike ([`Login::credentials`]):
///
/// 1. `--username` and the password `--password-stdin` read;
/// 2. `$DEBLESS_REGISTRY_USER` and `$DEBLESS_REGISTRY_PASSWORD`;
/// 3. the registry host's `auths` entry in the first of the auth files that has one
///    (`$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`: what
///    `docker login` and `podman login` write; credential helpers are not supported).
///
/// The username and the password are each taken from the first of levels 1 and 2 that has
/// one (`--username` with `$DEBLESS_REGISTRY_PASSWORD` works); one without the other is an
/// error rather than a silent anonymous push. Neither means level 3, and no entry there
/// means anonymous.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Login {
    /// `--username`.
    pub username: Option<String>,
    /// The password `--password-stdin` read.
    pub password: Option<String>,
    /// `$DEBLESS_REGISTRY_USER`.
    pub env_username: Option<String>,
    /// `$DEBLESS_REGISTRY_PASSWORD`.
    pub env_password: Option<String>,
    /// Auth files to search, in order.
    pub auth_files: Vec<PathBuf>,
}

impl std::fmt::Debug for Login {
    /// Everything but the passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |p: &Option<String>| p.as_ref().map(|_| "<redacted>");
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("env_username", &self.env_username)
            .field("env_password", &redact(&self.env_password))
            .field("auth_files", &self.auth_files)
            .finish()
    }
}

impl Login {
    /// Levels 2 and 3 as the environment sets them; no flags.
    pub fn from_env() -> Login {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Login {
            env_username: get(USER_ENV),
            env_password: get(PASSWORD_ENV),
            auth_files: default_auth_files(),
            ..Login::default()
        }
    }

    /// The credentials for `host`, by the precedence above; `None` is anonymous.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>, CredentialError> {
        let (username, from) = match (&self.username, &self.env_username) {
            (Some(u), _) => (u, "--username".to_string()),
            (None, Some(u)) => (u, format!("${USER_ENV}")),
            (None, None) => {
                if self.password.is_some() {
                    return Err(CredentialError::PasswordWithoutUser);
                }
                if self.env_password.is_some() {
                    return Err(CredentialError::EnvPasswordWithoutUser);
                }
                return lookup(&self.auth_files, host);
            }
        };
        let Some(password) = self.password.as_ref().or(self.env_password.as_ref()) else {
            return Err(CredentialError::UserWithoutPassword { from });
        };
        Ok(Some(Credentials {
            username: username.clone(),
            password: password.clone(),
            source: from,
        }))
    }

    /// What [`Login::credentials`] searches, for a message saying none was found.
    pub fn searched(&self) -> String {
        let files = if self.auth_files.is_empty() {
            "no auth files".to_string()
        } else {
            self.auth_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!("--username/--password-stdin, ${USER_ENV}/${PASSWORD_ENV}, {files}")
    }
}

/// The auth files to search, in order: `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
/// `~/.docker/config.json`.
pub fn default_auth_files() -> Vec<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let mut files = Vec::new();
    if let Some(f) = var(AUTH_FILE_ENV) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = var("DOCKER_CONFIG") {
        files.push(PathBuf::from(d).join("config.json"));
    }
    if let Some(h) = var("HOME") {
        files.push(PathBuf::from(h).join(".docker/config.json"));
    }
    files
}

/// Credentials for `host` from the first of `files` that exists and has an entry for it.
/// A file that exists but is not valid JSON is an error: silently pushing anonymously
/// would hide the typo.
fn lookup(files: &[PathBuf], host: &str) -> Result<Option<Credentials>, CredentialError> {
    for path in files {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CredentialError::ReadAuthFile {
                    path: path.clone(),
                    source,
                });
            }
        };
        let found = parse_auth_file(&text, host).map_err(|source| CredentialError::AuthFile {
            path: path.clone(),
            source,
        })?;
        if let Some(c) = found {
            return Ok(Some(Credentials {
                source: path.display().to_string(),
                ..c
            }));
        }
    }
    Ok(None)
}

/// The entry for `host` in a docker `config.json` or containers `auth.json`: `auths.<key>`
/// with `auth` (base64 of `user:password`) or `username` and `password`. Keys may carry a
/// scheme and a path (`https://host/v1/`); they match on the host (and port).
pub fn parse_auth_file(text: &[u8], host: &str) -> Result<Option<Credentials>, AuthFileError> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        auth: Option<String>,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    }
    let file: File = serde_json::from_slice(text).map_err(AuthFileError::NotJson)?;
    // An exact key wins over one that only matches once normalised.
    let entry = file.auths.get(host).or_else(|| {
        file.auths
            .iter()
            .find(|(k, _)| auth_key_host(k) == host)
            .map(|(_, e)| e)
    });
    let Some(entry) = entry else {
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || AuthFileError::BadAuth {
            host: host.to_owned(),
        };
        let decoded = STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (user, pass) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
            source: String::new(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
            source: String::new(),
        })),
        _ => Ok(None),
    }
}

/// `https://host:5000/v1/` → `host:5000`.
fn auth_key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// One challenge of a `WWW-Authenticate` header: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased (`basic`, `bearer`).
    pub scheme: String,
    /// Parameters by lower-cased name (`realm`, `service`, `scope`, `error`).
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter by name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` value (RFC 7235): one or more challenges, each a scheme then
/// comma-separated `name=token` or `name="quoted, string"` parameters.
pub fn parse_www_authenticate(value: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    loop {
        p.skip(|b| b == b' ' || b == b'\t' || b == b',');
        let Some(word) = p.token() else {
            break;
        };
        p.skip(|b| b == b' ' || b == b'\t');
        if p.peek() == Some(b'=') && !out.is_empty() {
            // A parameter of the current challenge.
            p.i += 1;
            p.skip(|b| b == b' ' || b == b'\t');
            let v = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), v);
            }
        } else if p.peek() == Some(b'=') {
            // A parameter before any scheme (or a token68): skip it.
            p.skip(|b| b != b',');
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    /// An RFC 7230 token (plus `/` so that token68 values survive).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b) || b >= 0x80);
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// A quoted string starting at `"`, with backslash escapes.
    fn quoted(&mut self) -> String {
        let mut v = Vec::new();
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(b),
            }
        }
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Read a password from the first line of `r` (`--password-stdin`), without its line end.
pub fn read_password(r: &mut dyn std::io::BufRead) -> Result<String, CredentialError> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(CredentialError::ReadPassword)?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        return Err(CredentialError::EmptyPassword);
    }
    Ok(pw)
}

#[cfg(test)]
mod tests;
