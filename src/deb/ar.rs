//! The ar container of a .deb, read from a byte slice.
//!
//! Not the `ar` crate: it indexes its GNU name table with an offset taken from the input and
//! allocates that table at whatever size the header claims, so hostile bytes can panic or
//! abort it. A .deb only ever uses the common ar format, which fits in a few lines here and
//! hands out members as sub-slices without copying.

const MAGIC: &[u8] = b"!<arch>\n";
const HEADER_LEN: usize = 60;

/// One member of an ar archive.
pub(crate) struct Member<'a> {
    /// The member name, without the space padding or a GNU-style trailing `/`.
    pub name: String,
    /// The member's bytes.
    pub data: &'a [u8],
}

/// Split an ar archive into its members, checking that every member is complete.
pub(crate) fn members(bytes: &[u8]) -> Result<Vec<Member<'_>>, String> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("not an ar archive (no `!<arch>` signature), so not a .deb")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        // Members start on even offsets; the pad byte may be missing at the very end.
        if rest.len() < HEADER_LEN {
            return Err(format!(
                "ar archive ends in the middle of a member header after {} members",
                out.len()
            ));
        }
        let (header, after) = rest.split_at(HEADER_LEN);
        if &header[58..60] != b"`\n" {
            return Err(format!(
                "ar member header {} is malformed (no end marker)",
                out.len() + 1
            ));
        }
        let name = std::str::from_utf8(&header[..16])
            .map_err(|_| format!("ar member name {} is not text", out.len() + 1))?
            .trim_end_matches(' ');
        let name = name.strip_suffix('/').unwrap_or(name).to_string();
        let size: usize = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim_end_matches(' ').parse().ok())
            .ok_or_else(|| format!("ar member {name:?} has an unreadable size"))?;
        if size > after.len() {
            return Err(format!(
                "ar member {name:?} is truncated ({} of {size} bytes present)",
                after.len()
            ));
        }
        let (data, after) = after.split_at(size);
        rest = if size % 2 == 1 && !after.is_empty() {
            &after[1..]
        } else {
            after
        };
        out.push(Member { name, data });
    }
    Ok(out)
}
