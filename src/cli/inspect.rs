//! `debless inspect`: what an image holds, which package ships a file, which files a
//! package ships.

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
        let q = debless::inspect::owners::file_owner(&dir, &tag, &file)?;
        if json {
            super::json::print(&q)?;
        } else {
            q.images.iter().for_each(|i| print!("{}", i.to_text()));
            for p in &q.missing_on {
                println!("{p}  not in this image");
            }
        }
    } else if let Some(package) = package {
        let q = debless::inspect::owners::package_files(&dir, &tag, &package)?;
        if json {
            super::json::print(&q)?;
        } else {
            q.images.iter().for_each(|i| print!("{}", i.to_text()));
            for p in &q.missing_on {
                println!("{p}  not in this image");
            }
        }
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
