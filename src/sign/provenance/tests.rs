use super::*;
use crate::sign::oracle::{have_python, python};

fn file(name: &str, text: &str) -> InputFile {
    InputFile {
        name: name.to_owned(),
        bytes: text.as_bytes().to_vec(),
    }
}

pub(crate) fn inputs() -> BuildInputs {
    let deb = |name: &str| Dependency {
        name: format!("pool/main/{name}_1.0_amd64.deb"),
        uri: format!("http://127.0.0.1:8080/debian/pool/main/{name}_1.0_amd64.deb"),
        sha256: Digest::of(name.as_bytes()),
    };
    BuildInputs {
        subjects: vec![(
            "base-debian13:latest-amd64".to_owned(),
            Digest::of(b"manifest"),
        )],
        parameters: Parameters {
            distro: "debian13".into(),
            images: vec!["base".into(), "static".into()],
            variants: vec!["nonroot".into(), "latest".into()],
            architectures: vec!["arm64".into(), "amd64".into()],
            compression: "gzip".into(),
            ..Parameters::default()
        },
        lock: file("snapshots/debian13.lock", "lock_version = 1\n"),
        manifest: Some(file("snapshots/debian13.toml", "distro = \"debian13\"\n")),
        rules: vec![
            file("rules/static.toml", "[static]\n"),
            file("rules/base.toml", "[base]\n"),
            file("rules/defaults.toml", "[defaults]\n"),
        ],
        dependencies: vec![deb("libc6"), deb("base-files")],
        debless_version: "0.1.0".into(),
        debless_binary: Digest::of(b"the binary"),
        sboms: vec![("latest-amd64.spdx.json".into(), Digest::of(b"spdx"))],
        builder_id: LOCAL_BUILDER_ID.into(),
        started_on: None,
        finished_on: None,
        invocation_id: None,
    }
}

/// The whole document, so any change to a field name, order or value shows here.
#[test]
fn statement_is_byte_exact() {
    let json = Statement::provenance(&inputs()).unwrap().to_json().unwrap();
    let h = |s: &[u8]| Digest::of(s).hex();
    let c = |s: &str| b64(s.as_bytes());
    let want = format!(
        concat!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","#,
            r#""subject":[{{"name":"base-debian13:latest-amd64","digest":{{"sha256":"{manifest}"}}}}],"#,
            r#""predicateType":"https://slsa.dev/provenance/v1","#,
            r#""predicate":{{"buildDefinition":{{"buildType":"https://debless.dev/build/v1","#,
            r#""externalParameters":{{"distro":"debian13","images":["base","static"],"#,
            r#""variants":["latest","nonroot"],"architectures":["amd64","arm64"],"compression":"gzip","#,
            r#""lock":{{"name":"snapshots/debian13.lock","digest":{{"sha256":"{lock}"}},"content":"{lock_c}"}},"#,
            r#""manifest":{{"name":"snapshots/debian13.toml","digest":{{"sha256":"{man}"}},"content":"{man_c}"}},"#,
            r#""rules":[{{"name":"rules/base.toml","digest":{{"sha256":"{base}"}},"content":"{base_c}"}},"#,
            r#"{{"name":"rules/defaults.toml","digest":{{"sha256":"{def}"}},"content":"{def_c}"}},"#,
            r#"{{"name":"rules/static.toml","digest":{{"sha256":"{stat}"}},"content":"{stat_c}"}}]}},"#,
            r#""resolvedDependencies":[{{"name":"debless","uri":"pkg:generic/debless@0.1.0","digest":{{"sha256":"{bin}"}}}},"#,
            r#"{{"name":"pool/main/base-files_1.0_amd64.deb","uri":"http://127.0.0.1:8080/debian/pool/main/base-files_1.0_amd64.deb","digest":{{"sha256":"{bf}"}}}},"#,
            r#"{{"name":"pool/main/libc6_1.0_amd64.deb","uri":"http://127.0.0.1:8080/debian/pool/main/libc6_1.0_amd64.deb","digest":{{"sha256":"{libc}"}}}}]}},"#,
            r#""runDetails":{{"builder":{{"id":"https://debless.dev/builder/local/v1","version":{{"debless":"0.1.0"}}}},"#,
            r#""byproducts":[{{"name":"latest-amd64.spdx.json","digest":{{"sha256":"{spdx}"}},"mediaType":"application/spdx+json"}}]}}}}}}"#,
        ),
        manifest = h(b"manifest"),
        lock = h(b"lock_version = 1\n"),
        lock_c = c("lock_version = 1\n"),
        man = h(b"distro = \"debian13\"\n"),
        man_c = c("distro = \"debian13\"\n"),
        base = h(b"[base]\n"),
        base_c = c("[base]\n"),
        def = h(b"[defaults]\n"),
        def_c = c("[defaults]\n"),
        stat = h(b"[static]\n"),
        stat_c = c("[static]\n"),
        bin = h(b"the binary"),
        bf = h(b"base-files"),
        libc = h(b"libc6"),
        spdx = h(b"spdx"),
    );
    assert_eq!(String::from_utf8(json).unwrap(), want);
}

