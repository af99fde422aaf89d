//! The provenance a build writes next to each layout, `<repo>.provenance/<tag>.intoto.json`:
//! per manifest and per index an in-toto Statement with a SLSA v1 predicate
//! ([`crate::sign::provenance`]; the build type is docs/provenance.md). Each statement
//! records exactly what made its subject, so that `debless verify --rebuild` can make it
//! again and nothing more: the image, the tag and the architectures of that subject; the
//! lock, the manifest and the rule files its layers and config come from (the image's
//! chain, the tag's variant and its parts, `rules/defaults.toml`); every .deb its layers
//! hold, with the URL of the first mirror that serves it; the debless binary; and its SPDX
//! documents. Unsigned: `debless push --sign-key` signs it. Like the images, a statement is
//! a function of its inputs only (no clock), so a rebuild writes the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::images::{ImageDoc, IndexDoc, NamedFile};
use super::layer_cache::tool_digest;
use super::plan::LayerKey;
use super::{BuildError, Ctx};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::rules::Rule;
use crate::sign::provenance::{
    BuildInputs, Dependency, InputFile, LOCAL_BUILDER_ID, Parameters, Statement, statement_file,
};
use crate::snapshot::lock::LockedPackage;

/// One subject's share of the build.
struct Subject<'d> {
    /// `<repo>:<tag>` or `<repo>:<tag>-<arch>`.
    name: &'d str,
    digest: Digest,
    image: &'d str,
    tag: &'d str,
    arches: Vec<Arch>,
    layers: BTreeSet<&'d LayerKey>,
    /// SPDX documents: (file name, digest).
    sboms: Vec<(String, Digest)>,
}

