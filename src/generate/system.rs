//! The small system files: users and groups with their homes, os-release, literal files
//! and symlinks a rule asks for, busybox applet links, and the dpkg status entries that
//! image scanners read.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::GenError;
use crate::layer::{Entry, EntryKind};
use crate::rules::{Busybox, LiteralFile, OsRelease, Users};

/// A regular root-owned file made by `generator` (its origin names it).
pub fn file(path: &str, data: Vec<u8>, mode: u32, mtime: u64, generator: &str) -> Entry {
    Entry {
        path: path.trim_start_matches('/').to_owned(),
        kind: EntryKind::File {
            data: Arc::new(data),
            link_group: None,
        },
        mode,
        uid: 0,
        gid: 0,
        mtime,
        origin: format!("generated:{generator}"),
    }
}

/// `/etc/passwd`, `/etc/group` and each user's home directory.
pub fn users(spec: &Users, mtime: u64) -> Result<Vec<Entry>, GenError> {
    let err = |what: String| GenError {
        generator: "users",
        what,
    };
    let mut names = BTreeSet::new();
    let mut passwd = String::new();
    let mut out = Vec::new();
    for u in &spec.users {
        for field in [&u.name, &u.home, &u.shell] {
            if field.is_empty() || field.contains([':', '\n']) {
                return Err(err(format!(
                    "user {:?}: name, home and shell must be non-empty and free of ':' and newlines",
                    u.name
                )));
            }
        }
        if !names.insert(&u.name) {
            return Err(err(format!("user {} is listed twice", u.name)));
        }
        if !spec.groups.iter().any(|g| g.gid == u.gid) {
            return Err(err(format!(
                "user {}'s group {} is not in `groups`",
                u.name, u.gid
            )));
        }
        let gecos = u.gecos.clone().unwrap_or_else(|| u.name.clone());
        passwd.push_str(&format!(
            "{}:x:{}:{}:{gecos}:{}:{}\n",
            u.name, u.uid, u.gid, u.home, u.shell
        ));
        // Homes that exist in every Linux tree (`/`) or mean "none" are not created.
        if u.home != "/" && u.home != "/nonexistent" && u.home.starts_with('/') {
            out.push(Entry {
                path: u.home.trim_start_matches('/').to_owned(),
                kind: EntryKind::Dir,
                mode: 0o700,
                uid: u.uid,
                gid: u.gid,
                mtime,
                origin: "generated:users".to_owned(),
            });
        }
    }
    let mut group = String::new();
    let mut gnames = BTreeSet::new();
    for g in &spec.groups {
        if g.name.is_empty() || g.name.contains([':', '\n']) || !gnames.insert(&g.name) {
            return Err(err(format!(
                "group {:?} is empty, malformed or listed twice",
                g.name
            )));
        }
        group.push_str(&format!("{}:x:{}:{}\n", g.name, g.gid, g.members.join(",")));
    }
    out.push(file(
        "etc/passwd",
        passwd.into_bytes(),
        0o644,
        mtime,
        "users",
    ));
    out.push(file("etc/group", group.into_bytes(), 0o644, mtime, "users"));
    Ok(out)
}

/// Write `/usr/lib/os-release` from the distro's (`original`, as base-files ships it).
pub fn os_release(spec: &OsRelease, original: &[u8], mtime: u64) -> Result<Entry, GenError> {
    let err = |what: String| GenError {
        generator: "os-release",
        what,
    };
    let text = std::str::from_utf8(original)
        .map_err(|_| err("/usr/lib/os-release is not UTF-8".to_owned()))?;
    let fields: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        .collect();
    let mut out = String::new();
    for (key, template) in &spec.fields {
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(err(format!(
                "{key:?} is not an os-release key (A-Z, 0-9, _)"
            )));
        }
        let mut value = String::new();
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            value.push_str(&rest[..open]);
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| err(format!("{key}: unclosed {{ in {template:?}")))?;
            let name = &rest[open + 1..open + close];
            let v = fields
                .get(name)
                .ok_or_else(|| err(format!("{key}: the distro's os-release has no {name}")))?;
            value.push_str(v);
            rest = &rest[open + close + 1..];
        }
        value.push_str(rest);
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!("{key}=\"{quoted}\"\n"));
    }
    Ok(file(
        "usr/lib/os-release",
        out.into_bytes(),
        0o644,
        mtime,
        "os-release",
    ))
}

/// Literal files.
pub fn files(spec: &BTreeMap<String, LiteralFile>, mtime: u64) -> Result<Vec<Entry>, GenError> {
    spec.iter()
        .map(|(path, f)| {
            check_abs("files", path)?;
            Ok(file(
                path,
                f.content.clone().into_bytes(),
                f.mode & 0o7777,
                mtime,
                "files",
            ))
        })
        .collect()
}

