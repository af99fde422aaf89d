//! The fleet cases' registry: Debian's `docker-registry` on a free 127.0.0.1 port, its
//! storage under `BENCH_DIR/registry`, used as the layer cache runners share
//! (`--cache-registry`). Killed when the bench ends.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The registry's binary (Debian package docker-registry).
pub const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; stopped on drop.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
}

impl Registry {
    /// Start one with empty storage under `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Registry> {
        crate::files::remove(dir)?;
        crate::files::create_dir(dir)?;
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .with_context(|| format!("cannot write {}", config.display()))?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {BINARY}"))?;
        let mut r = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if r.child.try_wait()?.is_some() {
                bail!(
                    "{BINARY} exited; see {}",
                    dir.join("registry.log").display()
                );
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{BINARY} did not answer on port {port} within 15 s")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
