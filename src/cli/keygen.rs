//! `debless keygen`: a new ECDSA P-256 key pair in cosign's file formats.

use std::path::PathBuf;

use debless::sign::PrivateKey;
use debless::sign::keys::{PASSWORD_ENV, password_from_env, write_key_pair};

/// Arguments of `debless keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key (private, mode 0600) and PREFIX.pub (public); neither may exist.
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    pub output_key_prefix: PathBuf,
    /// Print JSON on stdout: {private_key, public_key, encrypted}.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless keygen`: with `$COSIGN_PASSWORD` set (even to nothing) the private key is
/// cosign's encrypted form, which `cosign sign --key` reads too; without it, unencrypted
/// PKCS#8 for a secret store that does its own encryption.
pub fn run(args: KeygenArgs, quiet: bool) -> anyhow::Result<()> {
    let prefix = args
        .output_key_prefix
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let private = PathBuf::from(format!("{prefix}.key"));
    let public = PathBuf::from(format!("{prefix}.pub"));
    let password = password_from_env();
    let key = PrivateKey::generate();
    write_key_pair(
        &key,
        &private,
        &public,
        password.as_ref().map(|p| p.as_slice()),
    )?;
    if args.json {
        return super::json::print(&serde_json::json!({
            "private_key": private.display().to_string(),
            "public_key": public.display().to_string(),
            "encrypted": password.is_some(),
        }));
    }
    if !quiet {
        let form = match password {
            Some(_) => format!("encrypted with ${PASSWORD_ENV}, cosign's format"),
            None => {
                format!("unencrypted PKCS#8: keep it secret, or set ${PASSWORD_ENV} to encrypt it")
            }
        };
        eprintln!("wrote {} ({form})", private.display());
        eprintln!(
            "wrote {} (give this to whoever verifies: debless verify --key, cosign verify --key)",
            public.display()
        );
    }
    Ok(())
}
