//! Fast tier: each test compiles one fixture pair from tests/cdo/ with
//! Xen's x86 flags, links a fake xen-syms from the original objects, runs
//! the differ and asserts on the payload ELF it writes (sections, function
//! table entries, relocation targets), never on log text.

mod support;

use create_diff_object::{Abi, AbiChoice, Error, Outcome, TargetError};
use object::elf;
use support::*;

#[test]
fn changed_function_gets_one_entry() {
    let case = build_case("changed_function");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let funcs = p.funcs(".livepatch.funcs", 104);
    let (addr, size) = xen_symbol(&case, "add_limit", None);
    assert_eq!(funcs.len(), 1);
    assert_eq!(funcs[0].name, "add_limit");
    assert_eq!(funcs[0].new_addr_target, "add_limit");
    assert_eq!(u64::from(funcs[0].old_size), size);
    assert_eq!(funcs[0].old_addr, addr, "--resolve fills old_addr");
    assert_eq!(funcs[0].version, 2);
    assert_eq!(report.changed_functions.len(), 1);
    assert!(p.has(".text.add_limit"));
    assert!(!p.has(".text.untouched"), "unchanged code stays out");
    let sym = p.symbol("add_limit").expect("replacement symbol");
    assert_eq!(sym.section.as_deref(), Some(".text.add_limit"));
    // The global it reads is Xen's.
    let rels = p.relocs(".text.add_limit");
    assert!(
        rels.iter()
            .any(|r| r.target == "limit" && r.target_undefined),
        "{rels:?}"
    );
    assert!(!p.has(".data.limit"));
    assert!(p.flags[".livepatch.funcs"] & u64::from(elf::SHF_WRITE) != 0);
}

#[test]
fn unchanged_object_is_no_change() {
    let case = build_case("unchanged");
    let r = no_change(&case);
    assert!(r.init_only_changes.is_empty());
}

#[test]
fn object_against_itself_is_no_change() {
    let case = build_case("changed_function");
    let xen = case.xen();
    let out = create_diff_object::diff_objects(&case.orig, &case.orig, &xen, &case.out, &opts(V2))
        .unwrap();
    assert!(matches!(out, Outcome::NoChange(_)));
}

#[test]
fn new_static_helper_is_included_without_entry() {
    let case = build_case("new_static_helper");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["compute"]);
    assert_eq!(report.new_functions, ["clamp_helper"]);
    let helper = p
        .symbol("new_static_helper.c#clamp_helper")
        .expect("new helper defined in the payload, named as Xen names locals");
    assert!(!helper.global);
    assert_eq!(helper.section.as_deref(), Some(".text.clamp_helper"));
    let rels = p.relocs(".text.compute");
    assert!(
        rels.iter()
            .any(|r| r.target == "new_static_helper.c#clamp_helper" && !r.target_undefined),
        "the call goes to the payload's helper: {rels:?}"
    );
}

#[test]
fn new_global_variables_are_included() {
    let case = build_case("new_global_var");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    for (var, sec) in [
        ("record_count", ".bss.record_count"),
        ("record_step", ".data.record_step"),
    ] {
        let s = p.symbol(var).unwrap_or_else(|| panic!("{var} defined"));
        assert!(s.global, "{var} stays global");
        assert_eq!(s.section.as_deref(), Some(sec));
        assert!(p
            .relocs(".text.record")
            .iter()
            .any(|r| r.target == var && !r.target_undefined));
    }
    assert_eq!(p.sections[".data.record_step"], 3i32.to_le_bytes());
}

#[test]
fn changed_string_literal_changes_the_function() {
    let case = build_case("changed_string");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["greet"]);
    let (pool, data) = p
        .sections
        .iter()
        .find(|(n, _)| n.starts_with(".rodata") && n.contains("str"))
        .expect("string pool included");
    assert!(
        data.windows(7).any(|w| w == b"goodbye"),
        "{pool} holds the new string"
    );
    assert!(p.relocs(".text.greet").iter().any(|r| &r.target == pool));
    assert!(p
        .relocs(".text.greet")
        .iter()
        .any(|r| r.target == "printk" && r.target_undefined));
}

