//! Build provenance: an in-toto Statement v1 (in-toto/attestation spec/v1/statement.md)
//! whose predicate is SLSA Provenance v1 (slsa-framework/slsa spec/build-provenance.md),
//! with debless's build type, `https://debless.dev/build/v1` (docs/provenance.md).
//!
//! The JSON is a function of the build's inputs and nothing else: structs serialise in a
//! fixed field order, maps are `BTreeMap`s, every list is sorted and deduplicated, and no
//! clock is read (`metadata` with `startedOn`/`finishedOn` appears only when the caller
//! passes times). So the same lock, rules and debless binary give byte-identical
//! provenance, and a signed envelope of it is byte-identical too (RFC 6979 signatures).
//!
//! The lock, the source manifest and every rule file travel inside `externalParameters`
//! as ResourceDescriptors with their bytes (`content`, base64), so a rebuild needs nothing
//! but the provenance, the debless binary it names and the .debs. A file over
//! [`MAX_EMBEDDED_FILE`], or one that would take the total over [`MAX_EMBEDDED_TOTAL`],
//! is recorded by digest only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{SignError, b64, doc_err, io_err, json_err, unb64};
use crate::digest::Digest;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of SLSA Provenance v1.
pub const PROVENANCE_PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// debless's build type (its parameters: docs/provenance.md).
pub const BUILD_TYPE: &str = "https://debless.dev/build/v1";
/// The builder id of a build run by the debless command line on the caller's own machine.
pub const LOCAL_BUILDER_ID: &str = "https://debless.dev/builder/local/v1";
/// The name under which the debless binary is listed among the resolved dependencies.
pub const DEBLESS_DEPENDENCY: &str = "debless";
/// Input files larger than this are recorded by digest only (the lock of the whole
/// debian13 family is about 60 KiB).
pub const MAX_EMBEDDED_FILE: usize = 1 << 20;
/// At most this many bytes of input files are embedded per statement.
pub const MAX_EMBEDDED_TOTAL: usize = 4 << 20;
/// Media type recorded for SPDX byproducts.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";

/// The directory next to a layout that holds its provenance: `out/base-debian13` →
/// `out/base-debian13.provenance` (as SPDX documents go in `out/base-debian13.spdx`).
pub fn provenance_dir(layout: &Path) -> PathBuf {
    let name = layout
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    layout.with_file_name(format!("{name}.provenance"))
}

/// The unsigned statement `debless build` writes for a tag: `<tag>.intoto.json` (the
/// in-toto Statement's JSON, as [`Statement::to_json`] gives it).
pub fn statement_file(tag: &str) -> String {
    format!("{tag}.intoto.json")
}

/// The signed envelope `debless push --sign-key` writes for a tag: `<tag>.intoto.jsonl`,
/// one DSSE envelope on one line (the file form SLSA's tools read provenance in).
pub fn envelope_file(tag: &str) -> String {
    format!("{tag}.intoto.jsonl")
}

/// An in-toto Statement v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement<P> {
    /// Always [`STATEMENT_TYPE`].
    #[serde(rename = "_type")]
    pub kind: String,
    /// What the statement is about, matched by digest.
    pub subject: Vec<ResourceDescriptor>,
    /// What the predicate is.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate.
    pub predicate: P,
}

/// An in-toto ResourceDescriptor (spec/v1/resource_descriptor.md), fields in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// Identifier local to the statement (a file name, a pool path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the resource is, globally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm → lower-case hex (`sha256` here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// The resource's bytes, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Where to download it, if not `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// Its media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Anything else (string values only here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ResourceDescriptor {
    /// A descriptor naming `name` with its SHA-256.
    pub fn named(name: &str, digest: &Digest) -> ResourceDescriptor {
        ResourceDescriptor {
            name: Some(name.to_owned()),
            digest: BTreeMap::from([("sha256".to_owned(), digest.hex())]),
            ..ResourceDescriptor::default()
        }
    }

    /// The `sha256` digest, if there is one and it is well-formed.
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get("sha256")
            .and_then(|h| Digest::from_hex(h).ok())
    }
}

/// The SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The inputs.
    pub build_definition: BuildDefinition,
    /// This run.
    pub run_details: RunDetails,
}

/// `buildDefinition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// [`BUILD_TYPE`].
    pub build_type: String,
    /// What the user chose (docs/provenance.md).
    pub external_parameters: ExternalParameters,
    /// Every .deb the subject was made from, and the debless binary.
    #[serde(default)]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// `externalParameters` of [`BUILD_TYPE`]: everything a user controls that changes a