/// Symlinks (`"/usr/bin/python" = "python3"`), as Debian's alternatives would make.
pub fn symlinks(spec: &BTreeMap<String, String>, mtime: u64) -> Result<Vec<Entry>, GenError> {
    spec.iter()
        .map(|(path, target)| {
            check_abs("symlinks", path)?;
            if target.is_empty() {
                return Err(GenError {
                    generator: "symlinks",
                    what: format!("{path}: empty target"),
                });
            }
            Ok(Entry {
                path: path.trim_start_matches('/').to_owned(),
                kind: EntryKind::Symlink {
                    target: target.clone(),
                },
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime,
                origin: "generated:symlinks".to_owned(),
            })
        })
        .collect()
}

fn check_abs(generator: &'static str, path: &str) -> Result<(), GenError> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(GenError {
            generator,
            what: format!("{path:?} must be an absolute, normalised path"),
        })
    }
}

/// The applet names compiled into a busybox binary, read from its name table (which starts
/// `[`, `[[`), so that links match the binary on any architecture without running it.
pub fn busybox_applets(binary: &[u8]) -> Result<Vec<String>, GenError> {
    let err = |what: &str| GenError {
        generator: "busybox",
        what: what.to_owned(),
    };
    let start = binary
        .windows(5)
        .position(|w| w == b"[\0[[\0")
        .ok_or_else(|| err("no applet table in the busybox binary (is it busybox?)"))?;
    let mut names = BTreeSet::new();
    for name in binary[start..].split(|b| *b == 0) {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"[-_.".contains(b));
        if !valid {
            break;
        }
        names.insert(String::from_utf8_lossy(name).into_owned());
    }
    if names.len() < 10 {
        return Err(err("the busybox applet table lists fewer than 10 applets"));
    }
    Ok(names.into_iter().collect())
}

/// Move the busybox binary into `spec.dir` and link every applet to it.
pub fn busybox(spec: &Busybox, binary: &Entry, mtime: u64) -> Result<Vec<Entry>, GenError> {
    check_abs("busybox", &spec.dir)?;
    let EntryKind::File { data, .. } = &binary.kind else {
        return Err(GenError {
            generator: "busybox",
            what: format!("{} is not a regular file", binary.abs_path()),
        });
    };
    let dir = spec.dir.trim_start_matches('/');
    let mut out = vec![Entry {
        path: format!("{dir}/busybox"),
        kind: EntryKind::File {
            data: Arc::clone(data),
            link_group: None,
        },
        mode: binary.mode,
        uid: 0,
        gid: 0,
        mtime: binary.mtime,
        origin: "generated:busybox".to_owned(),
    }];
    for applet in busybox_applets(data)? {
        if applet == "busybox" {
            continue;
        }
        out.push(Entry {
            path: format!("{dir}/{applet}"),
            kind: EntryKind::Symlink {
                target: "busybox".to_owned(),
            },
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime,
            origin: "generated:busybox".to_owned(),
        });
    }
    Ok(out)
}