#[test]
fn static_local_is_correlated_and_referred_to_by_original_name() {
    let case = build_case("static_local");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(report.changed_functions.len(), 1);
    assert_eq!(report.changed_functions[0].name, "bump");
    // The original object's name of the static, qualified by its file.
    let orig_data = std::fs::read(&case.orig).unwrap();
    let orig = object::File::parse(&*orig_data).unwrap();
    use object::{Object, ObjectSymbol};
    let calls = orig
        .symbols()
        .find(|s| s.name().unwrap().starts_with("calls."))
        .expect("calls.N in the original")
        .name()
        .unwrap()
        .to_string();
    let want = format!("static_local.c#{calls}");
    let rels = p.relocs(".text.bump");
    assert!(
        rels.iter().any(|r| r.target == want && r.target_undefined),
        "want {want}: {rels:?}"
    );
    // first_seen()'s new static of the same name is new data in the
    // payload, under a name Xen does not have.
    let xen = case.xen();
    let new_calls: Vec<_> = p
        .symbols
        .iter()
        .filter(|s| s.name.contains("calls") && s.section.is_some())
        .collect();
    assert_eq!(new_calls.len(), 1, "{new_calls:?}");
    assert!(xen.resolve_runtime_name(&new_calls[0].name).is_none());
    assert!(p
        .relocs(".text.first_seen")
        .iter()
        .any(|r| r.target == new_calls[0].name && !r.target_undefined));
}

#[test]
fn changed_clones_are_named_by_file() {
    let case = build_case("clone");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let mut names = p.func_names();
    names.sort();
    assert_eq!(names, ["clone.c#scale.constprop.0", "clone.c#weigh.isra.0"]);
    let (_, size) = xen_symbol(&case, "weigh.isra.0", Some("clone.c"));
    let row = p
        .funcs(".livepatch.funcs", 104)
        .into_iter()
        .find(|f| f.name == "clone.c#weigh.isra.0")
        .unwrap();
    assert_eq!(u64::from(row.old_size), size);
}

#[test]
fn bug_frame_line_only_change_is_no_change() {
    let case = build_case("bug_frames");
    no_change(&case);
}

#[test]
fn bug_frame_at_function_end_line_only_is_no_change() {
    // The frame's address is switch_to's end (its out-of-line tail); only
    // its line moved.
    let case = build_case("bug_frame_tail");
    no_change(&case);
}

#[test]
fn bug_frame_at_function_end_travels_with_its_function() {
    let case = build_case_with("bug_frame_tail", "bug_frame_tail", "patched_code.c");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["switch_to"]);
    assert_eq!(
        p.sections[".bug_frames.2"].len(),
        8,
        "the one frame is kept"
    );
    let rels = p.relocs(".bug_frames.2");
    assert!(
        rels[0].target == ".text.switch_to" || rels[0].target == "switch_to",
        "the frame points at the payload's switch_to: {rels:?}"
    );
    let size = p.sections[".text.switch_to"].len() as i64;
    assert_eq!(
        rels[0].addend & 0xff_ffff,
        size - 2,
        "at the tail's ud2, the last instruction of the section"
    );
}

#[test]
fn bug_frames_of_changed_function_are_kept() {
    let case = build_case_with("bug_frames", "bug_frames", "patched_code.c");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["checked"]);
    // checked() has one BUG and one WARN frame; asserted()'s frame is dropped.
    assert_eq!(p.sections[".bug_frames.2"].len(), 8);
    assert_eq!(p.sections[".bug_frames.1"].len(), 8);
    assert!(
        !p.has(".bug_frames.3"),
        "the unchanged function's assertion frame is not kept"
    );
    for sec in [".bug_frames.1", ".bug_frames.2"] {
        let rels = p.relocs(sec);
        assert_eq!(rels.len(), 2, "{sec}: {rels:?}");
        assert_eq!(rels[0].offset, 0);
        assert!(
            rels[0].target == ".text.checked" || rels[0].target == "checked",
            "{sec} points at the payload's checked(): {rels:?}"
        );
        assert!(!rels[0].target_undefined);
        // The line rides in the addend's top bits.
        assert!(rels[0].addend >> 24 != 0 || rels[1].addend >> 24 != 0);
    }
}

