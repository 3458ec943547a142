//! The record of refusals a patch author accepted (`xsplice-build
//! --accept KIND:SUBJECT --accept-reason TEXT`), which the payload carries
//! in a section the loader never loads, so whoever loads it can read what
//! was accepted and why (`xsplice-build verify` prints it).
//!
//! Every supported loader (Xen 4.17 to 4.22) skips a section without
//! `SHF_ALLOC`: `move_payload()` in `xen/common/livepatch.c` gives it no
//! place (`livepatch_elf_ignore_section()` in
//! `xen/include/xen/livepatch_elf.h` is `!(sh_flags & SHF_ALLOC)`),
//! relocations against such a section are skipped, and the loader looks
//! sections up only by the names of its own tables (`.livepatch.*`,
//! `.altinstructions`, `.ex_table`, `.modinfo`, ...), never this one. The
//! section holds no symbols.
//!
//! Contents: UTF-8 text, a first line naming the format ([`HEADER`]), then
//! one line per accepted refusal, its fields separated by tabs: kind,
//! subject, object, section, reason. No field holds a tab or a newline
//! (the driver refuses such a `--accept-reason`; subjects are symbol and
//! type names).

/// The section's name.
pub const SECTION: &str = ".xsplice.accepted";

/// The first line of the section's contents.
pub const HEADER: &str = "xsplice-build accepted refusals v1";

/// One accepted refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The refusal's stable kind (`layout_changed`).
    pub kind: String,
    /// What the refusal is about, exactly as its report entry's `symbol`
    /// names it (`struct domain`, `opt_max_grant_frames`).
    pub subject: String,
    /// The object it was found in (`common/domain.o`).
    pub object: String,
    /// The refusal's section (for a type, the file declaring it).
    pub section: String,
    /// The author's `--accept-reason`.
    pub reason: String,
}

/// Whether `text` can be a field (no tab, no line break).
pub fn is_field(text: &str) -> bool {
    !text.contains(['\t', '\n', '\r'])
}

/// The section's contents for `records`. A tab or line break in a field
/// (which the driver refuses before) becomes a space.
pub fn encode(records: &[Accepted]) -> Vec<u8> {
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let mut out = format!("{HEADER}\n");
    for r in records {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            clean(&r.kind),
            clean(&r.subject),
            clean(&r.object),
            clean(&r.section),
            clean(&r.reason)
        ));
    }
    out.into_bytes()
}

/// The records in a section's contents, or why they cannot be read.
pub fn decode(data: &[u8]) -> Result<Vec<Accepted>, String> {
    let text = std::str::from_utf8(data).map_err(|e| format!("not UTF-8 text: {e}"))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(HEADER) => {}
        Some(other) => return Err(format!("first line is {other:?}, not {HEADER:?}")),
        None => return Err("empty".to_string()),
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                [kind, subject, object, section, reason] => Ok(Accepted {
                    kind: kind.to_string(),
                    subject: subject.to_string(),
                    object: object.to_string(),
                    section: section.to_string(),
                    reason: reason.to_string(),
                }),
                _ => Err(format!(
                    "record {} has {} fields, not 5 (kind, subject, object, section, reason)",
                    i + 1,
                    f.len()
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = vec![Accepted {
            kind: "layout_changed".into(),
            subject: "struct domain".into(),
            object: "common/domain.o".into(),
            section: "include/xen/sched.h".into(),
            reason: "checked by A. Author: no instance exists before the patch".into(),
        }];
        let bytes = encode(&r);
        assert!(bytes.starts_with(HEADER.as_bytes()));
        assert_eq!(decode(&bytes).unwrap(), r);
        assert_eq!(decode(&encode(&[])).unwrap(), []);
    }

    #[test]
    fn malformed_contents_are_named() {
        assert!(decode(b"").unwrap_err().contains("empty"));
        assert!(decode(b"something else\n")
            .unwrap_err()
            .contains("first line"));
        let e = decode(format!("{HEADER}\na\tb\n").as_bytes()).unwrap_err();
        assert!(e.contains("record 1 has 2 fields"), "{e}");
        assert!(decode(&[0xff, 0xfe]).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn fields_cannot_hold_separators() {
        assert!(is_field("a reason, with spaces"));
        assert!(!is_field("two\tfields") && !is_field("two\nlines"));
        let r = Accepted {
            kind: "k".into(),
            subject: "s".into(),
            object: "o".into(),
            section: "x".into(),
            reason: "a\tb".into(),
        };
        assert_eq!(decode(&encode(&[r])).unwrap()[0].reason, "a b");
    }
}