/// byte of the output. Unknown fields are refused, as SLSA tells verifiers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalParameters {
    /// `--distro`.
    pub distro: String,
    /// The images built (rule names), sorted.
    pub images: Vec<String>,
    /// The tags built (`latest` and variant names), sorted.
    pub variants: Vec<String>,
    /// The architectures built, sorted.
    pub architectures: Vec<String>,
    /// `--compression` (`gzip` or `zstd`).
    pub compression: String,
    /// `--whole-packages`; absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub whole_packages: bool,
    /// `SOURCE_DATE_EPOCH`, when it replaced the lock's timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
    /// `--source-url` (the `org.opencontainers.image.source` annotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// `debless build --add` and the config overrides (`--env`, `--cmd`...), as given;
    /// absent when none. The host files are not in the statement, so a rebuild refuses it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_line: Vec<String>,
    /// `snapshots/<distro>.lock`, by name, digest and (normally) content.
    pub lock: ResourceDescriptor,
    /// `snapshots/<distro>.toml`; absent when the project has none (a build reads it only
    /// for its `snapshot_service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<ResourceDescriptor>,
    /// Every rule file read (`rules/defaults.toml`, the images' and their parents', the
    /// variants'), sorted by name.
    pub rules: Vec<ResourceDescriptor>,
}

/// `runDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// Who ran the build.
    pub builder: Builder,
    /// Only when times or an invocation id were given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// The SPDX documents written with the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// `runDetails.builder`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// The trusted build platform ([`LOCAL_BUILDER_ID`] for a local run).
    pub id: String,
    /// Component → version (`debless` → its version).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// `runDetails.metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// An id of this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<String>,
}

/// One input file: its path relative to the project (`rules/base.toml`) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Relative path, `/`-separated, no `..`.
    pub name: String,
    /// The bytes the build read.
    pub bytes: Vec<u8>,
}

impl InputFile {
    /// Read `name` (relative) under `project`.
    pub fn read(project: &Path, name: &str) -> Result<InputFile, SignError> {
        check_relative(name)?;
        let path = project.join(name);
        let bytes = fs::read(&path).map_err(io_err(&path, "cannot read a build input"))?;
        Ok(InputFile {
            name: name.to_owned(),
            bytes,
        })
    }
}

/// The user's choices, as the build saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters {
    /// Distro.
    pub distro: String,
    /// Images built.
    pub images: Vec<String>,
    /// Tags built.
    pub variants: Vec<String>,
    /// Architectures built.
    pub architectures: Vec<String>,
    /// Compression.
    pub compression: String,
    /// `--whole-packages`.
    pub whole_packages: bool,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// `--source-url`.
    pub source_url: Option<String>,
    /// The application layer and config flags (`--add`, `--env`...), as given.
    pub command_line: Vec<String>,
}

/// A .deb the subject holds files of.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    /// Its pool path, as the lock's `filename` (`pool/main/b/base-files/...deb`).
    pub name: String,
    /// Where it was fetched from (archive URL + pool path).
    pub uri: String,
    /// Its SHA-256, as the lock's.
    pub sha256: Digest,
}

/// Everything a statement is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInputs {
    /// What the statement is about: (name, digest of the manifest or index). Recommended
    /// name: `<image>-<distro>:<tag>` as in the layout (e.g. `base-debian13:latest-amd64`).
    pub subjects: Vec<(String, Digest)>,
    /// The user's choices.
    pub parameters: Parameters,
    /// `snapshots/<distro>.lock`.
    pub lock: InputFile,
    /// `snapshots/<distro>.toml`, if the project has one.
    pub manifest: Option<InputFile>,
    /// Every rule file read.
    pub rules: Vec<InputFile>,
    /// The .debs.
    pub dependencies: Vec<Dependency>,
    /// debless's version (`CARGO_PKG_VERSION`).
    pub debless_version: String,
    /// SHA-256 of the debless binary that ran (what the layer cache keys on).
    pub debless_binary: Digest,
    /// SPDX documents: (file name, digest).
    pub sboms: Vec<(String, Digest)>,
    /// `runDetails.builder.id`; [`LOCAL_BUILDER_ID`] for a local run.
    pub builder_id: String,
    /// `metadata.startedOn`, only if wanted (a reproducible build leaves it out).
    pub started_on: Option<jiff::Timestamp>,
    /// `metadata.finishedOn`, likewise.
    pub finished_on: Option<jiff::Timestamp>,
    /// `metadata.invocationId`, likewise.
    pub invocation_id: Option<String>,
}