#[test]
fn ex_table_entry_of_changed_function_is_kept() {
    let case = build_case("ex_table");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.sections[".ex_table"].len(), 8, "one entry of 8 bytes");
    let rels = p.relocs(".ex_table");
    assert_eq!(rels.len(), 2, "{rels:?}");
    // addr: the payload's safe_read; cont: its fixup code.
    assert!(
        rels[0].target == ".text.safe_read" || rels[0].target == "safe_read",
        "{rels:?}"
    );
    assert!(!rels[0].target_undefined);
    assert_eq!(rels[1].target, ".fixup", "{rels:?}");
    // The fixup jumps back into the payload's safe_read, not Xen's.
    let fixup = p.relocs(".fixup");
    assert!(!fixup.is_empty());
    assert!(
        fixup.iter().all(
            |r| (r.target == ".text.safe_read" || r.target == "safe_read") && !r.target_undefined
        ),
        "{fixup:?}"
    );
}

#[test]
fn alternative_entry_of_changed_function_is_kept() {
    let case = build_case("alternative");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(
        p.sections[".altinstructions"].len(),
        14,
        "one 14-byte alt_instr"
    );
    let rels = p.relocs(".altinstructions");
    assert_eq!(rels.len(), 2, "{rels:?}");
    assert!(rels[0].target == ".text.fenced" || rels[0].target == "fenced");
    assert_eq!(rels[1].target, ".altinstr_replacement");
    assert!(p.has(".altinstr_replacement"));
    // cpuid field of the kept entry is the changed function's (123).
    let entry = &p.sections[".altinstructions"];
    assert_eq!(u16::from_le_bytes([entry[8], entry[9]]), 123);
}

/// Xen 4.21 records altcall sites in `.alt_call_sites` (4-byte entries,
/// each PC-relative to a `call *ptr(%rip)`): the changed function's entry
/// travels, the unchanged function's does not.
#[test]
fn alt_call_site_of_changed_function_is_kept() {
    let case = build_case("alt_call");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let names = changed_names(&report);
    assert_eq!(names, ["call_a"]);
    assert_eq!(
        p.sections[".alt_call_sites"].len(),
        4,
        "one 4-byte struct alt_call"
    );
    let rels = p.relocs(".alt_call_sites");
    assert_eq!(rels.len(), 1, "{rels:?}");
    assert!(
        rels[0].target == ".text.call_a" || rels[0].target == "call_a",
        "{rels:?}"
    );
}

#[test]
fn hooks_and_their_functions_are_included() {
    let case = build_case("hooks");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert!(!p.has(".livepatch.funcs"), "nothing changed, only hooks");
    assert!(report.changed_functions.is_empty());
    for (sec, func) in [
        (".livepatch.hooks.load", "on_load"),
        (".livepatch.hooks.apply", "on_apply"),
        (".livepatch.hooks.revert", "on_revert"),
    ] {
        assert_eq!(p.sections[sec].len(), 8, "{sec}");
        let rels = p.relocs(sec);
        assert_eq!(rels.len(), 1);
        assert_eq!(rels[0].r_type, elf::R_X86_64_64);
        assert!(!rels[0].target_undefined, "{sec} points into the payload");
        let local = format!("hooks.c#{func}");
        assert!(
            rels[0].target == local || rels[0].target == format!(".text.{func}"),
            "{rels:?}"
        );
        assert!(p.symbol(&local).is_some(), "{func} is in the payload");
    }
}

