//! The host's Debian mirror, read from its apt sources the way debless reads them
//! (`debless::fetch::mirror`): one root URL per archive (`debian`, `debian-security`).

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use debless::fetch::mirror::{Mirror, MirrorConfig, mirror_list};

/// The host's mirrors that serve the archives the bench seeds from.
pub struct HostMirrors {
    /// The apt sources file they came from (for messages).
    file: String,
    /// One mirror per apt URI that names an archive, in file order.
    mirrors: Vec<Mirror>,
}

impl HostMirrors {
    /// Read `apt_sources` (one `.sources` or `.list` file) for URIs naming one of
    /// `archives`. `scratch` is an empty directory to lay the file out in, since debless
    /// reads an `/etc/apt`-shaped tree.
    pub fn read(apt_sources: &Path, archives: &[&str], scratch: &Path) -> anyhow::Result<Self> {
        let name = apt_sources
            .file_name()
            .with_context(|| format!("APT_SOURCES={} names no file", apt_sources.display()))?;
        let etc_apt = scratch.join("etc-apt");
        crate::files::create_dir(&etc_apt.join("sources.list.d"))?;
        std::os::unix::fs::symlink(apt_sources, etc_apt.join("sources.list.d").join(name))
            .with_context(|| {
                format!(
                    "cannot link {} into {}",
                    apt_sources.display(),
                    etc_apt.display()
                )
            })?;
        let cfg = MirrorConfig {
            flags: &[],
            env: None,
            etc_apt: &etc_apt,
            snapshot_service: None,
            dated: false,
        };
        let mirrors = mirror_list(&cfg, archives).map_err(|e| anyhow!(e))?;
        Ok(HostMirrors {
            file: apt_sources.display().to_string(),
            mirrors,
        })
    }

    /// The root URL (ending in `/`) of `archive` on the host's mirror.
    pub fn root(&self, archive: &str) -> anyhow::Result<String> {
        for m in &self.mirrors {
            if m.archive.as_deref() == Some(archive)
                && let Some(root) = m.root(archive, None)
            {
                return Ok(root);
            }
        }
        bail!(
            "{} has no URIs: entry for the archive {archive}; set APT_SOURCES to the apt \
             sources naming the Debian mirror",
            self.file
        )
    }
}
