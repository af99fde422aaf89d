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
mod tests {
    use super::*;

    #[test]
    fn parses_a_bearer_challenge_with_a_quoted_comma() {
        let c = parse_www_authenticate(
            r#"Bearer realm="https://127.0.0.1:8443/token",service="127.0.0.1:5000",scope="repository:samalba/my-app:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://127.0.0.1:8443/token"));
        assert_eq!(c[0].param("service"), Some("127.0.0.1:5000"));
        assert_eq!(
            c[0].param("scope"),
            Some("repository:samalba/my-app:pull,push")
        );
    }

    #[test]
    fn parses_basic_spaces_escapes_tokens_and_several_challenges() {
        let c = parse_www_authenticate(
            r#"Basic realm="Registry \"Realm\"", Bearer  realm = "http://127.0.0.1:1/t" , service=reg,error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("Registry \"Realm\""));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("http://127.0.0.1:1/t"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        // Names are case-insensitive.
        let c = parse_www_authenticate(r#"BEARER Realm="r",SCOPE="a b""#);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("scope"), Some("a b"));
        assert!(parse_www_authenticate("").is_empty());
        assert_eq!(parse_www_authenticate("Basic")[0].scheme, "basic");
    }

    #[test]
    fn docker_config_auth_and_username_password_entries() {
        let auth = STANDARD.encode("alice:s3cr:et");
        let text = format!(
            r#"{{"auths": {{
                "127.0.0.1:5000": {{"auth": "{auth}"}},
                "https://127.0.0.2:443/v1/": {{"username": "bob", "password": "pw"}},
                "127.0.0.3": {{}}
            }}, "credsStore": "desktop"}}"#
        );
        let c = parse_auth_file(text.as_bytes(), "127.0.0.1:5000")
            .unwrap()
            .unwrap();
        // Only the first colon separates: passwords may contain colons.
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cr:et")
        );
        let c = parse_auth_file(text.as_bytes(), "127.0.0.2:443")
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw"));
        assert_eq!(parse_auth_file(text.as_bytes(), "127.0.0.3").unwrap(), None);
        assert_eq!(parse_auth_file(text.as_bytes(), "127.0.0.1").unwrap(), None);
        assert_eq!(parse_auth_file(b"{}", "127.0.0.1").unwrap(), None);
    }

    #[test]
    fn bad_auth_files_are_errors_that_say_what_to_fix() {
        let e = parse_auth_file(b"{not json", "h").unwrap_err();
        assert!(matches!(e, AuthFileError::NotJson(_)), "{e}");
        assert!(e.to_string().contains("not a valid auth file"), "{e}");
        let e = parse_auth_file(br#"{"auths":{"h":{"auth":"!!!"}}}"#, "h").unwrap_err();
        assert!(e.to_string().contains("docker login h"), "{e}");
        let nocolon = STANDARD.encode("justauser");
        let text = format!(r#"{{"auths":{{"h":{{"auth":"{nocolon}"}}}}}}"#);
        assert!(parse_auth_file(text.as_bytes(), "h").is_err());
    }

    #[test]
    fn lookup_takes_the_first_file_with_an_entry_and_names_it() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.json");
        let b = tmp.path().join("b.json");
        std::fs::write(
            &a,
            r#"{"auths":{"other:1":{"username":"x","password":"y"}}}"#,
        )
        .unwrap();
        std::fs::write(&b, r#"{"auths":{"h:1":{"username":"u","password":"p"}}}"#).unwrap();
        let files = vec![tmp.path().join("missing.json"), a, b.clone()];
        let c = lookup(&files, "h:1").unwrap().unwrap();
        assert_eq!(c.username, "u");
        assert_eq!(c.source, b.display().to_string());
        assert!(lookup(&files, "nowhere:1").unwrap().is_none());
    }

    /// A login with auth file `file` holding `user:pass` for host `h`.
    fn with_file(dir: &std::path::Path) -> Login {
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"auths":{"h":{"username":"file-user","password":"file-pw"}}}"#,
        )
        .unwrap();
        Login {
            auth_files: vec![file],
            ..Login::default()
        }
    }

    fn who(login: &Login) -> Option<(String, String, String)> {
        login
            .credentials("h")
            .unwrap()
            .map(|c| (c.username, c.password, c.source))
    }

    #[test]
    fn flags_then_environment_then_auth_files() {
        let tmp = tempfile::tempdir().unwrap();
        let files = with_file(tmp.path());
        let file = files.auth_files[0].display().to_string();
        let s = |a: &str, b: &str, c: &str| Some((a.to_owned(), b.to_owned(), c.to_owned()));
        assert_eq!(who(&files), s("file-user", "file-pw", &file));
        let env = Login {
            env_username: Some("env-user".into()),
            env_password: Some("env-pw".into()),
            ..files.clone()
        };
        assert_eq!(who(&env), s("env-user", "env-pw", "$DEBLESS_REGISTRY_USER"));
        let flags = Login {
            username: Some("flag-user".into()),
            password: Some("flag-pw".into()),
            ..env.clone()
        };
        assert_eq!(who(&flags), s("flag-user", "flag-pw", "--username"));
        // Each of the two is taken from the first level that has it.
        let mixed = Login {
            username: Some("flag-user".into()),
            ..env.clone()
        };
        assert_eq!(who(&mixed), s("flag-user", "env-pw", "--username"));
        // No entry for the host: anonymous.
        assert_eq!(files.credentials("other").unwrap(), None);
        assert_eq!(Login::default().credentials("h").unwrap(), None);
    }

    #[test]
    fn half_a_login_is_an_error_not_an_anonymous_push() {
        let tmp = tempfile::tempdir().unwrap();
        let files = with_file(tmp.path());
        let cases = [
            (
                Login {
                    password: Some("pw".into()),
                    ..files.clone()
                },
                "--password-stdin needs --username",
            ),
            (
                Login {
                    env_password: Some("pw".into()),
                    ..files.clone()
                },
                "$DEBLESS_REGISTRY_PASSWORD is set but no username is",
            ),
            (
                Login {
                    env_username: Some("u".into()),
                    ..files.clone()
                },
                "$DEBLESS_REGISTRY_USER gives a username but no password",
            ),
            (
                Login {
                    username: Some("u".into()),
                    ..files.clone()
                },
                "--username gives a username but no password",
            ),
        ];
        for (login, want) in cases {
            let e = login.credentials("h").unwrap_err().to_string();
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
        // A broken auth file names itself.
        std::fs::write(&files.auth_files[0], "{").unwrap();
        let e = files.credentials("h").unwrap_err();
        assert!(
            matches!(&e, CredentialError::AuthFile { path, .. } if *path == files.auth_files[0]),
            "{e}"
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
            source: "--username".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let login = Login {
            password: Some("hunter2".into()),
            env_password: Some("hunter2".into()),
            ..Login::default()
        };
        assert!(!format!("{login:?}").contains("hunter2"));
        assert_eq!(
            c.basic_header(),
            format!("Basic {}", STANDARD.encode("u:hunter2"))
        );
    }

    #[test]
    fn password_stdin_takes_one_line() {
        let mut r = std::io::Cursor::new(b"pa ss\r\nnext\n".to_vec());
        assert_eq!(read_password(&mut r).unwrap(), "pa ss");
        let mut r = std::io::Cursor::new(b"\n".to_vec());
        assert!(read_password(&mut r).is_err());
    }
}
