//! GNU build-id notes: reading a file's build-id, writing dependency notes.
//!
//! Payloads carry three notes of the same shape (name "GNU", type
//! `NT_GNU_BUILD_ID`): their own id in `.note.gnu.build-id`, and the ids of
//! what they stack on in `.livepatch.depends` / `.livepatch.xen_depends`.

use std::path::Path;

use object::elf;
use object::read::elf::NoteIterator;
use object::{LittleEndian, Object, ObjectSection};

use crate::error::Error;

/// ELF note type of a GNU build-id.
pub const NT_GNU_BUILD_ID: u32 = 3;

/// The section holding an ELF file's own build-id note.
pub const BUILD_ID_SECTION: &str = ".note.gnu.build-id";

/// The owner name of GNU notes, as stored (NUL-terminated).
const GNU_NAME: &[u8] = b"GNU\0";

/// One ELF note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The owner name without its terminating NUL.
    pub name: Vec<u8>,
    pub n_type: u32,
    pub desc: Vec<u8>,
}

impl Note {
    /// Whether this is a GNU build-id note.
    pub fn is_build_id(&self) -> bool {
        self.name == b"GNU" && self.n_type == NT_GNU_BUILD_ID
    }
}

/// Parse a sequence of little-endian ELF notes with 4-byte aligned name and
/// descriptor fields (the layout every note section here uses), with
/// `object`'s note reader.
pub fn parse_notes(data: &[u8]) -> Result<Vec<Note>, String> {
    let mut iter = NoteIterator::<elf::FileHeader64<LittleEndian>>::new(LittleEndian, 4, data)
        .map_err(|e| e.to_string())?;
    let mut notes = Vec::new();
    while let Some(note) = iter
        .next()
        .map_err(|e| format!("note {}: {e}", notes.len()))?
    {
        notes.push(Note {
            name: note.name().to_vec(),
            n_type: note.n_type(LittleEndian),
            desc: note.desc().to_vec(),
        });
    }
    Ok(notes)
}

/// The bytes of one "GNU" `NT_GNU_BUILD_ID` note carrying `id`.
pub fn build_id_note(id: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + id.len() + 3);
    out.extend_from_slice(&(GNU_NAME.len() as u32).to_le_bytes());
    out.extend_from_slice(&(id.len() as u32).to_le_bytes());
    out.extend_from_slice(&NT_GNU_BUILD_ID.to_le_bytes());
    out.extend_from_slice(GNU_NAME);
    out.extend_from_slice(id);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// The build-id in a note section's bytes: the descriptor of its first GNU
/// build-id note.
pub fn build_id_in(data: &[u8]) -> Result<Vec<u8>, String> {
    let notes = parse_notes(data)?;
    notes
        .into_iter()
        .find(Note::is_build_id)
        .map(|n| n.desc)
        .ok_or_else(|| "no GNU build-id note".to_string())
}

/// The build-id of any ELF file (executable or relocatable), read from its
/// `.note.gnu.build-id` section.
pub fn build_id_of_file(path: &Path) -> Result<Vec<u8>, Error> {
    // The largest of the roles: this reads payloads and xen-syms alike.
    let data = crate::limits::read_input(path, crate::limits::Role::XenSyms)?;
    let malformed = |what: String| Error::Malformed {
        path: path.to_path_buf(),
        what,
    };
    let file =
        object::File::parse(&*data).map_err(|e| malformed(format!("not an ELF file: {e}")))?;
    let section = file
        .section_by_name(BUILD_ID_SECTION)
        .ok_or_else(|| malformed("no .note.gnu.build-id section".into()))?;
    let bytes = section
        .data()
        .map_err(|e| malformed(format!(".note.gnu.build-id: {e}")))?;
    let id = build_id_in(bytes).map_err(|e| malformed(format!(".note.gnu.build-id: {e}")))?;
    if id.is_empty() {
        return Err(malformed(".note.gnu.build-id: empty build-id".into()));
    }
    Ok(id)
}

/// Where the descriptor of an ELF file's own build-id note lies in the
/// file's bytes (offset, length): the first note of `.note.gnu.build-id`,
/// as the linker wrote it.
pub fn build_id_descriptor(data: &[u8]) -> Result<(usize, usize), String> {
    let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
    let sec = file
        .section_by_name(BUILD_ID_SECTION)
        .ok_or("no .note.gnu.build-id section")?;
    let (off, size) = sec
        .file_range()
        .ok_or(".note.gnu.build-id has no data in the file")?;
    let (off, size) = (off as usize, size as usize);
    let note = data
        .get(off..off.saturating_add(size))
        .ok_or(".note.gnu.build-id runs past the end of the file")?;
    let malformed = || ".note.gnu.build-id: malformed note".to_string();
    let mut iter = NoteIterator::<elf::FileHeader64<LittleEndian>>::new(LittleEndian, 4, note)
        .map_err(|_| malformed())?;
    let first = iter
        .next()
        .map_err(|_| malformed())?
        .ok_or_else(malformed)?;
    let desc = first.desc();
    if desc.is_empty() {
        return Err(malformed());
    }
    // The descriptor borrows from `note`, which borrows from `data`.
    let start = desc.as_ptr() as usize - data.as_ptr() as usize;
    Ok((start, desc.len()))
}

/// Lower-case hex, as `readelf -n` and `xen-livepatch list` print it.
pub fn to_hex(id: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(id.len() * 2);
    for b in id {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Parse hex (either case, no separators) into bytes.
pub fn from_hex(s: &str) -> Result<Vec<u8>, Error> {
    let bad = |what: &str| Error::Unsupported(format!("build-id {s:?}: {what}"));
    let s = s.trim();
    if s.len() % 2 == 1 {
        return Err(bad("odd number of hex digits"));
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16);
            let lo = pair.get(1).and_then(|&c| (c as char).to_digit(16));
            match (hi, lo) {
                (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                _ => Err(bad("not a hex string")),
            }
        })
        .collect()
}

/// The build-id lengths accepted for a dependency note (`--depends`, `--xen-depends`). The
/// loader compares a dependency note byte for byte with its target's
/// build-id, whatever its length; ld makes 16 (md5, uuid) or 20 (sha1)
/// bytes, and anything beyond 64 cannot be a real build-id.
pub const BUILD_ID_LEN: std::ops::RangeInclusive<usize> = 1..=64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_round_trip() {
        let id: Vec<u8> = (0..20).collect();
        let bytes = build_id_note(&id);
        assert_eq!(bytes.len(), 12 + 4 + 20);
        let notes = parse_notes(&bytes).unwrap();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].is_build_id());
        assert_eq!(notes[0].desc, id);
        assert_eq!(build_id_in(&bytes).unwrap(), id);
    }

    #[test]
    fn odd_sized_desc_is_padded() {
        let bytes = build_id_note(&[1, 2, 3]);
        assert_eq!(bytes.len() % 4, 0);
        let mut two = bytes.clone();
        two.extend_from_slice(&build_id_note(&[9; 8]));
        let notes = parse_notes(&two).unwrap();
        assert_eq!(notes[0].desc, vec![1, 2, 3]);
        assert_eq!(notes[1].desc, vec![9; 8]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_notes(&[1, 2, 3]).is_err());
        let mut huge = build_id_note(&[0; 20]);
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_notes(&huge).is_err());
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_notes(&huge).is_err());
        assert!(parse_notes(&[]).unwrap().is_empty());
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse_notes(&data);
        }
    }

    #[test]
    fn hex() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10").unwrap(), vec![0, 0xab, 0x10]);
        assert!(from_hex("abc").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("é1").is_err());
    }
}
