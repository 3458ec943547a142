//! `special`: keep the entries of `.bug_frames.N`, `.ex_table`,
//! `.altinstructions` and `.alt_call_sites` (Xen 4.21) that belong to included functions (an entry belongs
//! to the code its first relocation points at), and pull in the code they
//! point to and the strings bug frames name. `.fixup` and
//! `.altinstr_replacement` hold the out-of-line code of every function of
//! the object, init code's too: only the fragments the kept entries reach
//! are copied.

use crate::error::Error;
use crate::include::{Includer, NameResolver, Plan, Role};
use std::collections::HashMap;
use xsplice_target::abi::SpecialSizes;

use crate::model::{Object, Place, Reloc, SectionId};
use crate::read::reloc_target;
use xsplice_target::sections::{self, runs_in_place};
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

/// Per grouped code section (`.fixup`, `.altinstr_replacement`, which
/// hold the out-of-line code of many functions' entries): every offset a
/// relocation anywhere in the object points at, and every symbol's
/// start, sorted. The code between one and the next is one fragment.
pub fn entry_points(p: &Object<'_>, sections: &[SectionId]) -> HashMap<SectionId, Vec<u64>> {
    let mut out: HashMap<SectionId, Vec<u64>> = sections
        .iter()
        .map(|&id| {
            (
                id,
                p.section(id)
                    .symbols
                    .iter()
                    .map(|&s| p.symbol(s).value)
                    .collect(),
            )
        })
        .collect();
    for id in p.section_ids() {
        for r in &p.section(id).relocs {
            let t = p.symbol(r.symbol);
            let Some(list) = t.section().and_then(|ts| out.get_mut(&ts)) else {
                continue;
            };
            if let Ok(off) = u64::try_from(reloc_target(p, id, r)) {
                list.push(off);
            }
        }
    }
    for list in out.values_mut() {
        list.push(0);
        list.sort_unstable();
        list.dedup();
    }
    out
}

/// The fragment of grouped code section `id` holding `off`, plus every
/// fragment its code reaches without a relocation: by falling off its end,
/// or by a branch the assembler resolved within the section. `None` when
/// that cannot be decided (bytes the decoder does not know, an instruction
/// across a fragment boundary, code running off the section's end): the
/// caller then takes the whole section.
pub fn fragments_reached(
    p: &Object<'_>,
    id: SectionId,
    entries: &[u64],
    off: i64,
) -> Option<Vec<(u64, u64)>> {
    let sec = p.section(id);
    let arch = p.arch;
    let size = sec.size;
    let fragment = |at: u64| -> Option<(u64, u64)> {
        if at >= size {
            return None;
        }
        let i = entries.partition_point(|&e| e <= at);
        let start = *entries.get(i.checked_sub(1)?)?;
        let end = entries.get(i).copied().unwrap_or(size).min(size);
        Some((start, end))
    };
    let first = fragment(u64::try_from(off).ok()?)?;
    if !runs_in_place(sec.name) {
        return Some(vec![first]);
    }
    if sec.is_nobits() {
        return None;
    }
    let mut todo = vec![first];
    let mut done: Vec<(u64, u64)> = Vec::new();
    while let Some((start, end)) = todo.pop() {
        if done.contains(&(start, end)) {
            continue;
        }
        done.push((start, end));
        let mut at = start;
        let mut falls_through = true;
        while at < end {
            let code = sec.bytes(at, (end - at).min(arch.max_insn_len()));
            let n = arch.insn_len(code)? as u64;
            if at + n > end {
                return None;
            }
            let insn = sec.bytes(at, n);
            let flow = arch.flow(insn)?;
            falls_through = !flow.ends_block;
            if let Some(width) = flow.rel_width {
                // A relocated displacement goes wherever its symbol is: `include` follows it.
                if sec.relocs_in(at, at + n).is_empty() {
                    let disp = insn.get(insn.len().checked_sub(width)?..)?;
                    let disp = match width {
                        1 => i64::from(disp[0] as i8),
                        _ => i64::from(i32::from_le_bytes(disp.try_into().ok()?)),
                    };
                    let target = (at + n) as i64 + disp;
                    let target = u64::try_from(target).ok()?;
                    if !(start..end).contains(&target) {
                        todo.push(fragment(target)?);
                    }
                }
            }
            at += n;
        }
        if falls_through {
            todo.push(fragment(end)?);
        }
    }
    done.sort_unstable();
    Some(done)
}