#[test]
fn changed_initialiser_is_refused() {
    let case = build_case("changed_initialiser");
    match case.diff(&opts(V2)) {
        Err(Error::NotPatchable { refusals, .. }) => {
            assert!(
                refusals
                    .iter()
                    .any(|r| r.symbol == "threshold" && r.section == ".data.threshold"),
                "{refusals:?}"
            );
            assert!(refusals.iter().all(|r| !r.hint.is_empty()));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!case.out.exists());
}

#[test]
fn init_only_change_is_no_change_and_says_so() {
    let case = build_case("init_only");
    let r = no_change(&case);
    assert_eq!(r.init_only_changes, ["setup_thing"]);
    // Nothing the payload would hold depends on it: a warning, not a refusal.
    assert_eq!(r.boot.changes.len(), 1, "{:?}", r.boot);
    assert_eq!(r.boot.changes[0].symbol, "setup_thing");
    assert!(r.warnings.iter().any(
        |w| w.kind == create_diff_object::WarningKind::BootTimeChange
            && w.symbols == ["setup_thing"]
    ));
}

#[test]
fn static_of_same_name_is_looked_up_by_file() {
    let case = build_case_with("same_static", "b", "patched.c");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let funcs = p.funcs(".livepatch.funcs", 104);
    assert_eq!(funcs.len(), 1);
    assert_eq!(funcs[0].name, "b.c#helper");
    let (addr, size) = xen_symbol(&case, "helper", Some("b.c"));
    let (other_addr, _) = xen_symbol(&case, "helper", Some("a.c"));
    assert_ne!(addr, other_addr);
    assert_eq!(funcs[0].old_addr, addr);
    assert_eq!(u64::from(funcs[0].old_size), size);
}

#[test]
fn assembly_section_with_several_functions() {
    let case = build_case("asm_multi");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["pair_two"]);
    let two = p.symbol("pair_two").unwrap();
    assert_eq!(two.section.as_deref(), Some(".text.pair"));
    assert_ne!(two.value, 0, "keeps its offset in the section");
    assert!(
        p.symbol("pair_one").is_none(),
        "the unchanged neighbour is not redefined"
    );
}

#[test]
fn xsplice_and_livepatch_v2_layouts() {
    let case = build_case("changed_function");
    let xs = case.diff(&opts(AbiChoice::Fixed(Abi::Xsplice))).unwrap();
    assert!(matches!(xs, Outcome::Written(_)));
    let p = case.payload();
    assert!(p.has(".xsplice.funcs") && !p.has(".livepatch.funcs"));
    let rows = p.funcs(".xsplice.funcs", 64);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].version, 1);
    assert_eq!(rows[0].name, "add_limit");
    ld_accepts(&case.out);

    case.diff(&opts(V2)).unwrap();
    let p = case.payload();
    assert!(p.has(".livepatch.funcs") && !p.has(".xsplice.funcs"));
    let rows = p.funcs(".livepatch.funcs", 104);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].version, 2);
}

#[test]
fn without_resolve_old_addr_is_zero() {
    let case = build_case("changed_function");
    let mut o = opts(V2);
    o.resolve = false;
    case.diff(&o).unwrap();
    let rows = case.payload().funcs(".livepatch.funcs", 104);
    assert_eq!(rows[0].old_addr, 0);
    assert_ne!(rows[0].old_size, 0);
}

#[test]
fn corrupt_inputs_are_errors() {
    let case = build_case("changed_function");
    let data = std::fs::read(&case.orig).unwrap();
    let xen = case.xen();
    let dir = case.dir.path();
    // Truncated at several points: never a panic, always Malformed.
    for cut in [0, 10, 63, 64, 200, data.len() / 2, data.len() - 1] {
        let bad = dir.join(format!("trunc{cut}.o"));
        std::fs::write(&bad, &data[..cut]).unwrap();
        let r = create_diff_object::diff_objects(&bad, &case.patched, &xen, &case.out, &opts(V2));
        match r {
            Err(e @ Error::Target(TargetError::Malformed { .. })) => assert_eq!(e.exit_code(), 1),
            other => panic!("cut at {cut}: expected Malformed, got {other:?}"),
        }
    }
    // Wrong machine (AArch64).
    let mut arm = data.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes());
    let bad = dir.join("arm.o");
    std::fs::write(&bad, &arm).unwrap();
    let r = create_diff_object::diff_objects(&case.orig, &bad, &xen, &case.out, &opts(V2));
    assert!(
        matches!(r, Err(Error::Target(TargetError::Malformed { .. }))),
        "{r:?}"
    );
    // An executable is not ET_REL.
    let r =
        create_diff_object::diff_objects(&case.xen_syms, &case.patched, &xen, &case.out, &opts(V2));
    assert!(
        matches!(r, Err(Error::Target(TargetError::Malformed { .. }))),
        "{r:?}"
    );
}

