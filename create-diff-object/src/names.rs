//! `names`: the name and binding each patched symbol the payload may
//! define carries there, decided before writing so the writer only
//! writes. The policy (`FILE#sym`, the `.new` suffix on a clash) is the
//! target's, `xsplice_target::naming`.

use crate::compare::Comparison;
use crate::emit::FuncEntry;
use crate::model::{Binding, Object, Status, SymKind, SymbolId};
use xsplice_target::naming;
use xsplice_target::xensyms::XenSyms;

/// A symbol as the payload defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadName {
    pub name: String,
    pub binding: Binding,
}

/// Per patched symbol: its payload name, for every symbol the payload
/// may define (named functions, objects and labels that are not
/// unchanged).
#[derive(Debug, Default)]
pub struct Names(Vec<Option<PayloadName>>);

impl Names {
    pub fn get(&self, sid: SymbolId) -> Option<&PayloadName> {
        self.0.get(sid.index()).and_then(Option::as_ref)
    }
}

pub fn decide(p: &Object<'_>, cmp: &Comparison, funcs: &[FuncEntry], xen: &XenSyms) -> Names {
    let names = p
        .symbol_ids()
        .map(|sid| {
            let s = p.symbol(sid);
            if s.name.is_empty()
                || s.is_internal_label()
                || !matches!(s.kind, SymKind::Func | SymKind::Object | SymKind::NoType)
            {
                return None;
            }
            let status = cmp.symbol(sid);
            // Unchanged symbols are referred to in the running Xen; defining a
            // second copy under the same name would clash in its symbol table.
            if status == Status::Same {
                return None;
            }
            // A changed constant copied for changed code stays private.
            let private_copy = s.kind == SymKind::Object && status == Status::Changed;
            let binding = if private_copy {
                Binding::Local
            } else {
                s.binding
            };
            // The loader checks every payload symbol it does not override
            // against Xen's and earlier payloads' names: give locals the name
            // Xen's runtime table would give them (`file#sym`), so a new static
            // cannot clash with a global or another file's static of its name.
            let mut name = match (binding, p.file_name) {
                (Binding::Local, Some(file)) => naming::local_name(file, s.name),
                _ => s.name.to_string(),
            };
            // Only a replacement function may carry a name Xen has (the loader
            // matches it to its function-table entry); anything else that does
            // (a renumbered static, a private copy of a constant) is renamed.
            let replaces = funcs.iter().any(|f| f.new_sym == sid);
            if binding == Binding::Local && !replaces {
                name = naming::unclashed(&name, |n| xen.resolve_runtime_name(n).is_some());
            }
            Some(PayloadName { name, binding })
        })
        .collect();
    Names(names)
}
