//! `debless inspect --file PATH` and `--package NAME`: which package ships a file of an
//! image, and which files a package ships in it, with the layer each file is in.
//!
//! Who owns what comes from the SPDX document `debless build` wrote next to a layout
//! (`<layout>.spdx/<tag>-<arch>.spdx.json`, used when it describes this very manifest),
//! else from the image's own `/var/lib/dpkg/status.d/<package>.md5sums` (what scanners
//! read; an archive carries no SPDX document). Both list the regular files of each
//! package the image ships: links and directories belong to no package here, so a link is
//! reported with its target and the target's owner. Where a file is, its layer, comes from
//! reading the layers themselves, whatever the source.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{InspectError, layer_reader};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::oci::{ImageRef, LayoutReader, SourceFormat, open_image};

/// What owns what in one image, and from where that was learnt.
struct Ownership {
    /// `spdx` or `dpkg-status`.
    source: &'static str,
    /// Package name → version and architecture.
    packages: BTreeMap<String, (String, String)>,
    /// Image path (with its leading `/`, as the package lists it) → package names.
    files: BTreeMap<String, Vec<String>>,
}

/// One path in an image's merged tree.
#[derive(Debug, Clone)]
struct Node {
    /// Which layer wrote it last (0 = bottom).
    layer: usize,
    /// `file`, `symlink`, `hardlink`, `directory` or `other`.
    kind: &'static str,
    /// Content bytes of a regular file.
    size: u64,
    /// A symlink's or hard link's target.
    link: Option<String>,
}

/// A layer, as a file report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerRef {
    /// 0 is the bottom layer.
    pub index: usize,
    /// Compressed digest.
    pub digest: Digest,
    /// The history entry that made it (its rule and packages).
    pub created_by: String,
}

/// A package, as a report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub architecture: String,
}

/// Where one file of one platform's image comes from.
#[derive(Debug, Clone, Serialize)]
pub struct FileOwner {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: Digest,
    /// The path asked about.
    pub path: String,
    /// The path after following directory links (`/lib` → `/usr/lib` on merged /usr).
    pub resolved: String,
    /// `file`, `symlink`, `hardlink` or `directory`.
    pub kind: &'static str,
    /// Content bytes of a regular file.
    pub size: u64,
    /// A link's target as stored.
    pub link_target: Option<String>,
    /// The layer that holds it.
    pub layer: LayerRef,
    /// The package listing it; none for a file debless generated (passwd, the CA
    /// bundle...), a link or a directory.
    pub package: Option<PackageRef>,
    /// For a link: the file it finally points at and its owner.
    pub target: Option<Box<FileOwner>>,
    /// Where ownership was read: `spdx` or `dpkg-status`.
    pub source: &'static str,
}

/// One file a package ships.
#[derive(Debug, Clone, Serialize)]
pub struct PackageFile {
    /// As the package lists it.
    pub path: String,
    /// Where it is in the image, after directory links.
    pub resolved: String,
    /// Content bytes.
    pub size: u64,
    /// The layer holding it (none if the image lacks it, which a consistent image never does).
    pub layer: Option<usize>,
}

/// What one package ships in one platform's image.
#[derive(Debug, Clone, Serialize)]
pub struct PackageFiles {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: Digest,
    /// The package.
    pub package: PackageRef,
    /// Its files, by path.
    pub files: Vec<PackageFile>,
    /// The image's layers, bottom first (what `layer` indexes).
    pub layers: Vec<LayerRef>,
    /// Where ownership was read: `spdx` or `dpkg-status`.
    pub source: &'static str,
}

/// `inspect --file` or `--package`: one answer per platform of the tag that has it.
#[derive(Debug, Clone, Serialize)]
pub struct Query<T> {
    /// The layout directory or archive.
    pub layout: String,
    /// What it is.
    pub format: SourceFormat,
    /// The tag.
    pub tag: String,
    /// Per platform that has the file or package.
    pub images: Vec<T>,
    /// Platforms of the tag that do not.
    pub missing_on: Vec<String>,
}