#[test]
fn line_immediates_next_to_file_name_are_ignored() {
    let case = build_case("line_immediate");
    no_change(&case);
}

#[test]
fn other_immediates_are_changes() {
    let case = build_case_with("line_immediate", "line_immediate", "patched_const.c");
    written(&case);
    assert_eq!(case.payload().func_names(), ["plain"]);
}

#[test]
fn changed_global_rodata_is_refused() {
    let case = build_case("changed_rodata");
    let r = refusals(&case);
    assert!(
        r.iter()
            .any(|r| r.symbol == "weights" && r.section == ".rodata.weights"),
        "{r:?}"
    );
}

#[test]
fn changed_rodata_used_only_by_changed_code_is_copied() {
    let case = build_case("private_rodata");
    written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    // Xen has private_rodata.c#primes: the copy must not take its name.
    let primes = p
        .symbol("private_rodata.c#primes.new")
        .expect("private copy");
    assert!(!primes.global);
    assert_eq!(primes.section.as_deref(), Some(".rodata.primes"));
    assert_eq!(&p.sections[".rodata.primes"][28..32], &23i32.to_le_bytes());
    let mut names = p.func_names();
    names.sort();
    assert_eq!(names, ["nth_prime", "prime_sum"]);
    for f in [".text.nth_prime", ".text.prime_sum"] {
        assert!(
            p.relocs(f)
                .iter()
                .any(|r| r.target == "private_rodata.c#primes.new" && !r.target_undefined),
            "{f}"
        );
    }
}

/// A file-local constant table grows (a microcode-style digest table gains
/// an entry) and only replaced functions read it: refused as
/// `data_size_changed` before; now the payload carries the grown table as a
/// new object under a name the running Xen does not have, its readers refer
/// to that copy (never to the running Xen's table), and a
/// `read_only_data_grown` warning names the table, its readers and the rule.
#[test]
fn grown_local_rodata_read_only_by_replaced_functions_is_carried_as_a_new_object() {
    use create_diff_object::WarningKind;
    let case = build_case("grown_rodata");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    let mut names = p.func_names();
    names.sort();
    // digest_id_at's source is unchanged: it reads the table, so it moves
    // to the payload's copy with the others.
    assert_eq!(names, ["digest_id_at", "digest_known", "digest_of"]);
    // The fake xen-syms has grown_rodata.c#digests (the old, 32-byte table).
    let (_, old_size) = xen_symbol(&case, "digests", Some("grown_rodata.c"));
    assert_eq!(old_size, 32);
    let copy = p
        .symbol("grown_rodata.c#digests.new")
        .expect("the new table");
    assert!(!copy.global);
    assert_eq!(copy.section.as_deref(), Some(".rodata.digests"));
    let table = &p.sections[".rodata.digests"];
    assert_eq!(table.len(), 48, "three 16-byte entries");
    assert_eq!(
        &table[32..36],
        &0x0a50_0011u32.to_le_bytes(),
        "the new entry"
    );
    assert!(
        p.symbol("grown_rodata.c#digests").is_none(),
        "nothing may bind to the running Xen's table"
    );
    for f in [".text.digest_of", ".text.digest_id_at"] {
        assert!(
            p.relocs(f)
                .iter()
                .any(|r| r.target == "grown_rodata.c#digests.new" && !r.target_undefined),
            "{f}: {:?}",
            p.relocs(f)
        );
    }
    for (sec, relocs) in &p.relocs {
        assert!(
            !relocs
                .iter()
                .any(|r| r.target.contains("digests") && r.target_undefined),
            "{sec} refers to the running Xen's table"
        );
    }
    let w: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::ReadOnlyDataGrown)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", report.warnings);
    assert_eq!(w[0].kind.as_str(), "read_only_data_grown");
    assert_eq!(
        w[0].symbols,
        ["grown_rodata.c#digests", "digest_id_at", "digest_of"],
        "the table, then the payload functions that read it"
    );
    assert!(
        w[0].message.contains("from 32 to 48 bytes"),
        "{}",
        w[0].message
    );
    assert!(w[0]
        .rule
        .as_deref()
        .is_some_and(|r| r.contains("file-local read-only")));
    assert_eq!(
        report.object_warnings,
        w.into_iter().cloned().collect::<Vec<_>>()
    );
}

