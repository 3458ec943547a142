//! `special`: keep the entries of `.bug_frames.N`, `.ex_table`,
//! `.altinstructions` and `.alt_call_sites` (Xen 4.21) that belong to included functions (an entry belongs
//! to the code its first relocation points at), and pull in the code they
//! point to and the strings bug frames name. `.fixup` and
//! `.altinstr_replacement` hold the out-of-line code of every function of
//! the object, init code's too: only the fragments the kept entries reach
//! are copied.

use crate::error::Error;
use crate::include::{Includer, NameResolver, Plan, Role};
use xsplice_target::abi::SpecialSizes;

use crate::model::{Object, Place, Reloc, SectionId};
use xsplice_target::sections;
use xsplice_target::Arch;

/// A special table rebuilt from the entries that belong to the payload.
#[derive(Debug, Clone)]
pub struct SpecialOut {
    pub source: SectionId,
    pub name: String,
    pub entry_size: u64,
    pub data: Vec<u8>,
    /// Relocations with offsets in `data`, targets in the patched object.
    pub relocs: Vec<Reloc>,
    /// How many entries of the source were kept.
    pub kept: usize,
    pub total: usize,
}

pub fn entry_size(name: &str, arch: Arch, sizes: &SpecialSizes) -> Option<u64> {
    sections::special_table(name)?.entry_size(arch, sizes)
}

/// Select entries; the includer follows what they point to. Repeats until
/// nothing new is included (entries of newly included functions).
pub fn select(
    inc: &Includer<'_, '_>,
    plan: &mut Plan,
    sizes: &SpecialSizes,
    resolver: &dyn NameResolver,
) -> Result<Vec<SpecialOut>, Error> {
    let p = inc.patched;
    loop {
        let mut outs = Vec::new();
        for id in p.section_ids() {
            if inc.role(id) != Role::SpecialTable {
                continue;
            }
            let sec = p.section(id);
            if sec.is_nobits() {
                // Entries are read from the file; a zero-filled table has none
                // (and its claimed size could be anything).
                return Err(Error::from(xsplice_target::Error::Malformed {
                    path: p.path.clone(),
                    what: format!(
                        "section {}: special table without contents (SHT_NOBITS)",
                        sec.name
                    ),
                }));
            }
            let size = entry_size(sec.name, p.arch, sizes).unwrap_or(0);
            if sec.size.checked_rem(size) != Some(0) {
                return Err(Error::from(xsplice_target::Error::Malformed {
                    path: p.path.clone(),
                    what: format!(
                        "section {} is {:#x} bytes, not a multiple of its entry size {size} \
                         (from xen-syms's DWARF or the tree's headers): the object and that \
                         Xen build do not match",
                        sec.name, sec.size
                    ),
                }));
            }
            let total = (sec.size / size) as usize;
            let mut out = SpecialOut {
                source: id,
                name: sec.name.to_string(),
                entry_size: size,
                data: Vec::new(),
                relocs: Vec::new(),
                kept: 0,
                total,
            };
            // Not NOBITS, so `read` made `size` the data's length: bounded by the file.
            for i in 0..sec.size / size {
                // `start + size <= sec.size`: no overflow.
                let start = i * size;
                let relocs = sec.relocs_in(start, start + size);
                let Some(first) = relocs.first() else {
                    continue;
                };
                if !belongs_to_payload(p, plan, first) {
                    continue;
                }
                let base = out.data.len() as u64;
                out.data.extend_from_slice(sec.bytes(start, size));
                out.data.resize((base + size) as usize, 0);
                // `relocs_in` gives offsets in `[start, start + size)`.
                for r in relocs {
                    out.relocs.push(Reloc {
                        offset: r.offset - start + base,
                        ..*r
                    });
                }
                out.kept += 1;
            }
            if out.kept > 0 {
                outs.push(out);
            }
        }
        let mut grew = false;
        for out in &outs {
            for r in &out.relocs {
                grew |= inc.follow(plan, out.source, r, resolver)?;
            }
        }
        grew |= inc.close(plan, resolver)?;
        if !grew {
            return Ok(outs);
        }
    }
}

fn belongs_to_payload(p: &Object<'_>, plan: &Plan, r: &Reloc) -> bool {
    let t = p.symbol(r.symbol);
    match t.place {
        Place::Section(s) => {
            // Entries are data: their addends are exact.
            let off = (t.value as i64).wrapping_add(r.addend);
            p.section(s).is_exec() && u64::try_from(off).is_ok_and(|off| plan.covers(s, off))
        }
        _ => false,
    }
}