impl<T> Query<T> {
    /// The answer for people: `each` platform's answer, then a line per platform without.
    pub fn to_text(&self, each: impl Fn(&T) -> String) -> String {
        let mut s: String = self.images.iter().map(each).collect();
        for p in &self.missing_on {
            s.push_str(&format!("{p}  not in this image\n"));
        }
        s
    }
}

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    /// Reading the image failed.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// No platform of the tag has the path.
    #[error(
        "{layout}:{tag}: no {path} in {platforms}; paths are absolute, as in the image \
         (`debless inspect {layout}:{tag}` lists the largest files)"
    )]
    NoSuchFile {
        /// The layout or archive.
        layout: String,
        /// The tag.
        tag: String,
        /// The path asked about.
        path: String,
        /// The platforms looked in.
        platforms: String,
    },
    /// No platform of the tag has the package.
    #[error(
        "{layout}:{tag}: package {package} is not in {platforms}; `debless inspect \
         {layout}:{tag}` lists its packages"
    )]
    NoSuchPackage {
        /// The layout or archive.
        layout: String,
        /// The tag.
        tag: String,
        /// The package asked about.
        package: String,
        /// The platforms looked in.
        platforms: String,
    },
}

/// Which package ships `file` in each platform image `tag` of `path` reaches.
pub fn file_owner(path: &Path, tag: &str, file: &str) -> Result<Query<FileOwner>, OwnersError> {
    let wanted = normalize(file);
    let mut q = each_image(path, tag, |img| img.owner(&wanted, 0))?;
    if q.images.is_empty() {
        return Err(OwnersError::NoSuchFile {
            layout: q.layout,
            tag: q.tag,
            path: wanted,
            platforms: q.missing_on.join(", "),
        });
    }
    q.images.sort_by(|a, b| a.platform.cmp(&b.platform));
    Ok(q)
}

/// Which files `package` ships in each platform image `tag` of `path` reaches.
pub fn package_files(
    path: &Path,
    tag: &str,
    package: &str,
) -> Result<Query<PackageFiles>, OwnersError> {
    let q = each_image(path, tag, |img| img.package(package))?;
    if q.images.is_empty() {
        return Err(OwnersError::NoSuchPackage {
            layout: q.layout,
            tag: q.tag,
            package: package.to_owned(),
            platforms: q.missing_on.join(", "),
        });
    }
    Ok(q)
}

/// Open `path`, resolve `tag`, and ask `answer` of each platform's image.
fn each_image<T>(
    path: &Path,
    tag: &str,
    answer: impl Fn(&Image) -> Option<T>,
) -> Result<Query<T>, OwnersError> {
    let opened = open_image(path).map_err(InspectError::from)?;
    let resolved = opened.reader.resolve(tag).map_err(InspectError::from)?;
    // Next to a layout, or to an archive (`out/base-debian13.tar` and
    // `out/base-debian13.spdx/`); a docker archive's manifests are made when reading it,
    // so no document names them and its own status.d answers.
    let base = crate::oci::documents_base(path, opened.format);
    let spdx_dir = base
        .file_name()
        .map(|n| base.with_file_name(format!("{}.spdx", n.to_string_lossy())));
    let mut q = Query {
        layout: path.display().to_string(),
        format: opened.format,
        tag: tag.to_owned(),
        images: Vec::new(),
        missing_on: Vec::new(),
    };
    for i in &resolved.images {
        let img = Image::read(&opened.reader, i, spdx_dir.as_deref(), tag)?;
        match answer(&img) {
            Some(a) => q.images.push(a),
            None => q.missing_on.push(img.platform.clone()),
        }
    }
    Ok(q)
}

/// One platform's image, read for a query.
struct Image {
    platform: String,
    digest: Digest,
    layers: Vec<LayerRef>,
    tree: BTreeMap<String, Node>,
    owners: Ownership,
}

