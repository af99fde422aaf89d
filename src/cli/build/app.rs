//! `debless build`'s application-layer flags: `--add` and the image config overrides.
//! Kept apart from the other build flags so that each stays one block.

use std::collections::BTreeMap;

use debless::build::BuildOptions;
use debless::rules::{AddRule, RuleConfig};

/// The application layer and the image config, on top of every tag built.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Application layer and image config (every image and tag built)")]
pub struct AppArgs {
    /// Add a host file, directory (recursively) or tarball in one more layer on top of
    /// every image and tag this run builds (repeatable): SRC:DEST[:UID:GID[:MODE]], e.g.
    /// `./server:/app/server:65532:65532:0755`. A SRC ending in .tar, .tar.gz, .tgz,
    /// .tar.xz or .tar.zst with a DEST ending in `/` is unpacked into DEST (checked like a
    /// .deb: no `..`, no devices, no setuid); anything else is copied. Owner default 0:0;
    /// MODE applies to regular files (default 0755 if executable on the host, else 0644).
    #[arg(long = "add", value_name = "SRC:DEST[:UID:GID[:MODE]]")]
    pub add: Vec<String>,
    /// Replace the Entrypoint: a JSON array (`'["/app/server","--port","80"]'`) or words
    /// split on spaces (`"/app/server --port 80"`); `[]` clears it.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Replace the Cmd, written as for --entrypoint.
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,
    /// Set an environment variable (repeatable), merged by name over the rules'.
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Replace the User (`65532`, `65532:65532`).
    #[arg(long)]
    pub user: Option<String>,
    /// Replace the WorkingDir.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Set a config label (repeatable), merged by name over the rules'.
    #[arg(long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Set a manifest annotation (repeatable), merged by name over the rules' and
    /// debless's own (except org.opencontainers.image.created and dev.debless.packages).
    #[arg(long = "annotation", value_name = "K=V")]
    pub annotations: Vec<String>,
}

impl AppArgs {
    /// Put the flags into the build's options.
    pub fn apply(self, opts: &mut BuildOptions) -> anyhow::Result<()> {
        for spec in &self.add {
            opts.add
                .push(AddRule::from_cli(spec).map_err(anyhow::Error::msg)?);
        }
        opts.config = RuleConfig {
            env: pairs("--env", &self.env)?,
            user: self.user,
            workdir: self.workdir,
            entrypoint: self
                .entrypoint
                .map(|c| command("--entrypoint", &c))
                .transpose()?,
            cmd: self.cmd.map(|c| command("--cmd", &c)).transpose()?,
            labels: pairs("--label", &self.labels)?,
            annotations: pairs("--annotation", &self.annotations)?,
            ..RuleConfig::default()
        };
        Ok(())
    }
}

/// `K=V` flags by key (a later one wins).
fn pairs(flag: &str, given: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in given {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => anyhow::bail!("{flag} {kv:?}: write it as KEY=VALUE"),
        }
    }
    Ok(out)
}

/// An Entrypoint or Cmd: a JSON array of strings, or words split on whitespace.
fn command(flag: &str, given: &str) -> anyhow::Result<Vec<String>> {
    if given.trim_start().starts_with('[') {
        serde_json::from_str(given).map_err(|e| {
            anyhow::anyhow!(
                "{flag} {given:?}: not a JSON array of strings ({e}); write e.g. '[\"/app/server\", \"--port\", \"80\"]'"
            )
        })
    } else {
        Ok(given.split_whitespace().map(str::to_owned).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_json_arrays_or_words() {
        assert_eq!(command("--cmd", r#"["/a b", "c"]"#).unwrap(), ["/a b", "c"]);
        assert_eq!(
            command("--cmd", "/app/x  --port 80").unwrap(),
            ["/app/x", "--port", "80"]
        );
        assert!(command("--cmd", "[]").unwrap().is_empty());
        let e = command("--entrypoint", "[1]").unwrap_err().to_string();
        assert!(
            e.contains("--entrypoint") && e.contains("JSON array"),
            "{e}"
        );
    }

    #[test]
    fn pairs_need_a_key() {
        let p = pairs("--env", &["A=1".into(), "B=x=y".into(), "A=2".into()]).unwrap();
        assert_eq!(p["A"], "2");
        assert_eq!(p["B"], "x=y");
        let e = pairs("--label", &["=v".into()]).unwrap_err().to_string();
        assert!(e.contains("--label") && e.contains("KEY=VALUE"), "{e}");
    }
}
