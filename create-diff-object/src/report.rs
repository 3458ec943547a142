//! `report`: the `--debug` listing, one line per function or object of the
//! patched object: its status, why it changed, and why it was included (or
//! what name it is referred to by in the running Xen).

use crate::compare::Comparison;
use crate::include::Plan;
use crate::model::{Object, Place, Status, SymKind, Twins};

pub fn debug_lines(
    orig: &Object<'_>,
    patched: &Object<'_>,
    twins: &Twins,
    cmp: &Comparison,
    plan: &Plan,
) -> Vec<String> {
    let mut lines = Vec::new();
    for sid in patched.symbol_ids() {
        let s = patched.symbol(sid);
        let Place::Section(sec) = s.place else {
            continue;
        };
        if s.name.is_empty()
            || s.is_internal_label()
            || !matches!(s.kind, SymKind::Func | SymKind::Object)
        {
            continue;
        }
        let status = cmp.symbol(sid);
        let mut line = format!(
            "{} {} [{}]: {status}",
            if s.kind == SymKind::Func {
                "func"
            } else {
                "object"
            },
            s.name,
            patched.section_name(sec)
        );
        if let Some(o) = twins.symbol_twin(sid) {
            let on = orig.symbol(o).name;
            if on != s.name {
                line.push_str(&format!(" (twin {on})"));
            }
        }
        if let Some(why) = cmp.symbol_why.get(sid.index()).cloned().flatten() {
            if status != Status::Same {
                line.push_str(&format!(" ({why})"));
            }
        }
        if let Some(name) = plan.externals.get(&sid) {
            line.push_str(&format!("; referred to as {name}"));
        } else if let Some(why) = plan.symbol_why.get(sid.index()).cloned().flatten() {
            line.push_str(&format!("; included: {why}"));
        } else if plan.is_included(sec) && status != Status::Same {
            line.push_str("; included with its section");
        }
        if plan.pieces_of(sec).contains(&sid) {
            line.push_str(" (copied alone: its section also holds unchanged data)");
        }
        lines.push(line);
    }
    for id in patched.section_ids() {
        if let Some(Some(why)) = plan.sections.get(id.index()) {
            lines.push(format!(
                "section {}: included: {why}",
                patched.section_name(id)
            ));
        }
        let fragments = plan.fragments_of(id);
        if !fragments.is_empty() {
            let ranges: Vec<String> = fragments
                .iter()
                .map(|(a, b)| format!("[{a:#x}, {b:#x})"))
                .collect();
            lines.push(format!(
                "section {}: only the code the included entries reach copied: {}",
                patched.section_name(id),
                ranges.join(", ")
            ));
        }
        let pieces = plan.pieces_of(id);
        if !pieces.is_empty() {
            let names: Vec<&str> = pieces.iter().map(|&s| patched.symbol(s).name).collect();
            lines.push(format!(
                "section {}: only {} copied (it also holds unchanged data)",
                patched.section_name(id),
                names.join(", ")
            ));
        }
    }
    lines
}