impl Image {
    /// Read every layer of `i` into one tree, and who owns what.
    fn read(
        layout: &LayoutReader,
        i: &ImageRef,
        spdx_dir: Option<&Path>,
        tag: &str,
    ) -> Result<Image, InspectError> {
        let super::Described {
            platform, history, ..
        } = super::describe(layout, i)?;
        let mut tree = BTreeMap::new();
        let mut status: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut layers = Vec::new();
        for (n, l) in i.layers.iter().enumerate() {
            layers.push(LayerRef {
                index: n,
                digest: l.digest,
                created_by: history.get(n).cloned().unwrap_or_default(),
            });
            let bad = |what: &'static str| {
                move |source| InspectError::Layer {
                    digest: l.digest,
                    what,
                    source,
                }
            };
            let blob = layout.read_blob(l)?;
            let mut archive = tar::Archive::new(layer_reader(l, &blob)?);
            for entry in archive.entries().map_err(bad("not a tar"))? {
                let mut entry = entry.map_err(bad("bad tar entry"))?;
                let path = entry.path().map_err(bad("bad tar entry"))?;
                let path = normalize(&path.to_string_lossy());
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
                // OCI whiteouts: a lower path removed, or a directory made opaque.
                if name == ".wh..wh..opq" {
                    let prefix = format!("{dir}/");
                    tree.retain(|p: &String, _| !p.starts_with(&prefix));
                    continue;
                }
                if let Some(gone) = name.strip_prefix(".wh.") {
                    let gone = format!("{dir}/{gone}");
                    let prefix = format!("{gone}/");
                    tree.retain(|p: &String, _| *p != gone && !p.starts_with(&prefix));
                    continue;
                }
                let t = entry.header().entry_type();
                let kind = if t.is_file() {
                    "file"
                } else if t.is_symlink() {
                    "symlink"
                } else if t.is_hard_link() {
                    "hardlink"
                } else if t.is_dir() {
                    "directory"
                } else {
                    "other"
                };
                let link = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|l| l.to_string_lossy().into_owned());
                let size = if t.is_file() { entry.size() } else { 0 };
                if t.is_file()
                    && let Some(pkg) = path.strip_prefix("/var/lib/dpkg/status.d/")
                {
                    let mut text = Vec::new();
                    entry.read_to_end(&mut text).map_err(bad("bad tar entry"))?;
                    status.insert(pkg.to_owned(), text);
                }
                tree.insert(
                    path,
                    Node {
                        layer: n,
                        kind,
                        size,
                        link,
                    },
                );
            }
        }
        let arch = i
            .descriptor
            .platform
            .as_ref()
            .and_then(|p| Arch::from_oci(&p.architecture, p.variant.as_deref()));
        let owners = spdx_dir
            .and_then(|dir| from_spdx(dir, tag, arch, &i.descriptor.digest))
            .unwrap_or_else(|| from_status(&status));
        Ok(Image {
            platform,
            digest: i.descriptor.digest,
            layers,
            tree,
            owners,
        })
    }

    /// Follow directory links in `path` (and the last component too with `last`), as the
    /// kernel would with the image as `/`; `None` past 40 links or at a dangling one.
    fn resolve(&self, path: &str, last: bool) -> Option<String> {
        let mut todo: Vec<String> = path
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect();
        let mut done = String::new();
        let mut hops = 0;
        while let Some(c) = todo.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    done.truncate(done.rfind('/').unwrap_or(0));
                    continue;
                }
                _ => {}
            }
            let next = format!("{done}/{c}");
            let is_last = todo.is_empty();
            let link = self
                .tree
                .get(&next)
                .filter(|n| n.kind == "symlink" && (!is_last || last))
                .and_then(|n| n.link.clone());
            match link {
                Some(target) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        done.clear();
                    }
                    todo.extend(
                        target
                            .split('/')
                            .filter(|c| !c.is_empty())
                            .rev()
                            .map(str::to_owned),
                    );
                }
                None => done = next,
            }
        }
        Some(if done.is_empty() {
            "/".to_owned()
        } else {
            done
        })
    }

    /// Where `path` is and who ships it; `None` if this image lacks it.
    fn owner(&self, path: &str, depth: usize) -> Option<FileOwner> {
        let resolved = self.resolve(path, false)?;
        let node = self.tree.get(&resolved)?;
        let package = self.package_of(&resolved);
        let target = match node.kind {
            "symlink" if depth < 40 => self
                .resolve(&resolved, true)
                .and_then(|t| self.owner(&t, depth + 1))
                .map(Box::new),
            // A hard link's target is a path in the image, relative to its root.
            "hardlink" if depth < 40 => node
                .link
                .as_deref()
                .and_then(|t| self.owner(&normalize(t), depth + 1))
                .map(Box::new),
            _ => None,
        };
        Some(FileOwner {
            platform: self.platform.clone(),
            digest: self.digest,
            path: path.to_owned(),
            resolved: resolved.clone(),
            kind: node.kind,
            size: node.size,
            link_target: node.link.clone(),
            layer: self.layers.get(node.layer).cloned()?,
            package,
            target,
            source: self.owners.source,
        })
    }

    /// Where a path a package lists is in the image: through the image's links, else
    /// (an image without the top-level links) where merged /usr put it.
    fn locate(&self, listed: &str) -> Option<String> {
        let found = self.resolve(listed, false)?;
        if self.tree.contains_key(&found) {
            return Some(found);
        }
        let top = listed.trim_start_matches('/').split('/').next()?;
        let merged = ["bin", "sbin", "lib"].contains(&top) || top.starts_with("lib");
        let moved = self.resolve(&format!("/usr{listed}"), false)?;
        (merged && self.tree.contains_key(&moved))
            .then_some(moved)
            .or(Some(found))
    }

    /// The package listing `resolved`: by its own path, or by a path that resolves to it
    /// (a package lists `/lib/...` that merged /usr put under `/usr/lib/...`).
    fn package_of(&self, resolved: &str) -> Option<PackageRef> {
        let name = self.owners.files.get(resolved).or_else(|| {
            self.owners
                .files
                .iter()
                .find(|(p, _)| self.locate(p).as_deref() == Some(resolved))
                .map(|(_, names)| names)
        })?;
        // A file two packages list (a parent level and a child both ship it): the first.
        self.package_ref(name.first()?)
    }

    fn package_ref(&self, name: &str) -> Option<PackageRef> {
        let (version, architecture) = self.owners.packages.get(name)?;
        Some(PackageRef {
            name: name.to_owned(),
            version: version.clone(),
            architecture: architecture.clone(),
        })
    }

    /// The files `name` ships here; `None` if this image lacks the package.
    fn package(&self, name: &str) -> Option<PackageFiles> {
        let package = self.package_ref(name)?;
        let files = self
            .owners
            .files
            .iter()
            .filter(|(_, owners)| owners.iter().any(|o| o == name))
            .map(|(path, _)| {
                let resolved = self.locate(path).unwrap_or_else(|| path.clone());
                let node = self.tree.get(&resolved);
                PackageFile {
                    path: path.clone(),
                    size: node.map_or(0, |n| n.size),
                    layer: node.map(|n| n.layer),
                    resolved,
                }
            })
            .collect();
        Some(PackageFiles {
            platform: self.platform.clone(),
            digest: self.digest,
            package,
            files,
            layers: self.layers.clone(),
            source: self.owners.source,
        })
    }
}