/// Grown or changed constants whose old copy something the payload leaves
/// in place still uses: an unchanged function, a writable pointer, code in
/// other objects (a global). Each is refused, naming the user.
#[test]
fn grown_rodata_with_a_user_left_behind_is_refused() {
    use create_diff_object::RefusalKind;
    let case = build_case("refuse_grown_rodata");
    let r = refusals(&case);
    let find = |sym: &str| {
        r.iter()
            .find(|r| r.symbol == sym)
            .unwrap_or_else(|| panic!("no refusal of {sym}: {r:?}"))
    };
    let a = find("tbl_a");
    assert_eq!(a.kind, RefusalKind::DataSizeChanged);
    assert_eq!(a.section, ".rodata.tbl_a");
    assert!(
        a.reason.contains("tbl_a_index") && a.reason.contains("from 12 to 16"),
        "{a}"
    );
    let b = find("tbl_b");
    assert_eq!(b.kind, RefusalKind::DataSizeChanged);
    assert!(b.reason.contains("tbl_b_cursor"), "{b}");
    let c = find("tbl_c");
    assert_eq!(c.kind, RefusalKind::DataSizeChanged);
    assert!(c.reason.contains("global"), "{c}");
    // Same size, so built before as a private copy while tbl_d_cursor kept
    // pointing at the old contents.
    let d = find("tbl_d");
    assert_eq!(d.kind, RefusalKind::ReadOnlyDataInUse);
    assert!(d.reason.contains("tbl_d_cursor"), "{d}");
    assert_eq!(r.len(), 4, "{r:?}");
}

#[test]
fn function_smaller_than_a_jump_is_refused() {
    let case = build_case("tiny_function");
    let r = refusals(&case);
    assert!(
        r.iter()
            .any(|r| r.symbol == "tiny" && r.section == ".text.tiny"),
        "{r:?}"
    );
}

#[test]
fn ibt_function_needs_room_for_endbr64_and_the_jump() {
    // Xen 4.17's loader writes the jump after a leading endbr64.
    let case = build_case("tiny_ibt_function");
    let r = refusals(&case);
    let tiny: Vec<_> = r.iter().filter(|r| r.symbol == "tiny_ibt").collect();
    assert_eq!(tiny.len(), 1, "{r:?}");
    assert_eq!(tiny[0].section, ".text.tiny_ibt");
    assert!(
        tiny[0].reason.contains("endbr64") && tiny[0].reason.contains("9 bytes"),
        "{}",
        tiny[0].reason
    );
    // 10 bytes hold endbr64 + jump: not refused.
    assert!(!r.iter().any(|r| r.symbol == "ibt_ok"), "{r:?}");
}

#[test]
fn unknown_section_type_is_refused() {
    let case = build_case("unknown_section");
    let r = refusals(&case);
    assert!(r.iter().any(|r| r.section == ".weird_table"), "{r:?}");
}

#[test]
fn function_missing_from_xen_syms_is_a_lookup_error() {
    let case = build_case("changed_function");
    let other = build_case("unchanged");
    let xen = other.xen();
    let r = create_diff_object::diff_objects(&case.orig, &case.patched, &xen, &case.out, &opts(V2));
    match r {
        Err(e @ Error::Target(TargetError::Lookup { .. })) => {
            assert_eq!(e.exit_code(), 1);
            assert!(
                matches!(&e, Error::Target(TargetError::Lookup { symbol, .. }) if symbol == "add_limit")
            );
        }
        other => panic!("expected a lookup error, got {other:?}"),
    }
    assert!(!case.out.exists());
}

