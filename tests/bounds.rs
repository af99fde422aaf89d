//! Hostile packages built to expand: small on the wire, huge once read. Each would have
//! made a build hold or write far more than its Installed-Size allows (a sparse file, a
//! control member that unpacks to a gigabyte, a path whose parents square its depth, a
//! thousand hard links to one big file) or produced a path the kernel cannot take; and
//! rule-generated files that would have escaped the image or been reported as a bug.
//! Every case asserts one named `error:` line and an untouched lock, `--out` and cache,
//! as `tests/hostile.rs` does; `SECURITY.md` lists them.

mod common;

use common::hostile::{Fixture, deb_for, one_package, rule};
use common::{DebFile, build_deb, stderr};
use debless::deb::testdeb::{Raw, compress, raw_ar, raw_tar, sparse_tar};

#[test]
fn a_sparse_file_is_refused_before_it_expands() {
    // Under a kilobyte: 512 bytes stored, 1 GiB once the tar reader fills the holes. It
    // made a 1 GiB layer and took 1.6 GB of memory with a bound of about 1 MiB.
    let deb = deb_for(
        "sparse",
        "data.tar.gz",
        &sparse_tar("./usr/share/sparse/zeros", 1 << 30),
    );
    assert!(deb.len() < 1024, "{} bytes", deb.len());
    one_package("sparse", deb, 4).build_refused(
        "sparse",
        true,
        &[],
        &["sparse 1 (amd64): package sparse: /usr/share/sparse/zeros: is a GNU sparse file"],
    );
}

#[test]
fn a_control_member_bomb_is_stopped_at_its_bound() {
    // data.tar is one byte; control.tar.xz unpacks to 256 MiB (an md5sums of zeros),
    // which was read whole.
    let control = raw_tar(&[
        Raw::file(
            "./control",
            b"Package: ctlbomb\nVersion: 1\nArchitecture: amd64\n",
        ),
        Raw::file("./md5sums", &vec![0u8; 256 << 20]),
    ]);
    let data = raw_tar(&[Raw::file("./usr/share/ctlbomb/x", b"x")]);
    let deb = raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", &compress("xz", &control)),
        ("data.tar.xz", &compress("xz", &data)),
    ]);
    assert!(deb.len() < 256 << 10, "{} bytes", deb.len());
    let limit = debless::deb::max_data_bytes(4).to_string();
    one_package("ctlbomb", deb, 4).build_refused(
        "ctlbomb",
        true,
        &[],
        &[
            "ctlbomb 1 (amd64): package ctlbomb: control.tar.xz decompresses to more than",
            &limit,
        ],
    );
}

#[test]
fn a_deep_path_pays_for_the_parents_it_implies() {
    // One 4 KB path 2,000 directories deep, none of them shipped: the image would have had
    // to create 2,000 parents, 4 MB of paths. Deeper (through PAX or long-name records)
    // it grew with the square of the depth, to 14 GB of memory.
    let deep = format!("./usr/share/deep/{}f", "d/".repeat(2000));
    let deb = deb_for("deep", "data.tar.gz", &raw_tar(&[Raw::file(&deep, b"x")]));
    let limit = debless::deb::max_data_bytes(4).to_string();
    one_package("deep", deb, 4).build_refused(
        "deep",
        true,
        &[],
        &[
            "deep 1 (amd64): package deep: data.tar.gz would put more than",
            &limit,
            "parent directories",
        ],
    );
}

#[test]
fn a_path_the_kernel_cannot_take_is_refused() {
    let long = format!("./usr/share/long/{}", "a/".repeat(2100));
    let deb = deb_for("long", "data.tar.gz", &raw_tar(&[Raw::file(&long, b"x")]));
    one_package("long", deb, 16).build_refused(
        "long",
        true,
        &[],
        &[
            "long 1 (amd64): package long: /usr/share/long/a/",
            "cannot be unpacked: it is longer than 4095 bytes (PATH_MAX)",
        ],
    );
    let wide = format!("./usr/share/wide/{}", "n".repeat(300));
    let deb = deb_for("wide", "data.tar.gz", &raw_tar(&[Raw::file(&wide, b"x")]));
    one_package("wide", deb, 16).build_refused(
        "wide",
        true,
        &[],
        &[
            "wide 1 (amd64): package wide",
            "longer than 255 bytes (NAME_MAX)",
        ],
    );
}

