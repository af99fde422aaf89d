//! The OCI runtime config (`config.json`) of a bundle, from an image's config as the OCI
//! image spec's "conversion to runtime config" describes: the process is Entrypoint then
//! Cmd, with the image's Env, WorkingDir and User (a name looked up in the root
//! filesystem's /etc/passwd and /etc/group). Namespaces and mounts are the usual ones of a
//! container; nothing that needs cgroup or rlimit control is asked for, so runc runs it
//! where those are not delegated (CI jobs, sandboxes).

use std::path::Path;

use serde_json::{Value, json};

use super::UnpackError;

/// The runtime spec version written.
const OCI_VERSION: &str = "1.0.2";

/// The runtime config of the image whose config is `image` and root filesystem `rootfs`;
/// `command`, if not empty, runs instead of the image's Entrypoint and Cmd.
pub fn runtime_config(
    image: &Value,
    rootfs: &Path,
    command: &[String],
) -> Result<Value, UnpackError> {
    let c = &image["config"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut args = strings(&c["Entrypoint"]);
    args.extend(strings(&c["Cmd"]));
    if !command.is_empty() {
        args = command.to_vec();
    }
    if args.is_empty() {
        return Err(UnpackError::Config {
            what: "the image has neither Entrypoint nor Cmd (a base image); name the \
                   program to run after `--`, e.g. `debless unpack IMAGE DIR --bundle -- \
                   /busybox/sh`"
                .into(),
        });
    }
    let mut env = strings(&c["Env"]);
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
    }
    let cwd = c["WorkingDir"]
        .as_str()
        .filter(|w| !w.is_empty())
        .unwrap_or("/");
    let (uid, gid) = user(c["User"].as_str().unwrap_or(""), rootfs)?;
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let annotations: serde_json::Map<String, Value> =
        c["Labels"].as_object().cloned().unwrap_or_default();
    Ok(json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": false,
            "user": { "uid": uid, "gid": gid },
            "args": args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "debless",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
        ],
        "annotations": annotations,
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware",
            ],
            "readonlyPaths": [
                "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }))
}

/// `User` (`uid`, `uid:gid`, `name`, `name:group`; empty is root) as numeric ids, names
/// looked up in the root filesystem (never the host's).
fn user(spec: &str, rootfs: &Path) -> Result<(u32, u32), UnpackError> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
    let group = std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
    // passwd: name:x:uid:gid:...; group: name:x:gid:...
    let field = |text: &str, name: &str, n: usize| -> Option<u32> {
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(n)?.parse().ok())
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(uid) => {
            // A numeric user's primary group is its passwd entry's, if it has one.
            let gid = passwd
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.get(2).and_then(|x| x.parse::<u32>().ok()) == Some(uid))
                .and_then(|f| f.get(3)?.parse().ok())
                .unwrap_or(0);
            (uid, gid)
        }
        Err(_) => {
            let uid = field(&passwd, u, 2).ok_or_else(|| UnpackError::Config {
                what: format!("User {u:?} is not in the image's /etc/passwd"),
            })?;
            (uid, field(&passwd, u, 3).unwrap_or(0))
        }
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => field(&group, g, 2).ok_or_else(|| UnpackError::Config {
                what: format!("group {g:?} of User {spec:?} is not in the image's /etc/group"),
            })?,
        },
    };
    Ok((uid, gid))
}