/// Damaged objects (one byte overwritten, at many places) give errors or
/// results, never a panic.
#[test]
fn damaged_objects_never_panic() {
    let case = build_case("bug_frames");
    let orig = std::fs::read(&case.orig).unwrap();
    let patched = std::fs::read(&case.patched).unwrap();
    let xen = case.xen();
    let step = (patched.len() / 400).max(1);
    for pos in (0..patched.len()).step_by(step) {
        for byte in [0xff, 0x00, 0x41] {
            let mut bad = patched.clone();
            bad[pos] = byte;
            let _ = create_diff_object::diff_bytes(
                &case.orig,
                &orig,
                &case.patched,
                &bad,
                &xen,
                &opts(V2),
            );
        }
    }
}

#[test]
fn renumbered_statics_are_matched_by_their_user() {
    let case = build_case("renumbered_statics");
    let report = written(&case);
    let p = case.payload();
    ld_accepts(&case.out);
    assert_eq!(p.func_names(), ["second"]);
    assert_eq!(report.new_functions, ["zeroth"]);
    assert!(!p.has(".text.first"), "first() is unchanged");
    // No defined symbol but the replacement may carry a name Xen resolves.
    let xen = case.xen();
    for s in &p.symbols {
        if s.section.is_some()
            && !s.name.is_empty()
            && s.name != "second"
            && s.kind != object::SymbolKind::Section
        {
            assert!(
                xen.resolve_runtime_name(&s.name).is_none(),
                "{} would clash with the hypervisor's symbol",
                s.name
            );
        }
    }
    // second() still refers to Xen's own __func__ string of second().
    let rels = p.relocs(".text.second");
    assert!(
        rels.iter()
            .any(|r| r.target.starts_with("renumbered_statics.c#__func__.") && r.target_undefined),
        "{rels:?}"
    );
}

#[test]
fn existing_variable_moving_section_is_refused() {
    let case = build_case("refuse_moved_section");
    let r = refusals(&case);
    let mode = r
        .iter()
        .find(|r| r.symbol == "mode")
        .unwrap_or_else(|| panic!("mode refused: {r:?}"));
    assert_eq!(mode.section, ".data.read_mostly");
    assert_eq!(mode.kind, create_diff_object::RefusalKind::VariableMoved);
    assert!(
        mode.reason.contains(".data.ro_after_init") && mode.reason.contains(".data.read_mostly"),
        "{mode:?}"
    );
    assert!(!mode.hint.is_empty());
    let tbl = r
        .iter()
        .find(|r| r.symbol == "tbl")
        .unwrap_or_else(|| panic!("tbl refused: {r:?}"));
    assert!(
        tbl.reason.contains(".rodata.tbl") && tbl.reason.contains(".data.tbl"),
        "{tbl:?}"
    );
    // Per-symbol sections that keep their kind are not moves.
    assert!(
        r.iter()
            .all(|r| r.symbol != "counter" && r.symbol != "zeroed"),
        "{r:?}"
    );
}

#[test]
fn zero_to_nonzero_initialiser_is_one_refusal_not_a_move() {
    let case = build_case_with(
        "refuse_moved_section",
        "refuse_moved_section",
        "patched_initialised.c",
    );
    let r = refusals(&case);
    let zeroed: Vec<_> = r.iter().filter(|r| r.symbol == "zeroed").collect();
    assert_eq!(zeroed.len(), 1, "{r:?}");
    assert_eq!(zeroed[0].section, ".data.zeroed");
    assert_eq!(
        zeroed[0].kind,
        create_diff_object::RefusalKind::InitialiserChanged
    );
    assert!(zeroed[0].reason.contains("initialiser"), "{zeroed:?}");
    assert!(
        r.iter().all(|r| r.symbol != "mode" && r.symbol != "tbl"),
        "{r:?}"
    );
}
