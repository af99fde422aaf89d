//! Beyond one machine, on loopback: a real `docker-registry` on 127.0.0.1 is the layer
//! cache runners share (`--cache-registry`) and the place shards (`--shard I/N`) push to
//! before `debless index` writes the multi-architecture indexes. Each test compares with
//! what one machine building everything makes: the same digests, byte for byte.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::fixture::Fixture;
use common::registry::Registry;
use common::{DebFile, Pkg, build_deb, pkg, stderr};
use serde_json::Value;

/// One architecture's packages: a base, a libc and an app on top.
fn packages(arch: &str) -> Vec<Pkg> {
    let file = |s: &str| DebFile::File(s.as_bytes().to_vec(), 0o644);
    let deb = |name: &str, files: &[(&str, DebFile)]| {
        let mut p = pkg(name, "1.0", arch, &[]);
        p.deb = Some(build_deb(name, "1.0", arch, files, "xz"));
        p
    };
    let mut app = deb("app", &[("usr/bin/app", file(&format!("app {arch}")))]);
    app.fields = vec![("Depends".into(), "libc6".into())];
    vec![
        deb("base-files", &[("etc/debian_version", file("13.8\n"))]),
        deb(
            "libc6",
            &[("usr/lib/libc.so.6", file(&format!("libc {arch}")))],
        ),
        app,
    ]
}

/// A pinned project on a signed fake archive, and a registry.
struct Fleet {
    fx: Fixture,
    registry: Registry,
}

impl Fleet {
    /// `None` when docker-registry is missing (outside CI).
    fn new() -> Option<Fleet> {
        let registry = Registry::start(None)?;
        let fx = Fixture::with_rules(
            &packages,
            &[
                (
                    "rules/static.toml",
                    "distros = ['test']\n[packages.base-files]\n[generate.users]\n",
                ),
                (
                    "rules/base.toml",
                    "parent = 'static'\ndistros = ['test']\n[packages.libc6]\n",
                ),
                (
                    "rules/app.toml",
                    "parent = 'base'\ndistros = ['test']\n[config]\nentrypoint = ['/usr/bin/app']\n\
                 [packages.app]\n",
                ),
                (
                    "rules/variants/nonroot.toml",
                    "distros = ['test']\n[config]\nuser = '65532'\n",
                ),
            ],
        );
        Some(Fleet { fx, registry })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.fx.project.path().join(name)
    }

    /// Run debless with the archive as mirror and `cache` as cache directory; panic
    /// unless it succeeds.
    fn debless(&self, args: &[&str], cache: &str) -> std::process::Output {
        let mirror = self.fx.server.url() + "debian";
        let cache = self.path(cache);
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--mirror", &mirror, "--cache-dir", cache.to_str().unwrap()]);
        let o = self.fx.project.run(&a);
        assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
        o
    }

    /// `build --json` of every image into `out` with `cache`, and `extra` flags.
    fn build(&self, out: &str, cache: &str, extra: &[&str]) -> Value {
        let out = self.path(out);
        let mut args = vec!["build", "--distro", "test", "--json", "--out"];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        let o = self.debless(&args, cache);
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// `REGISTRY/layer-cache`.
    fn cache_repo(&self) -> String {
        format!("{}/layer-cache", self.registry.host())
    }
}

/// Layout name -> its index.json bytes (which name every tag's digest).
fn indexes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index.json").is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(p.join("index.json")).unwrap())
        })
        .collect()
}

