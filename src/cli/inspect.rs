//! `debless inspect`: what an image holds, which package ships a file, which files a
//! package ships.

use debless::inspect::owners::{self, Query};

/// Arguments of `debless inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// OUT/IMAGE[:TAG], e.g. out/python3-debian13:nonroot (default tag: latest): a layout
    /// directory, or an oci-archive or docker-archive file (out/python3-debian13.tar:latest).
    pub target: String,
    /// How many of the largest files to list.
    #[arg(long, default_value_t = 10)]
    pub largest: usize,
    /// Which package ships this file (an absolute path in the image), in which layer; a
    /// link is followed to the file it names.
    #[arg(long, value_name = "PATH", conflicts_with = "package")]
    pub file: Option<String>,
    /// Which files this package ships in the image, and in which layer each is.
    #[arg(long, value_name = "NAME")]
    pub package: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless inspect`.
pub fn run(a: InspectArgs) -> anyhow::Result<()> {
    let InspectArgs {
        target,
        largest,
        file,
        package,
        json,
    } = a;
    let (dir, tag) = debless::inspect::parse_target(&target);
    if let Some(file) = file {
        let q = owners::file_owner(&dir, &tag, &file)?;
        print_query(&q, json, owners::FileOwner::to_text)?;
    } else if let Some(package) = package {
        let q = owners::package_files(&dir, &tag, &package)?;
        print_query(&q, json, owners::PackageFiles::to_text)?;
    } else {
        let r = debless::inspect::inspect(&dir, &tag, largest)?;
        if json {
            super::json::print(&r)?;
        } else {
            print!("{}", r.to_text());
        }
    }
    Ok(())
}

/// Print a `--file` or `--package` answer: the JSON document, or `each` platform's text.
fn print_query<T: serde::Serialize>(
    q: &Query<T>,
    json: bool,
    each: fn(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        super::json::print(q)
    } else {
        print!("{}", q.to_text(each));
        Ok(())
    }
}