/// `/usr/bin/x` from `./usr/bin/x`, `usr/bin/x/` or `/usr//bin/x`.
fn normalize(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Ownership from the SPDX document of this manifest next to a layout, if one is there:
/// `<tag>.spdx.json` for a per-architecture tag, `<tag>-<arch>.spdx.json` for a member of
/// a multi-arch tag; believed only if its image package is this very manifest.
fn from_spdx(dir: &Path, tag: &str, arch: Option<Arch>, digest: &Digest) -> Option<Ownership> {
    let mut names = vec![format!("{tag}.spdx.json")];
    if let Some(a) = arch {
        names.insert(0, format!("{tag}-{a}.spdx.json"));
    }
    let doc: Value = names.iter().find_map(|n| {
        let doc: Value = serde_json::from_slice(&std::fs::read(dir.join(n)).ok()?).ok()?;
        let describes = doc["packages"].as_array()?.iter().any(|p| {
            p["SPDXID"] == crate::sbom::IMAGE_ID && p["versionInfo"] == digest.to_string()
        });
        describes.then_some(doc)
    })?;
    let mut packages = BTreeMap::new();
    let mut by_id = BTreeMap::new();
    for p in doc["packages"].as_array()? {
        let (Some(id), Some(name)) = (p["SPDXID"].as_str(), p["name"].as_str()) else {
            continue;
        };
        if id == crate::sbom::IMAGE_ID {
            continue;
        }
        // The purl says the architecture: pkg:deb/debian/NAME@VERSION?arch=ARCH&...
        let arch = p["externalRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["referenceLocator"].as_str())
            .find_map(|purl| {
                let query = purl.split_once('?')?.1;
                query.split('&').find_map(|kv| kv.strip_prefix("arch="))
            })
            .unwrap_or_default();
        let version = p["versionInfo"].as_str().unwrap_or_default();
        packages.insert(name.to_owned(), (version.to_owned(), arch.to_owned()));
        by_id.insert(id.to_owned(), name.to_owned());
    }
    let file_names: BTreeMap<&str, String> = doc["files"]
        .as_array()?
        .iter()
        .filter_map(|f| Some((f["SPDXID"].as_str()?, normalize(f["fileName"].as_str()?))))
        .collect();
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in doc["relationships"].as_array()? {
        if r["relationshipType"] != "CONTAINS" {
            continue;
        }
        let (Some(from), Some(to)) = (
            r["spdxElementId"].as_str(),
            r["relatedSpdxElement"].as_str(),
        ) else {
            continue;
        };
        if let (Some(pkg), Some(path)) = (by_id.get(from), file_names.get(to)) {
            files.entry(path.clone()).or_default().push(pkg.clone());
        }
    }
    Some(Ownership {
        source: "spdx",
        packages,
        files,
    })
}

/// Ownership from the image's `/var/lib/dpkg/status.d/`: `<package>` stanzas and
/// `<package>.md5sums` lists (which debless trims to the files the image ships).
fn from_status(status: &BTreeMap<String, Vec<u8>>) -> Ownership {
    let mut packages = BTreeMap::new();
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, bytes) in status {
        let text = String::from_utf8_lossy(bytes);
        if let Some(pkg) = name.strip_suffix(".md5sums") {
            for line in text.lines() {
                if let Some((_, path)) = line.split_once("  ") {
                    files
                        .entry(normalize(path.trim()))
                        .or_default()
                        .push(pkg.to_owned());
                }
            }
        } else {
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                    .unwrap_or_default()
                    .to_owned()
            };
            packages.insert(name.clone(), (field("Version"), field("Architecture")));
        }
    }
    Ownership {
        source: "dpkg-status",
        packages,
        files,
    }
}

