//! `emit`: the function table. One entry per changed function, in the
//! entry format of the chosen ABI (`FuncEntryFormat`); `old_size` (and with `--resolve` `old_addr`)
//! come from xen-syms, looked up by name and, for locals, by source file.

use crate::error::{Error, Refusal, RefusalKind};
use crate::include::Plan;
use crate::model::{Object, SymbolId};
use xsplice_target::abi::FuncEntryFormat;
use xsplice_target::xensyms::XenSyms;

/// One function-table entry.
#[derive(Debug, Clone)]
pub struct FuncEntry {
    /// The replacement function in the patched object.
    pub new_sym: SymbolId,
    /// The loader's name for the function replaced (`sym` or `file#sym`).
    pub name: String,
    pub old_addr: u64,
    pub old_size: u64,
    pub new_size: u64,
}

/// Build the entries; functions too small for the jump become refusals.
pub fn func_entries(
    orig: &Object<'_>,
    patched: &Object<'_>,
    plan: &mut Plan,
    xen: &XenSyms,
) -> Result<Vec<FuncEntry>, Error> {
    let mut entries = Vec::with_capacity(plan.changed.len());
    for c in &plan.changed {
        let o = orig.symbol(c.orig);
        let p = patched.symbol(c.patched);
        let file = if o.is_local() { orig.file_name } else { None };
        let xs = xen.lookup(o.name, file)?;
        if xs.size != o.size && o.size != 0 {
            return Err(Error::from(xsplice_target::Error::Lookup {
                symbol: o.name.to_string(),
                file: file.map(str::to_string),
                what: format!(
                    "is {} bytes in xen-syms but {} in {}: xen-syms was not built from these objects",
                    xs.size,
                    o.size,
                    orig.path.display()
                ),
            }));
        }
        // The loader skips a leading landing pad (x86's endbr64) before
        // writing its instruction.
        let arch = orig.arch;
        let head = o
            .section()
            .map_or(&[][..], |s| orig.section(s).bytes(o.value, 4));
        let pad = arch.landing_pad_size(head);
        let needed = arch.patch_site_size(head);
        let (insn, insn_size) = (arch.patch_insn_name(), arch.patch_insn_size());
        if xs.size < needed {
            let reason = if pad != 0 {
                format!(
                    "function is {} bytes, smaller than its {} and the {insn_size}-byte \
                     {insn} the loader writes after it ({needed} bytes)",
                    xs.size,
                    arch.landing_pad_name(),
                )
            } else {
                format!(
                    "function is {} bytes, smaller than the {insn_size}-byte {insn} that redirects it",
                    xs.size
                )
            };
            plan.refusals.push(Refusal {
                kind: RefusalKind::FunctionTooSmall,
                symbol: o.name.to_string(),
                section: patched
                    .symbol(c.patched)
                    .section()
                    .map(|s| patched.section_name(s).to_string())
                    .unwrap_or_default(),
                reason,
                hint:
                    "change its callers instead, or make it larger (e.g. noinline with more work)"
                        .into(),
            });
            continue;
        }
        entries.push(FuncEntry {
            new_sym: c.patched,
            name: xen.runtime_name(&xs),
            old_addr: xs.addr,
            old_size: xs.size,
            new_size: p.size,
        });
    }
    Ok(entries)
}

/// The table's bytes (relocated fields left 0) and the string pool of names.
pub struct Table {
    pub data: Vec<u8>,
    pub strings: Vec<u8>,
    /// Per entry: offset of its name in `strings`.
    pub name_offsets: Vec<u64>,
}

pub fn build_table(
    entries: &[FuncEntry],
    format: &FuncEntryFormat,
    resolve: bool,
) -> Result<Table, Error> {
    let mut data = vec![0u8; entries.len() * format.entry_size as usize];
    let mut strings = Vec::new();
    let mut name_offsets = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let base = i as u64 * format.entry_size;
        let too_big = |what: &str, v: u64| {
            Error::from(xsplice_target::Error::Unsupported(format!(
                "{}: {what} {v:#x} does not fit the 32-bit field",
                e.name
            )))
        };
        let new_size = u32::try_from(e.new_size).map_err(|_| too_big("new_size", e.new_size))?;
        let old_size = u32::try_from(e.old_size).map_err(|_| too_big("old_size", e.old_size))?;
        put(
            &mut data,
            base + format.new_size_off,
            &new_size.to_le_bytes(),
        );
        put(
            &mut data,
            base + format.old_size_off,
            &old_size.to_le_bytes(),
        );
        put(&mut data, base + format.version_off, &[format.version]);
        if resolve {
            put(
                &mut data,
                base + format.old_addr_off,
                &e.old_addr.to_le_bytes(),
            );
        }
        name_offsets.push(strings.len() as u64);
        strings.extend_from_slice(e.name.as_bytes());
        strings.push(0);
    }
    Ok(Table {
        data,
        strings,
        name_offsets,
    })
}

fn put(buf: &mut [u8], off: u64, bytes: &[u8]) {
    let off = off as usize;
    if let Some(dst) = buf.get_mut(off..off + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}
