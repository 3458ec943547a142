//! Real-Xen tier: `placement` against where Xen's link really put things.
//! Every function of every object of a built tree is looked up in
//! xen-syms; it must lie between `__init_begin` and `__init_end` exactly
//! when its section is classified init. This is what caught runtime
//! functions named `init_*` in `.text.init_*` being taken for boot code.

use std::path::Path;

use create_diff_object::{placement, XenSyms};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

mod support;

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn init_sections_are_where_the_linker_puts_init_code() {
    let xen = support::real_tree::xen_dir();
    let syms = XenSyms::load(&xen.join("xen-syms")).unwrap();
    let at = |name: &str| syms.lookup(name, None).unwrap().addr;
    let (begin, end) = (at("__init_begin"), at("__init_end"));
    let (mut checked, mut runtime_named_init, mut wrong) = (0usize, Vec::new(), Vec::new());
    for e in walkdir(&xen) {
        let name = e.to_string_lossy();
        if !name.ends_with(".o") || name.ends_with("built_in.o") || name.ends_with("prelink.o") {
            continue;
        }
        let Ok(data) = std::fs::read(&e) else {
            continue;
        };
        let Ok(file) = object::File::parse(&*data) else {
            continue;
        };
        let file_sym = file
            .symbols()
            .find(|s| s.kind() == SymbolKind::File)
            .and_then(|s| s.name().ok().map(str::to_string));
        for s in file.symbols() {
            if s.kind() != SymbolKind::Text || s.size() == 0 {
                continue;
            }
            let Some(sec) = s
                .section_index()
                .and_then(|i| file.section_by_index(i).ok())
            else {
                continue;
            };
            let (Ok(sec_name), Ok(sym_name)) = (sec.name(), s.name()) else {
                continue;
            };
            if placement::is_discarded(sec_name) {
                continue;
            }
            let file = if s.is_global() {
                None
            } else {
                file_sym.as_deref()
            };
            // Objects not linked (probes, boot stubs) and ambiguous names are skipped.
            let Ok(found) = syms.lookup(sym_name, file) else {
                continue;
            };
            checked += 1;
            let linked_init = (begin..end).contains(&found.addr);
            if placement::is_init(sec_name) != linked_init {
                wrong.push(format!(
                    "{}: {sym_name} in {sec_name} at {:#x} ({} the init region)",
                    e.strip_prefix(&xen).unwrap_or(&e).display(),
                    found.addr,
                    if linked_init { "inside" } else { "outside" }
                ));
            }
            if !linked_init && sym_name.starts_with("init") && sec_name.starts_with(".text.init") {
                runtime_named_init.push(sym_name.to_string());
            }
        }
    }
    assert!(checked > 4000, "only {checked} functions checked");
    assert!(
        runtime_named_init.iter().any(|n| n == "init_intel"),
        "{runtime_named_init:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} of {checked} functions misplaced:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(30)].join("\n")
    );
    eprintln!(
        "placement: {checked} functions checked; {} runtime functions in .text.init*",
        runtime_named_init.len()
    );
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}