impl Ctx<'_> {
    /// The application-layer and config flags of the build, as flags, for the statement.
    fn command_line(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.opts.add {
            let mut spec = format!("{}:{}", a.src, a.dest);
            if let Some(o) = &a.owner {
                spec = format!("{spec}:{o}");
            }
            if let Some(m) = &a.mode {
                spec = format!("{spec}:{m}");
            }
            out.push(format!("--add={spec}"));
        }
        let c = &self.opts.config;
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_default();
        if let Some(e) = &c.entrypoint {
            out.push(format!("--entrypoint={}", json(e)));
        }
        if let Some(e) = &c.cmd {
            out.push(format!("--cmd={}", json(e)));
        }
        for (flag, map) in [
            ("env", &c.env),
            ("label", &c.labels),
            ("annotation", &c.annotations),
        ] {
            out.extend(map.iter().map(|(k, v)| format!("--{flag}={k}={v}")));
        }
        if let Some(u) = &c.user {
            out.push(format!("--user={u}"));
        }
        if let Some(w) = &c.workdir {
            out.push(format!("--workdir={w}"));
        }
        out
    }

    /// Every statement, by repository name: one per image document (`<tag>-<arch>`) and one
    /// per index (`<tag>`).
    pub(super) fn provenance(
        &self,
        image_docs: &[ImageDoc],
        index_docs: &[IndexDoc],
        sboms: &BTreeMap<String, Vec<NamedFile>>,
    ) -> Result<BTreeMap<String, Vec<NamedFile>>, BuildError> {
        let binary = tool_digest()
            .and_then(|d| Digest::parse(d).ok())
            .ok_or(BuildError::NoToolDigest)?;
        let spdx = |repo: &str, file: &str| -> Vec<(String, Digest)> {
            sboms
                .get(repo)
                .and_then(|docs| docs.iter().find(|f| f.name == file))
                .map(|f| vec![(f.name.clone(), Digest::of(&f.bytes))])
                .unwrap_or_default()
        };
        let mut out: BTreeMap<String, Vec<NamedFile>> = BTreeMap::new();
        for d in image_docs {
            let subject = Subject {
                name: &d.name,
                digest: d.digest,
                image: &d.image,
                tag: &d.tag,
                arches: vec![d.arch],
                layers: d.layers.iter().collect(),
                sboms: spdx(&d.repo, &d.file),
            };
            let file = statement_file(&format!("{}-{}", d.tag, d.arch));
            out.entry(d.repo.clone())
                .or_default()
                .push(self.statement(&subject, file, binary)?);
        }
        for x in index_docs {
            let members: Vec<&ImageDoc> = x.members.iter().map(|&i| &image_docs[i]).collect();
            let mut docs = spdx(&x.repo, &x.file);
            for m in &members {
                docs.extend(spdx(&m.repo, &m.file));
            }
            let subject = Subject {
                name: &x.name,
                digest: x.digest,
                image: &x.image,
                tag: &x.tag,
                arches: x.arches.clone(),
                layers: members.iter().flat_map(|m| &m.layers).collect(),
                sboms: docs,
            };
            out.entry(x.repo.clone()).or_default().push(self.statement(
                &subject,
                statement_file(&x.tag),
                binary,
            )?);
        }
        Ok(out)
    }

    /// The statement about one subject.
    fn statement(
        &self,
        s: &Subject,
        file: String,
        binary: Digest,
    ) -> Result<NamedFile, BuildError> {
        let lock = &self.l.lock;
        let packages: BTreeMap<(&str, Arch), &LockedPackage> = s
            .layers
            .iter()
            .flat_map(|k| &self.plan.layers[*k].packages)
            .map(|p| ((p.locked.name.as_str(), p.locked.arch), p.locked))
            .collect();
        let dependencies = packages
            .values()
            .map(|p| Dependency {
                name: p.filename.clone(),
                uri: self.deb_uri(p),
                sha256: p.sha256,
            })
            .collect();
        let inputs = BuildInputs {
            subjects: vec![(s.name.to_owned(), s.digest)],
            parameters: Parameters {
                distro: lock.distro.clone(),
                images: vec![s.image.to_owned()],
                variants: vec![s.tag.to_owned()],
                architectures: s.arches.iter().map(|a| a.to_string()).collect(),
                compression: self.opts.compression.name().to_owned(),
                whole_packages: self.opts.whole_packages,
                source_date_epoch: self.opts.source_date_epoch,
                source_url: self.opts.source_url.clone(),
                command_line: self.command_line(),
            },
            // Named where a rebuild puts it: `build --lock` may have read it from anywhere,
            // and the statement carries its bytes.
            lock: InputFile {
                name: format!("snapshots/{}.lock", lock.distro),
                bytes: self.l.lock_bytes.clone(),
            },
            manifest: self.l.manifest.clone(),
            rules: self.rule_files(s.image, s.tag)?,
            dependencies,
            debless_version: env!("CARGO_PKG_VERSION").to_owned(),
            debless_binary: binary,
            sboms: s.sboms.clone(),
            builder_id: LOCAL_BUILDER_ID.to_owned(),
            started_on: None,
            finished_on: None,
            invocation_id: None,
        };
        let statement = Statement::provenance(&inputs).map_err(BuildError::Provenance)?;
        Ok(NamedFile {
            name: file,
            bytes: statement.to_json().map_err(BuildError::Provenance)?,
        })
    }

    /// The rule files one image and tag are made from: `rules/defaults.toml`, the image's
    /// chain, the tag's variant and the variants it combines. Each is read again and must
    /// still be what the build read.
    fn rule_files(&self, image: &str, tag: &str) -> Result<Vec<InputFile>, BuildError> {
        let rules = &self.l.rules;
        let mut chosen: Vec<&Rule> = rules.chain(image)?;
        if tag != "latest" {
            chosen.push(rules.get(tag)?);
            chosen.extend(rules.variant_parts(tag)?);
        }
        let project = &self.opts.project;
        let mut files = Vec::new();
        let defaults = project.join("rules").join(crate::rules::DEFAULTS_FILE);
        if !rules.defaults_digest.is_empty() {
            files.push(self.input_file(&defaults, &rules.defaults_digest)?);
        }
        for r in chosen {
            files.push(self.input_file(&r.file, &r.digest)?);
        }
        Ok(files)
    }

    /// `path` as an input file named relative to the project, checked against `digest`
    /// (`sha256:<hex>`, what the build read).
    fn input_file(&self, path: &Path, digest: &str) -> Result<InputFile, BuildError> {
        let bytes = std::fs::read(path).map_err(|source| BuildError::Io {
            path: path.to_owned(),
            what: "cannot read the rule file again for the provenance",
            source,
        })?;
        if Digest::of(&bytes).to_string() != digest {
            return Err(BuildError::ChangedDuringBuild {
                path: path.to_owned(),
            });
        }
        let relative = path.strip_prefix(&self.opts.project).unwrap_or(path);
        let name = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .filter(|c| c != ".")
            .collect::<Vec<_>>()
            .join("/");
        Ok(InputFile { name, bytes })
    }

    /// Where a .deb is fetched from: the first mirror that serves its archive (for a dated
    /// lock, at the lock's snapshot), else, with no mirror configured, its package URL.
    fn deb_uri(&self, p: &LockedPackage) -> String {
        let lock = &self.l.lock;
        let archive = lock
            .suites
            .iter()
            .find(|s| s.suite == p.suite)
            .map(|s| s.archive.as_str());
        archive
            .and_then(|a| {
                self.mirrors
                    .iter()
                    .find_map(|m| m.root(a, lock.snapshot.as_deref()))
            })
            .map(|root| format!("{root}{}", p.filename))
            .unwrap_or_else(|| {
                crate::sbom::purl::purl(
                    "deb",
                    Some("debian"),
                    &p.name,
                    &p.version,
                    &[("arch", &p.architecture)],
                )
            })
    }
}
