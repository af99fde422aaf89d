//! File-tree chores: remove, copy, hard-link, clone a debless cache, measure a tree.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::Context;

/// `rm -rf PATH`.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// `mkdir -p PATH`.
pub fn create_dir(path: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))
}

/// `ln -f FROM TO`, creating TO's directory.
pub fn hard_link(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        create_dir(dir)?;
    }
    remove(to)?;
    fs::hard_link(from, to)
        .with_context(|| format!("cannot link {} to {}", from.display(), to.display()))
}

/// How files are copied by [`copy_tree`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `cp -a`: copies with their modification times.
    Copy,
    /// `cp -al`: hard links.
    Link,
}

/// `cp -a FROM TO`.
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    tree(from, to, Mode::Copy)
}

fn tree(from: &Path, to: &Path, mode: Mode) -> anyhow::Result<()> {
    let meta =
        fs::symlink_metadata(from).with_context(|| format!("cannot read {}", from.display()))?;
    if meta.is_dir() {
        create_dir(to)?;
        for entry in
            fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
        {
            let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
            tree(&entry.path(), &to.join(entry.file_name()), mode)?;
        }
        fs::set_permissions(to, meta.permissions())
            .with_context(|| format!("cannot set the mode of {}", to.display()))
    } else if meta.is_symlink() {
        let target =
            fs::read_link(from).with_context(|| format!("cannot read {}", from.display()))?;
        std::os::unix::fs::symlink(target, to)
            .with_context(|| format!("cannot create {}", to.display()))
    } else if mode == Mode::Link {
        hard_link(from, to)
    } else {
        fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        let modified = meta.modified()?;
        fs::File::options()
            .write(true)
            .open(to)
            .and_then(|f| f.set_modified(modified))
            .with_context(|| format!("cannot set the time of {}", to.display()))
    }
}

/// What [`clone_cache`] leaves out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Without {
    /// A full copy.
    Nothing,
    /// No layer or document cache (`CACHE/layers/`, `CACHE/sboms/`).
    Layers,
    /// No .deb: only the layer blobs stay in `CACHE/sha256/`.
    Debs,
}

/// A copy of a debless cache. The content-addressed blobs (`sha256/`) are only ever
/// replaced by rename, so hard links are safe and cheap; anything else (the layer and
/// document caches, lock files) is copied.
pub fn clone_cache(from: &Path, to: &Path, without: Without) -> anyhow::Result<()> {
    create_dir(to)?;
    let mut entries = Vec::new();
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        entries.push(entry.with_context(|| format!("cannot read {}", from.display()))?);
    }
    for entry in entries {
        let name = entry.file_name();
        let (src, dst) = (entry.path(), to.join(&name));
        match (name.to_str(), without) {
            (Some("sha256"), Without::Debs) => {
                create_dir(&dst)?;
                for blob in
                    fs::read_dir(&src).with_context(|| format!("cannot read {}", src.display()))?
                {
                    let blob = blob?.path();
                    if !is_deb(&blob)? {
                        hard_link(&blob, &dst.join(blob.file_name().unwrap_or_default()))?;
                    }
                }
            }
            (Some("sha256"), _) => tree(&src, &dst, Mode::Link)?,
            (Some("layers" | "sboms"), Without::Layers) => {}
            _ => tree(&src, &dst, Mode::Copy)?,
        }
    }
    Ok(())
}

/// A .deb is an ar archive; layer blobs are gzip or zstd.
fn is_deb(path: &Path) -> anyhow::Result<bool> {
    let mut head = Vec::with_capacity(7);
    fs::File::open(path)
        .and_then(|f| f.take(7).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(head == b"!<arch>")
}

/// `du -sb PATH`: the apparent size of everything under PATH, hard links counted once;
/// 0 if absent.
pub fn bytes(path: &Path) -> anyhow::Result<u64> {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    let mut stack = vec![path.to_owned()];
    while let Some(p) = stack.pop() {
        let meta = match fs::symlink_metadata(&p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            other => other.with_context(|| format!("cannot read {}", p.display()))?,
        };
        if !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.len();
        if meta.is_dir() {
            for entry in fs::read_dir(&p).with_context(|| format!("cannot read {}", p.display()))? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_clone_leaves_out_what_it_is_told() -> anyhow::Result<()> {
        let d = tempfile::tempdir()?;
        let cache = d.path().join("cache");
        create_dir(&cache.join("sha256"))?;
        create_dir(&cache.join("layers"))?;
        fs::write(cache.join("sha256/deb"), b"!<arch>\nmore")?;
        fs::write(cache.join("sha256/layer"), b"\x1f\x8b")?;
        fs::write(cache.join("layers/k.json"), b"{}")?;
        let names = |dir: &Path| -> anyhow::Result<Vec<String>> {
            let mut v = Vec::new();
            for sub in ["sha256", "layers"] {
                if let Ok(rd) = fs::read_dir(dir.join(sub)) {
                    for e in rd {
                        v.push(format!("{sub}/{}", e?.file_name().to_string_lossy()));
                    }
                }
            }
            v.sort();
            Ok(v)
        };
        let all = d.path().join("all");
        clone_cache(&cache, &all, Without::Nothing)?;
        assert_eq!(
            names(&all)?,
            ["layers/k.json", "sha256/deb", "sha256/layer"]
        );
        // Blobs are shared, not copied: the clone adds only the layer entry and directories.
        assert_eq!(fs::metadata(all.join("sha256/deb"))?.nlink(), 2);
        let no_layers = d.path().join("no-layers");
        clone_cache(&cache, &no_layers, Without::Layers)?;
        assert_eq!(names(&no_layers)?, ["sha256/deb", "sha256/layer"]);
        let no_debs = d.path().join("no-debs");
        clone_cache(&cache, &no_debs, Without::Debs)?;
        assert_eq!(names(&no_debs)?, ["layers/k.json", "sha256/layer"]);
        Ok(())
    }

    #[test]
    fn bytes_counts_hard_links_once() -> anyhow::Result<()> {
        let d = tempfile::tempdir()?;
        let dir = d.path().join("t");
        create_dir(&dir)?;
        fs::write(dir.join("a"), vec![0u8; 1000])?;
        fs::hard_link(dir.join("a"), dir.join("b"))?;
        let dir_size = fs::metadata(&dir)?.len();
        assert_eq!(bytes(&dir)?, dir_size + 1000);
        assert_eq!(bytes(&d.path().join("absent"))?, 0);
        Ok(())
    }
}