impl Statement<Provenance> {
    /// The provenance statement for `inputs`.
    pub fn provenance(inputs: &BuildInputs) -> Result<Statement<Provenance>, SignError> {
        if inputs.subjects.is_empty() {
            return Err(doc_err(
                "provenance: no subject; pass the manifest or index digest it describes",
            ));
        }
        let subject: BTreeSet<ResourceDescriptor> = inputs
            .subjects
            .iter()
            .map(|(name, digest)| ResourceDescriptor::named(name, digest))
            .collect();

        let mut budget = MAX_EMBEDDED_TOTAL;
        let mut embed = |file: &InputFile| -> Result<ResourceDescriptor, SignError> {
            check_relative(&file.name)?;
            let mut d = ResourceDescriptor::named(&file.name, &Digest::of(&file.bytes));
            if file.bytes.len() <= MAX_EMBEDDED_FILE && file.bytes.len() <= budget {
                budget -= file.bytes.len();
                d.content = Some(b64(&file.bytes));
            }
            Ok(d)
        };
        let lock = embed(&inputs.lock)?;
        let manifest = inputs.manifest.as_ref().map(&mut embed).transpose()?;
        let mut rule_files: Vec<&InputFile> = inputs.rules.iter().collect();
        rule_files.sort_by(|a, b| a.name.cmp(&b.name));
        rule_files.dedup_by(|a, b| a.name == b.name && a.bytes == b.bytes);
        if let Some(w) = rule_files.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(doc_err(format!(
                "provenance: rule file {} is given twice with different bytes; pass each file once",
                w[0].name
            )));
        }
        let rules = rule_files
            .into_iter()
            .map(&mut embed)
            .collect::<Result<Vec<_>, _>>()?;

        let p = &inputs.parameters;
        let sorted = |v: &[String]| -> Vec<String> {
            v.iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };

        let mut dependencies: BTreeSet<ResourceDescriptor> = inputs
            .dependencies
            .iter()
            .map(|d| ResourceDescriptor {
                uri: Some(d.uri.clone()),
                ..ResourceDescriptor::named(&d.name, &d.sha256)
            })
            .collect();
        dependencies.insert(ResourceDescriptor {
            uri: Some(format!("pkg:generic/debless@{}", inputs.debless_version)),
            ..ResourceDescriptor::named(DEBLESS_DEPENDENCY, &inputs.debless_binary)
        });
        let byproducts: BTreeSet<ResourceDescriptor> = inputs
            .sboms
            .iter()
            .map(|(name, digest)| ResourceDescriptor {
                media_type: Some(SPDX_MEDIA_TYPE.to_owned()),
                ..ResourceDescriptor::named(name, digest)
            })
            .collect();

        let metadata = (inputs.started_on.is_some()
            || inputs.finished_on.is_some()
            || inputs.invocation_id.is_some())
        .then(|| BuildMetadata {
            invocation_id: inputs.invocation_id.clone(),
            started_on: inputs.started_on.map(timestamp),
            finished_on: inputs.finished_on.map(timestamp),
        });

