//! Challenges, auth files and credentials.

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
