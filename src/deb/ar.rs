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

/// Why bytes are not a well-formed ar archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArError {
    /// No `!<arch>` signature.
    #[error("not an ar archive (no `!<arch>` signature), so not a .deb")]
    NotAr,
    /// The bytes end inside a member header.
    #[error("ar archive ends in the middle of a member header after {members} members")]
    CutHeader {
        /// Whole members before it.
        members: usize,
    },
    /// A member header lacks its end marker.
    #[error("ar member header {number} is malformed (no end marker)")]
    NoEndMarker {
        /// 1-based member number.
        number: usize,
    },
    /// A member name is not UTF-8.
    #[error("ar member name {number} is not text")]
    NameNotText {
        /// 1-based member number.
        number: usize,
    },
    /// A member's size field is not a number.
    #[error("ar member {name:?} has an unreadable size")]
    BadSize {
        /// The member.
        name: String,
    },
    /// A member's data is cut short.
    #[error("ar member {name:?} is truncated ({present} of {size} bytes present)")]
    Truncated {
        /// The member.
        name: String,
        /// The bytes there are.
        present: usize,
        /// The bytes the header promises.
        size: usize,
    },
}

/// Split an ar archive into its members, checking that every member is complete.
pub(crate) fn members(bytes: &[u8]) -> Result<Vec<Member<'_>>, ArError> {
    let mut rest = bytes.strip_prefix(MAGIC).ok_or(ArError::NotAr)?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        // Members start on even offsets; the pad byte may be missing at the very end.
        if rest.len() < HEADER_LEN {
            return Err(ArError::CutHeader { members: out.len() });
        }
        let (header, after) = rest.split_at(HEADER_LEN);
        let number = out.len() + 1;
        if &header[58..60] != b"`\n" {
            return Err(ArError::NoEndMarker { number });
        }
        let name = std::str::from_utf8(&header[..16])
            .map_err(|_| ArError::NameNotText { number })?
            .trim_end_matches(' ');
        let name = name.strip_suffix('/').unwrap_or(name).to_string();
        let Some(size) = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim_end_matches(' ').parse::<usize>().ok())
        else {
            return Err(ArError::BadSize { name });
        };
        if size > after.len() {
            return Err(ArError::Truncated {
                name,
                present: after.len(),
                size,
            });
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