        Ok(Statement {
            kind: STATEMENT_TYPE.to_owned(),
            subject: subject.into_iter().collect(),
            predicate_type: PROVENANCE_PREDICATE_TYPE.to_owned(),
            predicate: Provenance {
                build_definition: BuildDefinition {
                    build_type: BUILD_TYPE.to_owned(),
                    external_parameters: ExternalParameters {
                        distro: p.distro.clone(),
                        images: sorted(&p.images),
                        variants: sorted(&p.variants),
                        architectures: sorted(&p.architectures),
                        compression: p.compression.clone(),
                        whole_packages: p.whole_packages,
                        source_date_epoch: p.source_date_epoch,
                        source_url: p.source_url.clone(),
                        command_line: p.command_line.clone(),
                        lock,
                        manifest,
                        rules,
                    },
                    resolved_dependencies: dependencies.into_iter().collect(),
                },
                run_details: RunDetails {
                    builder: Builder {
                        id: inputs.builder_id.clone(),
                        version: BTreeMap::from([(
                            DEBLESS_DEPENDENCY.to_owned(),
                            inputs.debless_version.clone(),
                        )]),
                    },
                    metadata,
                    byproducts: byproducts.into_iter().collect(),
                },
            },
        })
    }

    /// Read a provenance statement (unverified: call this on a verified envelope's body).
    /// The predicate type and build type must be debless's.
    pub fn from_json(bytes: &[u8]) -> Result<Statement<Provenance>, SignError> {
        let s: Statement<Provenance> =
            serde_json::from_slice(bytes).map_err(json_err("provenance statement"))?;
        if s.kind != STATEMENT_TYPE {
            return Err(doc_err(format!(
                "provenance statement: _type is {:?}, not {STATEMENT_TYPE:?}",
                s.kind
            )));
        }
        if s.predicate_type != PROVENANCE_PREDICATE_TYPE {
            return Err(doc_err(format!(
                "provenance statement: predicateType is {:?}, not {PROVENANCE_PREDICATE_TYPE:?}",
                s.predicate_type
            )));
        }
        let build_type = &s.predicate.build_definition.build_type;
        if build_type != BUILD_TYPE {
            return Err(doc_err(format!(
                "provenance statement: buildType is {build_type:?}, not {BUILD_TYPE:?}; it was \
                 not made by debless"
            )));
        }
        Ok(s)
    }
}

impl<P: Serialize> Statement<P> {
    /// The statement's JSON bytes: compact, fields in a fixed order, so equal statements
    /// have equal bytes.
    pub fn to_json(&self) -> Result<Vec<u8>, SignError> {
        serde_json::to_vec(self).map_err(json_err("cannot encode the statement"))
    }
}

/// Where [`ExternalParameters::write_inputs`] put the embedded files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenInputs {
    /// Files written, under the directory given.
    pub written: Vec<PathBuf>,
    /// Names recorded by digest only: the caller must supply them (and check the digest).
    pub missing: Vec<String>,
}

impl ExternalParameters {
    /// Every input file descriptor: the lock, the manifest, then the rules.
    pub fn inputs(&self) -> impl Iterator<Item = &ResourceDescriptor> {
        std::iter::once(&self.lock)
            .chain(self.manifest.as_ref())
            .chain(self.rules.iter())
    }

    /// Write the embedded input files under `dir` (which must exist), each checked against
    /// its digest first, for a rebuild. Names must be relative paths without `..`
    /// (provenance is data from elsewhere: it must not write outside `dir`), and a file is
    /// never overwritten.
    pub fn write_inputs(&self, dir: &Path) -> Result<WrittenInputs, SignError> {
        let mut out = WrittenInputs::default();
        for input in self.inputs() {
            let name = input
                .name
                .as_deref()
                .ok_or_else(|| doc_err("provenance: an input file has no name"))?;
            let rel = check_relative(name)?;
            let digest = input.sha256().ok_or_else(|| {
                doc_err(format!(
                    "provenance: input {name} has no well-formed sha256"
                ))
            })?;
            let Some(content) = &input.content else {
                out.missing.push(name.to_owned());
                continue;
            };
            let bytes = unb64(content).ok_or_else(|| {
                doc_err(format!("provenance: input {name}: content is not base64"))
            })?;
            let actual = Digest::of(&bytes);
            if actual != digest {
                return Err(SignError::DigestMismatch {
                    what: format!("provenance input {name}"),
                    expected: digest,
                    actual,
                });
            }
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent, "cannot create a directory"))?;
            }
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_err(
                    &path,
                    "cannot create a build input (is it listed twice?)",
                ))?;
            file.write_all(&bytes)
                .map_err(io_err(&path, "cannot write a build input"))?;
            out.written.push(path);
        }
        Ok(out)
    }
}

/// `name` as a relative path of normal components only.
fn check_relative(name: &str) -> Result<PathBuf, SignError> {
    // Segment by segment, not Path::components, which drops `.` and doubled slashes.
    let ok = !name.is_empty()
        && !name.contains('\\')
        && name
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if !ok {
        return Err(doc_err(format!(
            "input file name {name:?} is not a relative path without `..`; name files by their \
             path inside the project (rules/base.toml)"
        )));
    }
    Ok(PathBuf::from(name))
}

/// An in-toto Timestamp: UTC, whole seconds, `Z`.
fn timestamp(t: jiff::Timestamp) -> String {
    match jiff::Timestamp::from_second(t.as_second()) {
        Ok(whole) => whole.to_string(),
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests;