impl FileOwner {
    /// One line per platform (and one more for a link's target).
    pub fn to_text(&self) -> String {
        let owner = match &self.package {
            Some(p) => format!("{} {} ({})", p.name, p.version, p.architecture),
            None if self.kind == "file" => {
                "no package (generated by debless, or added by a rule)".to_owned()
            }
            // The SPDX documents and md5sums list regular files only.
            None => format!("a {} (owners are known for regular files)", self.kind),
        };
        let path = if self.resolved == self.path {
            self.path.clone()
        } else {
            format!("{} (= {})", self.path, self.resolved)
        };
        let link = match &self.link_target {
            Some(t) => format!(" -> {t}"),
            None => String::new(),
        };
        let digest = self.layer.digest.to_string();
        // `created_by` goes on to list every package of the layer (`debless python3: libc6
        // …`): the rule's part is what a person needs here; --json has it whole.
        let made_by = self.layer.created_by.split(':').next().unwrap_or_default();
        let mut s = format!(
            "{}  {path}{link}  {owner}  layer {} {} ({made_by})\n",
            self.platform,
            self.layer.index,
            &digest[..19.min(digest.len())],
        );
        if let Some(t) = &self.target {
            s.push_str(&format!("  which is {}", t.to_text()));
        }
        s
    }
}