#[test]
fn same_build_same_bytes_whatever_the_order() {
    let a = inputs();
    let mut b = inputs();
    b.rules.reverse();
    b.dependencies.reverse();
    b.dependencies.push(b.dependencies[0].clone());
    b.parameters.images.reverse();
    b.parameters.architectures.push("amd64".into());
    let json = |i: &BuildInputs| Statement::provenance(i).unwrap().to_json().unwrap();
    assert_eq!(json(&a), json(&b));
    // No clock unless asked for; then whole seconds, UTC.
    assert!(!String::from_utf8(json(&a)).unwrap().contains("metadata"));
    let mut timed = inputs();
    timed.started_on = Some("2026-11-22T02:09:05.75Z".parse().unwrap());
    timed.finished_on = Some("2026-11-22T02:10:00Z".parse().unwrap());
    let text = String::from_utf8(json(&timed)).unwrap();
    assert!(
        text.contains(
            r#""metadata":{"startedOn":"2026-11-22T02:09:05Z","finishedOn":"2026-11-22T02:10:00Z"}"#
        ),
        "{text}"
    );
}

#[test]
fn refuses_bad_inputs() {
    let mut i = inputs();
    i.subjects.clear();
    assert!(Statement::provenance(&i).is_err());
    for bad in ["../rules/x.toml", "/etc/passwd", "", "rules/./x", "a\\b"] {
        let mut i = inputs();
        i.rules.push(file(bad, "x"));
        assert!(
            matches!(Statement::provenance(&i), Err(SignError::Document { .. })),
            "{bad:?}"
        );
    }
    let mut i = inputs();
    i.rules.push(file("rules/base.toml", "[other]\n"));
    assert!(Statement::provenance(&i).is_err());
}

#[test]
fn embeds_within_bounds_only() {
    let mut i = inputs();
    i.lock.bytes = vec![b'#'; MAX_EMBEDDED_FILE + 1];
    let s = Statement::provenance(&i).unwrap();
    let p = &s.predicate.build_definition.external_parameters;
    assert!(p.lock.content.is_none());
    assert_eq!(p.lock.sha256(), Some(Digest::of(&i.lock.bytes)));
    assert!(p.manifest.as_ref().is_some_and(|m| m.content.is_some()));
    // Four files of 1 MiB fill the budget; the fifth goes by digest.
    let mut i = inputs();
    i.rules = (0..5)
        .map(|n| InputFile {
            name: format!("rules/r{n}.toml"),
            bytes: vec![b'#'; MAX_EMBEDDED_FILE - 100],
        })
        .collect();
    let s = Statement::provenance(&i).unwrap();
    let rules = &s.predicate.build_definition.external_parameters.rules;
    assert_eq!(rules.iter().filter(|r| r.content.is_some()).count(), 4);
}

