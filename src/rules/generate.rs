//! A rule's `[generate]` table: which files no package ships its layer gets, and the
//! settings of each generator. The generators themselves are the generate module's; the
//! rules own only the data they are configured with.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[generate]`: the files no package ships that this rule level's layer gets.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Generate {
    /// `/etc/passwd`, `/etc/group` and home directories.
    #[serde(default)]
    pub users: Option<Users>,
    /// `/usr/lib/os-release` rewritten from the distro's own.
    #[serde(default)]
    pub os_release: Option<OsRelease>,
    /// `/etc/ssl/certs/ca-certificates.crt` from the image's certificates.
    #[serde(default)]
    pub ca_bundle: Option<CaBundle>,
    /// `/etc/ssl/certs/java/cacerts` from the CA bundle.
    #[serde(default)]
    pub java_cacerts: Option<Empty>,
    /// `/etc/ld.so.cache` from the image's libraries; stays on for every level below.
    #[serde(default)]
    pub ld_cache: Option<Empty>,
    /// `/var/lib/dpkg/status.d/` entries; stays on for every level below and variants.
    #[serde(default)]
    pub dpkg_status: Option<Empty>,
    /// Move busybox into a directory with a link per applet.
    #[serde(default)]
    pub busybox: Option<Busybox>,
    /// Literal files by absolute path.
    #[serde(default)]
    pub files: BTreeMap<String, LiteralFile>,
    /// Symlinks by absolute path.
    #[serde(default)]
    pub symlinks: BTreeMap<String, String>,
}

/// `[generate.ca-bundle]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CaBundle {
    /// Also ship the individual certificates under /usr/share/ca-certificates (by default
    /// they are dropped once they are in the bundle: nothing reads them at run time).
    #[serde(default)]
    pub keep_certificates: bool,
}

/// An option table without settings (`[generate.ld-cache]`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// One account in `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Numeric user id.
    pub uid: u32,
    /// Numeric primary group id.
    pub gid: u32,
    /// Home directory (created, owned by the user, mode 0700, except `/`).
    pub home: String,
    /// Login shell (`/sbin/nologin`: there is no shell).
    #[serde(default = "nologin")]
    pub shell: String,
    /// GECOS field; defaults to the name.
    #[serde(default)]
    pub gecos: Option<String>,
}

fn nologin() -> String {
    "/sbin/nologin".to_owned()
}

/// One group in `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Numeric group id.
    pub gid: u32,
    /// Members.
    #[serde(default)]
    pub members: Vec<String>,
}

/// `[generate.users]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    /// Accounts, in file order.
    #[serde(default)]
    pub users: Vec<User>,
    /// Groups, in file order.
    #[serde(default)]
    pub groups: Vec<Group>,
}

/// `[generate.os-release]`: the image's identity, built from the distro's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsRelease {
    /// `[KEY, value]` pairs in file order; `{KEY}` in a value is the distro's own value
    /// (`["VERSION", "{NAME} {VERSION}"]`). Every value is written double-quoted.
    pub fields: Vec<(String, String)>,
}

/// One literal file a rule writes (`[generate.files."/etc/nsswitch.conf"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiteralFile {
    /// The content.
    pub content: String,
    /// Permission bits (default 0644).
    #[serde(default = "default_mode")]
    pub mode: u32,
}

fn default_mode() -> u32 {
    0o644
}

/// `[generate.busybox]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Busybox {
    /// Directory that gets the binary and one link per applet (`/busybox`).
    pub dir: String,
}