impl PackageFiles {
    /// The package, then one line per file with its size and layer.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}  {} {} ({}): {} files\n",
            self.platform,
            self.package.name,
            self.package.version,
            self.package.architecture,
            self.files.len()
        );
        for f in &self.files {
            let layer = match f.layer {
                Some(n) => format!("layer {n}"),
                None => "not in the image".to_owned(),
            };
            s.push_str(&format!(
                "  {:>10}  {layer:<8}  {}\n",
                crate::text::bytes(f.size),
                f.path
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(nodes: &[(&str, &'static str, Option<&str>)]) -> Image {
        Image {
            platform: "linux/amd64".into(),
            digest: Digest::of(b"m"),
            layers: vec![LayerRef {
                index: 0,
                digest: Digest::of(b"l"),
                created_by: "static".into(),
            }],
            tree: nodes
                .iter()
                .map(|(p, kind, link)| {
                    (
                        p.to_string(),
                        Node {
                            layer: 0,
                            kind,
                            size: 1,
                            link: link.map(str::to_owned),
                        },
                    )
                })
                .collect(),
            owners: Ownership {
                source: "dpkg-status",
                packages: BTreeMap::from([("libc6".into(), ("2.41".into(), "amd64".into()))]),
                files: BTreeMap::from([("/lib/x86_64/libc.so.6".into(), vec!["libc6".into()])]),
            },
        }
    }

    #[test]
    fn links_resolve_as_the_kernel_would_inside_the_image() {
        let img = image(&[
            ("/lib", "symlink", Some("usr/lib")),
            ("/usr/lib/x86_64/libc.so.6", "file", None),
            ("/usr/bin/python3", "symlink", Some("python3.13")),
            ("/usr/bin/python3.13", "file", None),
            ("/loop", "symlink", Some("/loop")),
            ("/escape", "symlink", Some("../../../usr/bin/python3.13")),
        ]);
        assert_eq!(
            img.resolve("/lib/x86_64/libc.so.6", false).as_deref(),
            Some("/usr/lib/x86_64/libc.so.6")
        );
        assert_eq!(
            img.resolve("/usr/bin/python3", false).as_deref(),
            Some("/usr/bin/python3")
        );
        assert_eq!(
            img.resolve("/usr/bin/python3", true).as_deref(),
            Some("/usr/bin/python3.13")
        );
        assert_eq!(img.resolve("/loop/x", false), None);
        // `..` stops at the image's root.
        assert_eq!(
            img.resolve("/escape", true).as_deref(),
            Some("/usr/bin/python3.13")
        );
        // The package lists the pre-merge path; asking either path finds it.
        for asked in ["/usr/lib/x86_64/libc.so.6", "/lib/x86_64/libc.so.6"] {
            let o = img.owner(asked, 0).unwrap();
            assert_eq!(o.package.unwrap().name, "libc6", "{asked}");
            assert_eq!(o.resolved, "/usr/lib/x86_64/libc.so.6");
        }
        let o = img.owner("/usr/bin/python3", 0).unwrap();
        assert_eq!(o.kind, "symlink");
        assert!(o.package.is_none());
        assert_eq!(o.target.unwrap().path, "/usr/bin/python3.13");
        assert!(img.owner("/nope", 0).is_none());
        // The package's list names the path it ships and where that is in the image.
        let p = img.package("libc6").unwrap();
        assert_eq!(p.files.len(), 1);
        assert_eq!(p.files[0].resolved, "/usr/lib/x86_64/libc.so.6");
        assert_eq!(p.files[0].layer, Some(0));
        assert!(img.package("bash").is_none());
    }
}