#[test]
fn parses_back_and_writes_inputs_for_a_rebuild() {
    let s = Statement::provenance(&inputs()).unwrap();
    let json = s.to_json().unwrap();
    let back = Statement::<Provenance>::from_json(&json).unwrap();
    assert_eq!(back, s);
    let dir = tempfile::tempdir().unwrap();
    let written = back
        .predicate
        .build_definition
        .external_parameters
        .write_inputs(dir.path())
        .unwrap();
    assert_eq!(written.written.len(), 5);
    assert!(written.missing.is_empty());
    assert_eq!(
        fs::read(dir.path().join("rules/base.toml")).unwrap(),
        b"[base]\n"
    );

    // Another build type, an unknown parameter: refused.
    let text = String::from_utf8(json).unwrap();
    let other = text.replace(BUILD_TYPE, "https://example.invalid/build/v1");
    assert!(Statement::<Provenance>::from_json(other.as_bytes()).is_err());
    let extra = text.replace(r#""distro":"#, r#""mirror":"x","distro":"#);
    assert!(matches!(
        Statement::<Provenance>::from_json(extra.as_bytes()),
        Err(SignError::Json { .. })
    ));
}

#[test]
fn hostile_inputs_cannot_escape_or_lie() {
    let s = Statement::provenance(&inputs()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut p = s.predicate.build_definition.external_parameters.clone();
    p.rules[0].name = Some("../../escaped".into());
    assert!(p.write_inputs(dir.path()).is_err());
    assert!(!dir.path().join("../../escaped").exists());

    let mut p = s.predicate.build_definition.external_parameters.clone();
    p.rules[0].content = Some(b64(b"[tampered]\n"));
    let fresh = tempfile::tempdir().unwrap();
    assert!(matches!(
        p.write_inputs(fresh.path()),
        Err(SignError::DigestMismatch { .. })
    ));

    let mut p = s.predicate.build_definition.external_parameters.clone();
    p.lock.content = None;
    let w = p.write_inputs(tempfile::tempdir().unwrap().path()).unwrap();
    assert_eq!(w.missing, vec!["snapshots/debian13.lock".to_owned()]);
}

/// The in-toto project's own bindings (protobuf, which refuses unknown field names) read
/// the statement and the SLSA Provenance v1 predicate, and their validator accepts it.
#[test]
fn in_toto_attestation_bindings_accept_it() {
    if !have_python(&["in_toto_attestation"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut timed = inputs();
    timed.started_on = Some("2026-11-22T02:09:05Z".parse().unwrap());
    timed.finished_on = Some("2026-11-22T02:10:00Z".parse().unwrap());
    let json = Statement::provenance(&timed).unwrap().to_json().unwrap();
    fs::write(dir.path().join("statement.json"), &json).unwrap();
    let out = python(
        dir.path(),
        r#"
import json
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open("statement.json"))
pb = json_format.Parse(json.dumps(doc), statement_pb2.Statement())
Statement.copy_from_pb(pb).validate()
assert pb.predicate_type == "https://slsa.dev/provenance/v1"
prov = json_format.Parse(json.dumps(doc["predicate"]), provenance_pb2.Provenance())
assert prov.build_definition.build_type == "https://debless.dev/build/v1"
assert prov.run_details.metadata.started_on.seconds > 0
assert len(prov.build_definition.resolved_dependencies) == 3
print("ok")
"#,
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "ok");
}

#[test]
fn command_line_additions_are_recorded_only_when_given() {
    let plain = Statement::provenance(&inputs()).unwrap().to_json().unwrap();
    assert!(!String::from_utf8_lossy(&plain).contains("commandLine"));
    let mut i = inputs();
    i.parameters.command_line = vec!["--add=server:/app/server".into(), "--user=1".into()];
    let json = Statement::provenance(&i).unwrap().to_json().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v["predicate"]["buildDefinition"]["externalParameters"]["commandLine"],
        serde_json::json!(["--add=server:/app/server", "--user=1"])
    );
}