#[test]
fn many_hard_links_to_a_big_file_cost_one_copy() {
    // 8 MiB of zeros and 20,000 hard links to it: 18 MB of tar, a few KB as xz. Every
    // link's bytes were hashed again for the SPDX document (320 GB of hashing); now the
    // build reads, hashes and stores the file once, and the layer holds it once.
    let big = vec![0u8; 8 << 20];
    let names: Vec<String> = (0..20_000)
        .map(|i| format!("./usr/share/links/l{i}"))
        .collect();
    let mut raws = vec![
        Raw::dir("./usr/"),
        Raw::dir("./usr/share/"),
        Raw::dir("./usr/share/links/"),
        Raw::file("./usr/share/links/big", &big),
    ];
    raws.extend(
        names
            .iter()
            .map(|n| Raw::link(tar::EntryType::Link, n, "./usr/share/links/big")),
    );
    let deb = deb_for("links", "data.tar.xz", &raw_tar(&raws));
    // What dpkg-gencontrol would say: the file once, a KiB per other entry.
    let f = one_package("links", deb, 8 * 1024 + 20_004);
    let out = f.path("out");
    let o = f.run(
        &[
            "build",
            "--distro",
            "test",
            "links",
            "--out",
            out.to_str().unwrap(),
        ],
        "cache",
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let layout = debless::oci::LayoutReader::open(&out.join("links-test")).unwrap();
    let tar_bytes: u64 = layout
        .blob_digests()
        .unwrap()
        .iter()
        .map(|d| {
            std::fs::metadata(out.join("links-test").join(d.blob_path()))
                .unwrap()
                .len()
        })
        .sum();
    assert!(tar_bytes < 4 << 20, "blobs hold the file once: {tar_bytes}");
}

#[test]
fn hard_linked_certificates_are_refused_by_the_ca_bundle() {
    // A bundle holds each certificate file once per path: a thousand links to one file of
    // certificates would make a bundle a thousand times its size.
    // The refusal comes before any certificate is parsed, so the content is no matter.
    let mut raws = vec![Raw::file(
        "./usr/share/ca-certificates/evil/a.crt",
        b"-----BEGIN CERTIFICATE-----\n",
    )];
    raws.push(Raw::link(
        tar::EntryType::Link,
        "./usr/share/ca-certificates/evil/b.crt",
        "./usr/share/ca-certificates/evil/a.crt",
    ));
    let mut p = common::pkg("certs", "1", "amd64", &[]);
    p.deb = Some(deb_for("certs", "data.tar", &raw_tar(&raws)));
    let f = Fixture::new(
        vec![p],
        &[(
            "rules/certs.toml",
            format!("{}[generate.ca-bundle]\n", rule(&["certs"])),
        )],
    );
    f.build_refused(
        "certs",
        true,
        &[],
        &["generator ca-bundle: /usr/share/ca-certificates/evil/a.crt (from certs) is a hard link"],
    );
}

#[test]
fn a_generated_symlink_above_the_root_is_a_rule_error() {
    let f = Fixture::new(
        vec![],
        &[(
            "rules/img.toml",
            format!(
                "{}[generate.symlinks]\n\"/usr/bin/x\" = \"../../../etc/shadow\"\n",
                rule(&["good"])
            ),
        )],
    );
    f.build_refused(
        "img",
        true,
        &[],
        &[
            "rules/img.toml",
            "generator symlinks: /usr/bin/x -> \"../../../etc/shadow\": the target points above the image root",
        ],
    );
}

#[test]
fn a_malformed_generated_home_is_a_rule_error_not_a_bug() {
    for home in ["/home/../etc", "/home//app", "/home/app/"] {
        let users = format!(
            "[generate.users]\nusers = [{{ name = \"app\", uid = 1, gid = 1, home = \"{home}\" }}]\ngroups = [{{ name = \"app\", gid = 1 }}]\n"
        );
        let f = Fixture::new(
            vec![],
            &[("rules/img.toml", format!("{}{users}", rule(&["good"])))],
        );
        f.build_refused(
            "img",
            true,
            &[],
            &[
                "rules/img.toml",
                "generator users: user app: home",
                "must be an absolute, normalised path",
            ],
        );
        let o = f.run(&["build", "--distro", "test", "img"], "cache", &[]);
        assert!(!stderr(&o).contains("bug in debless"), "{}", stderr(&o));
    }
}

#[test]
fn a_package_within_its_bounds_builds_as_before() {
    // The bounds refuse only what is built to expand: a real dpkg-deb package with long
    // names, hard links and a deep tree, at its honest Installed-Size.
    let deep = format!("usr/share/ok/{}file", "dir/".repeat(60));
    let deb = build_deb(
        "ok",
        "1",
        "amd64",
        &[
            ("usr/share/ok/a", DebFile::File(vec![5u8; 100_000], 0o644)),
            ("usr/share/ok/b", DebFile::Hardlink("usr/share/ok/a".into())),
            (&deep, DebFile::File(b"deep".to_vec(), 0o644)),
            (
                &format!("usr/share/ok/{}", "n".repeat(255)),
                DebFile::File(b"wide".to_vec(), 0o644),
            ),
        ],
        "xz",
    );
    let f = one_package("ok", deb, 170);
    let o = f.run(&["build", "--distro", "test", "ok"], "cache", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}