/// ref.name -> digest in an index.json.
fn tags(bytes: &[u8]) -> BTreeMap<String, String> {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["annotations"]["org.opencontainers.image.ref.name"].as_str();
            (
                name.unwrap().to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_cold_runner_takes_every_layer_from_the_registry_without_a_deb() {
    let Some(f) = Fleet::new() else { return };
    let repo = f.cache_repo();
    let flags = ["--cache-registry", repo.as_str(), "--insecure"];
    let a = f.build("out-a", "cache-a", &flags);
    let made = a["layers"]["made"].as_u64().unwrap();
    assert!(made > 0, "{a}");
    assert_eq!(a["cache_registry"]["pushed"].as_u64(), Some(made), "{a}");

    // Runner B: an empty cache and no archive at all (--offline: any .deb it needed
    // would be an error naming it).
    let b = f.build("out-b", "cache-b", &[&flags[..], &["--offline"]].concat());
    assert_eq!(b["layers"]["made"], 0, "{b}");
    assert_eq!(b["cache_registry"]["fetched"].as_u64(), Some(made), "{b}");
    assert_eq!(b["debs"]["downloaded"], 0, "{b}");
    assert_eq!(b["images"], a["images"]);
    assert_eq!(indexes(&f.path("out-a")), indexes(&f.path("out-b")));

    // A second build on B is served by its now warm local cache alone.
    let again = f.build("out-b2", "cache-b", &[&flags[..], &["--offline"]].concat());
    assert_eq!(again["cache_registry"]["fetched"], 0, "{again}");
    assert_eq!(again["cache_registry"]["missing"], 0, "{again}");
    // Every layer it holds is in the registry already: nothing to push.
    assert_eq!(again["cache_registry"]["pushed"], 0, "{again}");
    assert_eq!(again["images"], a["images"]);
}

#[test]
fn a_runner_whose_local_cache_was_warm_first_fills_the_registry() {
    let Some(f) = Fleet::new() else { return };
    let repo = f.cache_repo();
    let flags = ["--cache-registry", repo.as_str(), "--insecure"];
    // Runner A fills its local cache before anyone uses the registry cache.
    let first = f.build("out-a0", "cache-a", &[]);
    let total = first["layers"]["total"].as_u64().unwrap();
    assert!(total > 0, "{first}");

    // Its first build with the registry makes nothing, and pushes every layer it holds.
    let a = f.build("out-a", "cache-a", &flags);
    assert_eq!(a["layers"]["made"], 0, "{a}");
    assert_eq!(a["cache_registry"]["pushed"].as_u64(), Some(total), "{a}");

    // So a cold runner B is served from the registry alone.
    let b = f.build("out-b", "cache-b", &[&flags[..], &["--offline"]].concat());
    assert_eq!(b["layers"]["made"], 0, "{b}");
    assert_eq!(b["cache_registry"]["fetched"].as_u64(), Some(total), "{b}");
    assert_eq!(indexes(&f.path("out-a0")), indexes(&f.path("out-b")));

    // With --cache-read-only a warm runner never pushes, not even to an empty repository.
    let empty = format!("{}/other-cache", f.registry.host());
    let ro = f.build(
        "out-ro",
        "cache-a",
        &[
            "--cache-registry",
            &empty,
            "--insecure",
            "--cache-read-only",
        ],
    );
    assert_eq!(ro["cache_registry"]["pushed"], 0, "{ro}");
    assert_eq!(ro["cache_registry"]["missing"], 0, "{ro}");
}

#[test]
fn a_tampered_registry_entry_is_refused_and_the_layer_made_again() {
    let Some(f) = Fleet::new() else { return };
    let repo = f.cache_repo();
    let flags = ["--cache-registry", repo.as_str(), "--insecure"];
    let a = f.build("out-a", "cache-a", &flags);

    // Replace one layer blob's bytes in the registry's own storage, as a compromised or
    // broken registry would serve them.
    let layer = a["images"][0]["layers"][0].as_str().unwrap();
    let hex = layer.strip_prefix("sha256:").unwrap();
    let data = f
        .registry
        .storage()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    let len = std::fs::metadata(&data).unwrap().len() as usize;
    std::fs::write(&data, vec![0x1f; len]).unwrap();

    let b = f.build("out-b", "cache-b", &flags);
    // Every entry naming that blob is refused (the static layer is the same bytes on
    // both architectures, so two keys share it), and each of those layers made again.
    let warnings = b["cache_registry"]["warnings"].as_array().unwrap();
    assert!(!warnings.is_empty(), "{b}");
    for w in warnings {
        let w = w.as_str().unwrap();
        assert!(w.contains("refused") && w.contains(layer), "{w}");
    }
    assert_eq!(
        b["layers"]["made"].as_u64(),
        Some(warnings.len() as u64),
        "{b}"
    );
    assert_eq!(indexes(&f.path("out-a")), indexes(&f.path("out-b")));
    // The layers made again were pushed back over the bad entries.
    assert_eq!(
        b["cache_registry"]["pushed"].as_u64(),
        Some(warnings.len() as u64)
    );
}

#[test]
fn two_shards_and_one_index_step_equal_a_single_build() {
    let Some(f) = Fleet::new() else { return };
    let single = f.build("out-single", "cache-single", &[]);
    let prefix = format!("{}/fleet", f.registry.host());
    let mut arches = Vec::new();
    for shard in ["1/2", "2/2"] {
        let out = format!("out-{}", shard.replace('/', "-"));
        let cache = format!("cache-{}", shard.replace('/', "-"));
        let r = f.build(
            &out,
            &cache,
            &["--shard", shard, "--push", &prefix, "--insecure"],
        );
        let mut a: Vec<String> = r["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["arch"].as_str().unwrap().to_owned())
            .collect();
        a.dedup();
        arches.push(a);
    }
    // Architecture first: with two architectures of equal work, one each.
    assert_eq!(arches, [["amd64"], ["arm64"]]);

    let o =
        f.fx.project
            .run(&["index", &prefix, "--distro", "test", "--insecure"]);
    assert!(o.status.success(), "index: {}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut compared = 0;
    for (layout, bytes) in indexes(&f.path("out-single")) {
        for (tag, digest) in tags(&bytes) {
            if tag.ends_with("-amd64") || tag.ends_with("-arm64") {
                continue;
            }
            let url = format!(
                "http://{}/v2/fleet/{layout}/manifests/{tag}",
                f.registry.host()
            );
            let resp = reqwest::blocking::Client::new()
                .get(&url)
                .header("Accept", "application/vnd.oci.image.index.v1+json")
                .send()
                .unwrap();
            assert!(resp.status().is_success(), "{url}: {}", resp.status());
            let body = resp.bytes().unwrap();
            let got = format!("sha256:{}", common::sha256(&body));
            assert_eq!(got, digest, "{layout}:{tag}");
            assert!(printed.contains(&digest), "{printed}");
            compared += 1;
        }
    }
    // app, base, static × latest, nonroot.
    assert_eq!(compared, 6, "{printed}");
    let _ = single;
}

#[test]
fn index_names_the_missing_shard() {
    let Some(f) = Fleet::new() else { return };
    let prefix = format!("{}/partial", f.registry.host());
    f.build(
        "out",
        "cache",
        &["--shard", "1/2", "--push", &prefix, "--insecure"],
    );
    let o =
        f.fx.project
            .run(&["index", &prefix, "--distro", "test", "--insecure"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("latest-arm64") && e.contains("--shard"), "{e}");
}

#[test]
fn an_entry_tagged_with_another_key_is_refused() {
    let Some(f) = Fleet::new() else { return };
    let repo = f.cache_repo();
    let flags = ["--cache-registry", repo.as_str(), "--insecure"];
    let a = f.build("out-a", "cache-a", &flags);

    // Move one key's tag onto another key's (valid, well-formed) entry: a registry
    // answering for one layer with another's.
    let base = format!("http://{}/v2/layer-cache", f.registry.host());
    let http = reqwest::blocking::Client::new();
    let list = http.get(format!("{base}/tags/list")).send().unwrap();
    let list: Value = serde_json::from_slice(&list.bytes().unwrap()).unwrap();
    let keys: Vec<&str> = list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(keys.len() as u64, a["layers"]["made"].as_u64().unwrap());
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let other = http
        .get(format!("{base}/manifests/{}", keys[0]))
        .header("Accept", accept)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    let put = http
        .put(format!("{base}/manifests/{}", keys[1]))
        .header("Content-Type", accept)
        .body(other.to_vec())
        .send()
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    let b = f.build("out-b", "cache-b", &flags);
    let warnings = b["cache_registry"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{b}");
    let w = warnings[0].as_str().unwrap();
    assert!(
        w.contains(keys[1]) && w.contains("not for the one it is tagged with"),
        "{w}"
    );
    assert_eq!(b["layers"]["made"], 1, "{b}");
    assert_eq!(indexes(&f.path("out-a")), indexes(&f.path("out-b")));
}
