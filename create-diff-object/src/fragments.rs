//! `fragments`: where the out-of-line code of grouped code sections
//! (`.fixup`, `.altinstr_replacement`) splits into one fragment per entry,
//! and which fragments an entry's code reaches. Both the includer (which
//! copies only reached fragments) and the special-entry pass (which marks
//! changed entries) ask it, so it sits below both.

use std::collections::HashMap;

use crate::model::{Object, SectionId};
use crate::read::reloc_target;
use xsplice_target::sections::runs_in_place;

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