/// `/var/lib/dpkg/status.d/<package>` (its control stanza, as scanners such as syft and
/// trivy read distroless images) and `<package>.md5sums` listing only the files the image
/// ships. `shipped` holds image paths without the leading `/`; `rename` maps a path in the
/// package's md5sums to its image path (the merged-/usr rewrite).
pub fn dpkg_status(
    package: &str,
    control: &str,
    md5sums: Option<&str>,
    shipped: &BTreeSet<&str>,
    rename: &dyn Fn(&str) -> String,
    mtime: u64,
) -> Vec<Entry> {
    let mut stanza = control.trim_end().to_owned();
    stanza.push('\n');
    // dpkg's status file records installation state; scanners expect the field.
    if !stanza.contains("\nStatus:") {
        stanza = stanza.replacen('\n', "\nStatus: install ok installed\n", 1);
    }
    let mut out = vec![file(
        &format!("var/lib/dpkg/status.d/{package}"),
        stanza.into_bytes(),
        0o644,
        mtime,
        "dpkg-status",
    )];
    if let Some(sums) = md5sums {
        let kept: String = sums
            .lines()
            .filter(|l| {
                l.split_once("  ")
                    .is_some_and(|(_, p)| shipped.contains(rename(p.trim()).as_str()))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if !kept.is_empty() {
            out.push(file(
                &format!("var/lib/dpkg/status.d/{package}.md5sums"),
                kept.into_bytes(),
                0o644,
                mtime,
                "dpkg-status",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: &Entry) -> String {
        match &e.kind {
            EntryKind::File { data, .. } => String::from_utf8(data.to_vec()).unwrap(),
            _ => panic!("not a file"),
        }
    }

    #[test]
    fn users_write_passwd_group_and_private_homes() {
        let spec: Users = toml::from_str(
            r#"
users = [
  { name = "root", uid = 0, gid = 0, home = "/root" },
  { name = "nobody", uid = 65534, gid = 65534, home = "/nonexistent" },
  { name = "nonroot", uid = 65532, gid = 65532, home = "/home/nonroot" },
]
groups = [
  { name = "root", gid = 0 },
  { name = "nobody", gid = 65534 },
  { name = "nonroot", gid = 65532 },
]
"#,
        )
        .unwrap();
        let out = users(&spec, 7).unwrap();
        let passwd = out.iter().find(|e| e.path == "etc/passwd").unwrap();
        assert_eq!(
            text(passwd),
            "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
        );
        let group = out.iter().find(|e| e.path == "etc/group").unwrap();
        assert_eq!(
            text(group),
            "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
        );
        let home = out.iter().find(|e| e.path == "home/nonroot").unwrap();
        assert_eq!((home.mode, home.uid, home.gid), (0o700, 65532, 65532));
        assert!(!out.iter().any(|e| e.path == "nonexistent"));
        let mut bad = spec.clone();
        bad.users[0].gid = 9;
        assert!(users(&bad, 0).unwrap_err().to_string().contains("group 9"));
    }

    #[test]
    fn os_release_keeps_debian_identity_under_the_new_name() {
        let debian = b"PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION=\"13 (trixie)\"\nVERSION_CODENAME=trixie\nID=debian\n";
        let spec: OsRelease = toml::from_str(
            r#"fields = [["PRETTY_NAME", "Distroless"], ["NAME", "{NAME}"], ["ID", "{ID}"], ["VERSION_ID", "{VERSION_ID}"], ["VERSION", "{NAME} {VERSION}"]]"#,
        )
        .unwrap();
        let e = os_release(&spec, debian, 0).unwrap();
        assert_eq!(
            text(&e),
            "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"13\"\nVERSION=\"Debian GNU/Linux 13 (trixie)\"\n"
        );
        let missing: OsRelease = toml::from_str(r#"fields = [["X", "{NOPE}"]]"#).unwrap();
        assert!(
            os_release(&missing, debian, 0)
                .unwrap_err()
                .to_string()
                .contains("NOPE")
        );
    }

    #[test]
    fn busybox_applets_come_from_the_name_table() {
        let mut bin = b"\x7fELF junk\0more junk\0".to_vec();
        let names = [
            "[", "[[", "ash", "cat", "echo", "ls", "mkdir", "rm", "sh", "sleep", "true", "wget",
        ];
        for n in names {
            bin.extend_from_slice(n.as_bytes());
            bin.push(0);
        }
        bin.extend_from_slice(b"\0\x01\x02binary");
        let applets = busybox_applets(&bin).unwrap();
        assert_eq!(applets, names.map(String::from).to_vec());
        assert!(busybox_applets(b"no table here").is_err());
        let binary = file("usr/bin/busybox", bin, 0o755, 3, "t");
        let out = busybox(
            &Busybox {
                dir: "/busybox".into(),
            },
            &binary,
            9,
        )
        .unwrap();
        assert_eq!(out[0].path, "busybox/busybox");
        assert_eq!(out.len(), names.len() + 1);
        assert!(out.iter().any(|e| e.path == "busybox/sh"
            && e.kind
                == EntryKind::Symlink {
                    target: "busybox".into()
                }));
    }

    #[test]
    fn dpkg_status_lists_only_shipped_files() {
        let shipped: BTreeSet<&str> = ["usr/lib/x86_64-linux-gnu/libc.so.6"].into();
        let rename = |p: &str| {
            p.strip_prefix("lib/")
                .map_or(p.to_owned(), |r| format!("usr/lib/{r}"))
        };
        let out = dpkg_status(
            "libc6",
            "Package: libc6\nVersion: 2.41-12\nArchitecture: amd64\n",
            Some("aaaa  lib/x86_64-linux-gnu/libc.so.6\nbbbb  usr/share/doc/libc6/changelog.gz\n"),
            &shipped,
            &rename,
            0,
        );
        assert_eq!(
            text(&out[0]),
            "Package: libc6\nStatus: install ok installed\nVersion: 2.41-12\nArchitecture: amd64\n"
        );
        assert_eq!(text(&out[1]), "aaaa  lib/x86_64-linux-gnu/libc.so.6\n");
    }
}
