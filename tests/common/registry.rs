//! A real registry for tests: Debian's `docker-registry` (the CNCF distribution server) on
//! a free 127.0.0.1 port, its storage in a temporary directory, killed on drop
//! (`tests/push.rs`, `tests/trust.rs`, `tests/fleet.rs`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{require_tool, stderr};

pub const REGISTRY: &str = "/usr/bin/docker-registry";
/// How to install what these tests need.
pub const INSTALL: &str = "make deps (apt-get install docker-registry apache2-utils skopeo)";

/// A registry on a free 127.0.0.1 port with its storage in a temporary directory; killed
/// on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    /// Start one (`htpasswd`: require this user and password); `None` if a tool is missing.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        if !require_tool(REGISTRY, INSTALL) || !require_tool("skopeo", INSTALL) {
            return None;
        }
        let mut dir = tempfile::tempdir().unwrap();
        let mut auth = String::new();
        if let Some((user, pass)) = htpasswd {
            if !require_tool("htpasswd", INSTALL) {
                return None;
            }
            let o = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .unwrap();
            assert!(o.status.success(), "htpasswd: {}", stderr(&o));
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &o.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: debless-test\n    path: {}\n",
                file.display()
            );
        }
        // The port is free when we look; another process could take it before the registry
        // binds, so try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                     rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(REGISTRY)
                .arg("serve")
                .arg(&config)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut r = Registry { child, port, dir };
            if r.wait_ready() {
                return Some(r);
            }
            dir = r.stop();
        }
        panic!("docker-registry did not start on any port");
    }

    /// Poll `/v2/` until it answers (any status: an auth registry says 401).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if reqwest::blocking::get(format!("http://{}/v2/", self.host())).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Where the registry keeps blob `hex` (filesystem driver layout), for tests that
    /// tamper with what it serves.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Where the registry stores its files (`docker/registry/v2/...`).
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}
