//! `debless why`: why a package is (or is not) in an image.

use debless::arch::Arch;
use debless::pin::why::{Why, why};
use debless::rules::RuleSet;
use debless::snapshot::lock::Lock;

use super::Global;

/// Arguments of `debless why`.
#[derive(clap::Args)]
pub struct WhyArgs {
    /// Package name.
    pub package: String,
    /// Image (rule name).
    #[arg(long)]
    pub image: String,
    /// Distro whose lock to read.
    #[arg(long, default_value = "debian13")]
    pub distro: String,
    /// Architecture [default: the lock's first].
    #[arg(long)]
    pub arch: Option<Arch>,
    /// Print JSON: {package, image, distro, arch, in_image, paths, reason}.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless why`: one dependency path per line, or why it is absent.
pub fn run(a: WhyArgs, g: &Global) -> anyhow::Result<()> {
    let WhyArgs {
        package,
        image,
        distro,
        arch,
        json,
    } = a;
    let lock = Lock::read(&g.project.join("snapshots").join(format!("{distro}.lock")))?;
    let rules = RuleSet::load(&g.project.join("rules"))?;
    let Some(arch) = arch.or_else(|| lock.architectures.first().copied()) else {
        anyhow::bail!(
            "the {distro} lock has no architectures; run `debless pin --distro {distro}`"
        );
    };
    let answer = why(&lock, &rules, &image, arch, &package)?;
    if json {
        let (paths, reason) = match &answer {
            Why::Paths(paths) => (paths.clone(), None),
            Why::Absent(msg) => (Vec::new(), Some(msg)),
        };
        return super::json::print(&serde_json::json!({
            "package": package,
            "image": image,
            "distro": distro,
            "arch": arch,
            "in_image": reason.is_none(),
            "paths": paths,
            "reason": reason,
        }));
    }
    match answer {
        Why::Paths(paths) => {
            for p in paths {
                println!("{}", p.join(" -> "));
            }
        }
        Why::Absent(msg) => {
            println!("{msg}");
        }
    }
    Ok(())
}
