//! Fast tier: hostile inputs never panic the differ or the xen-syms reader.
//! Real fixture pairs (changed code with calls, strings, statics, bug
//! frames, exception-table and alternative entries, hooks) are damaged
//! four ways: truncated at every length; overwritten by a fixed-seed PRNG
//! in the ELF header, section headers, symbol table and relocations; given
//! plausible but wrong field values that get past the reader (a symbol
//! moved into another section, a relocation retargeted, a section renamed
//! or retyped); and edited field by field (wrong machine, offsets past the
//! end of the file, indices out of range, ...). Each damaged file is tried
//! as the patched and as the original object, and a damaged fake xen-syms
//! is loaded and used. The result may be Ok or Err but never a panic; every
//! targeted edit must be refused as `Error::Malformed` naming the damaged
//! file and what in it is wrong. `CDO_ROBUSTNESS_SCALE=N` multiplies the
//! random rounds and `CDO_ROBUSTNESS_SEED=N` varies them, for longer hunts.

mod support;

use std::path::Path;

use create_diff_object::mutate::{guarded, hot_ranges, mutate, mutate_fields, put, Rng, Shape};
use create_diff_object::{
    abi, diff_bytes, Abi, AbiChoice, Diff, Error, Options, TargetError, XenSyms,
};
use object::elf;
use object::read::elf::ElfFile64;
use object::{LittleEndian as LE, Object, ObjectSection};
use support::*;

/// Cases the bulk damage runs over: (fixture, unit, patched file).
const CASES: &[(&str, &str, &str)] = &[
    ("bug_frames", "bug_frames", "patched_code.c"),
    ("ex_table", "ex_table", "patched.c"),
    ("alternative", "alternative", "patched.c"),
    ("changed_string", "changed_string", "patched.c"),
    ("static_local", "static_local", "patched.c"),
    ("renumbered_statics", "renumbered_statics", "patched.c"),
    ("private_rodata", "private_rodata", "patched.c"),
    ("hooks", "hooks", "patched.c"),
];

fn options() -> Options {
    Options {
        abi: AbiChoice::Fixed(Abi::LivepatchV2),
        resolve: true,
        // The report pass walks every symbol too.
        debug: true,
        xen_tree: None,
        accept: Vec::new(),
    }
}

/// Multiplies the random rounds: `CDO_ROBUSTNESS_SCALE=50` for a long hunt.
fn scale() -> usize {
    std::env::var("CDO_ROBUSTNESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Varies the fixed seed (`CDO_ROBUSTNESS_SEED=N`); 0 by default.
fn seed() -> u64 {
    std::env::var("CDO_ROBUSTNESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Which side of the diff gets the damaged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Patched,
    Original,
}

struct Pair {
    case: Case,
    orig: Vec<u8>,
    patched: Vec<u8>,
    xen: XenSyms,
}

impl Pair {
    fn new((fixture, unit, patched_file): (&str, &str, &str)) -> Pair {
        let case = build_case_with(fixture, unit, patched_file);
        let orig = std::fs::read(&case.orig).unwrap();
        let patched = std::fs::read(&case.patched).unwrap();
        let xen = case.xen();
        let pair = Pair {
            case,
            orig,
            patched,
            xen,
        };
        // Undamaged, the pair gives a payload: damage is measured against a working diff.
        match pair.diff(Side::Patched, &pair.patched.clone()) {
            Ok(Ok(Diff::Write(..))) => {}
            Ok(Ok(Diff::NoChange(_))) => panic!("{fixture}: no change"),
            Ok(Err(e)) => panic!("{fixture}: {e}"),
            Err(p) => panic!("{fixture}: panicked: {p}"),
        }
        pair
    }

    /// Diff with `bad` in place of one side's bytes, catching panics.
    fn diff(&self, side: Side, bad: &[u8]) -> Result<Result<Diff, Error>, String> {
        let (orig, patched) = match side {
            Side::Patched => (&self.orig[..], bad),
            Side::Original => (bad, &self.patched[..]),
        };
        guarded(|| {
            diff_bytes(
                &self.case.orig,
                orig,
                &self.case.patched,
                patched,
                &self.xen,
                &options(),
            )
        })
    }

    fn bytes(&self, side: Side) -> &[u8] {
        match side {
            Side::Patched => &self.patched,
            Side::Original => &self.orig,
        }
    }
}

/// Fails with every panic seen, each with the input that caused it.
fn assert_no_panics(what: &str, panics: &[String]) {
    assert!(
        panics.is_empty(),
        "{what}: {} panics, first ones:\n{}",
        panics.len(),
        panics
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn truncated_objects_never_panic() {
    for &case in &CASES[..4] {
        let pair = Pair::new(case);
        let mut panics = Vec::new();
        let mut errors = 0;
        for side in [Side::Patched, Side::Original] {
            let data = pair.bytes(side);
            for cut in 0..data.len() {
                match pair.diff(side, &data[..cut]) {
                    Err(p) => panics.push(format!("{side:?} cut at {cut}: {p}")),
                    Ok(Err(Error::Target(TargetError::Malformed { .. }))) => errors += 1,
                    Ok(other) => panics.push(format!(
                        "{side:?} cut at {cut}: not refused as malformed: {:?}",
                        other.map(|_| ())
                    )),
                }
            }
        }
        assert_no_panics(case.0, &panics);
        assert_eq!(errors, pair.orig.len() + pair.patched.len());
    }
}

#[test]
fn overwritten_bytes_never_panic() {
    let mut rng = Rng(0x5eed_1234_abcd_0001 ^ seed());
    let mut panics = Vec::new();
    let mut outcomes = [0usize; 3];
    for &case in CASES {
        let pair = Pair::new(case);
        for side in [Side::Patched, Side::Original] {
            let good = pair.bytes(side);
            let hot = hot_ranges(good);
            let shape = Shape::new(good).expect("fixture has a symbol table");
            let rounds = scale() * if side == Side::Patched { 500 } else { 250 };
            for round in 0..rounds {
                let mut bad = good.to_vec();
                // Half raw bytes, half fields: raw damage rarely gets past `read`.
                if round % 2 == 0 {
                    mutate(&mut rng, &mut bad, &hot);
                } else {
                    mutate_fields(&mut rng, &mut bad, &shape);
                }
                match pair.diff(side, &bad) {
                    Err(p) => {
                        // Keep the input so the panic can be replayed.
                        let keep = std::env::temp_dir()
                            .join(format!("cdo-panic-{}-{side:?}-{round}.o", case.0));
                        let _ = std::fs::write(&keep, &bad);
                        panics.push(format!(
                            "{} {side:?} round {round} ({}): {p}",
                            case.0,
                            keep.display()
                        ));
                    }
                    Ok(Ok(_)) => outcomes[0] += 1,
                    Ok(Err(Error::Target(TargetError::Malformed { .. }))) => outcomes[1] += 1,
                    Ok(Err(_)) => outcomes[2] += 1,
                }
            }
        }
    }
    assert_no_panics("overwritten bytes", &panics);
    // The damage must reach past the first checks, or the test proves little.
    let [ok, malformed, other] = outcomes;
    eprintln!("overwritten bytes: ok {ok}, malformed {malformed}, other errors {other}");
    assert!(
        ok > 100 && malformed > 100,
        "ok {ok}, malformed {malformed}, other errors {other}"
    );
}

/// Offsets of one object's fields, for targeted edits.
struct Fields {
    shnum: usize,
    nsyms: usize,
    strtab_size: u64,
}

/// Found by `support::elf_edit` (headers read directly, not by the differ).
impl Fields {
    fn new(data: &[u8]) -> Fields {
        let symtab = elf_edit::section(data, ".symtab");
        Fields {
            shnum: usize::from(u16::from_le_bytes([data[60], data[61]])),
            nsyms: symtab.size / 24,
            strtab_size: elf_edit::section(data, ".strtab").size as u64,
        }
    }
    /// File offset of field `off` in the header of section `name`.
    fn sh(&self, data: &[u8], name: &str, off: usize) -> usize {
        elf_edit::section(data, name).hdr + off
    }
    /// File offset of field `off` in symbol `name`'s entry.
    fn sym(&self, data: &[u8], name: &str, off: usize) -> usize {
        let (entry, _, _) = elf_edit::symbols(data)
            .into_iter()
            .find(|(_, n, _)| n == name)
            .unwrap_or_else(|| panic!("symbol {name} in the fixture"));
        entry + off
    }
    /// File offset of field `off` of the first entry of relocation section `name`.
    fn rela(&self, data: &[u8], name: &str, off: usize) -> usize {
        elf_edit::section(data, name).offset + off
    }
}

/// Damages a copy of the object, given its field offsets.
type Apply = Box<dyn Fn(&Fields, &mut Vec<u8>)>;

/// One targeted edit: what to damage, and words the message must contain.
struct Edit {
    what: &'static str,
    apply: Apply,
    expect: &'static [&'static str],
    /// Only the patched object's copy is read this way (special tables).
    patched_only: bool,
}

fn edit(
    what: &'static str,
    expect: &'static [&'static str],
    apply: impl Fn(&Fields, &mut Vec<u8>) + 'static,
) -> Edit {
    Edit {
        what,
        apply: Box::new(apply),
        expect,
        patched_only: false,
    }
}

/// Edits of `changed_string` (greet() changed, with a call and a string):
/// each must be refused naming what is wrong.
fn edits() -> Vec<Edit> {
    vec![
        edit("32-bit class", &["64-bit"], |_, d| d[4] = elf::ELFCLASS32),
        edit("big-endian", &["little-endian"], |_, d| {
            d[5] = elf::ELFDATA2MSB
        }),
        edit("e_machine AArch64", &["machine 183", "x86-64"], |_, d| {
            put(d, 18, &elf::EM_AARCH64.to_le_bytes())
        }),
        edit("e_type ET_EXEC", &["ET_REL", "e_type is 2"], |_, d| {
            put(d, 16, &elf::ET_EXEC.to_le_bytes())
        }),
        edit("e_shoff past EOF", &["section table"], |_, d| {
            let past = d.len() as u64 + 0x1000;
            put(d, 40, &past.to_le_bytes())
        }),
        edit("e_shoff near u64::MAX", &["section table"], |_, d| {
            put(d, 40, &(u64::MAX - 8).to_le_bytes())
        }),
        edit("e_shstrndx out of range", &["section table"], |f, d| {
            put(d, 62, &(f.shnum as u16 + 5).to_le_bytes())
        }),
        edit(
            "sh_offset past EOF",
            &[".text.greet", "outside the file"],
            |f, d| {
                let at = f.sh(d, ".text.greet", 24);
                let past = d.len() as u64 + 16;
                put(d, at, &past.to_le_bytes())
            },
        ),
        edit(
            "sh_size past EOF",
            &[".text.greet", "outside the file"],
            |f, d| {
                let at = f.sh(d, ".text.greet", 32);
                put(d, at, &(u64::MAX / 2).to_le_bytes())
            },
        ),
        edit(
            "relocation sh_link to a missing section",
            &[".rela.text.greet", "symbol table link"],
            |f, d| {
                let at = f.sh(d, ".rela.text.greet", 40);
                put(d, at, &(f.shnum as u32 + 7).to_le_bytes())
            },
        ),
        edit(
            "relocation sh_info to a missing section",
            &[".rela.text.greet", "relocated section index"],
            |f, d| {
                let at = f.sh(d, ".rela.text.greet", 44);
                put(d, at, &(f.shnum as u32 + 7).to_le_bytes())
            },
        ),
        edit(
            "symtab sh_link to a missing section",
            &["symbol table"],
            |f, d| {
                let at = f.sh(d, ".symtab", 40);
                put(d, at, &(f.shnum as u32 + 7).to_le_bytes())
            },
        ),
        edit(
            "strtab past EOF",
            &[".strtab", "outside the file"],
            |f, d| {
                let at = f.sh(d, ".strtab", 24);
                let past = d.len() as u64 + 1;
                put(d, at, &past.to_le_bytes())
            },
        ),
        edit(
            "alignment not a power of two",
            &[".text.greet", "power of two"],
            |f, d| {
                let at = f.sh(d, ".text.greet", 48);
                put(d, at, &24u64.to_le_bytes())
            },
        ),
        edit("alignment 2^62", &[".text.greet", "alignment"], |f, d| {
            let at = f.sh(d, ".text.greet", 48);
            put(d, at, &(1u64 << 62).to_le_bytes())
        }),
        edit("alignment 2^63", &[".text.greet", "alignment"], |f, d| {
            let at = f.sh(d, ".text.greet", 48);
            put(d, at, &(1u64 << 63).to_le_bytes())
        }),
        edit(
            "SHT_REL relocations",
            &[".rela.text.greet", "REL"],
            |f, d| {
                let at = f.sh(d, ".rela.text.greet", 4);
                put(d, at, &elf::SHT_REL.to_le_bytes())
            },
        ),
        edit(
            "relocation size not a multiple of 24",
            &[".rela.text.greet", "multiple of 24"],
            |f, d| {
                let at = f.sh(d, ".rela.text.greet", 32);
                put(d, at, &25u64.to_le_bytes())
            },
        ),
        edit(
            "symbol st_shndx out of range",
            &["greet", "section index", "out of range"],
            |f, d| {
                let at = f.sym(d, "greet", 6);
                put(d, at, &(f.shnum as u16 + 3).to_le_bytes())
            },
        ),
        edit(
            "symbol st_shndx reserved",
            &["greet", "reserved section index 0xff10"],
            |f, d| {
                let at = f.sym(d, "greet", 6);
                put(d, at, &0xff10u16.to_le_bytes())
            },
        ),
        edit(
            "symbol st_shndx SHN_XINDEX without SHT_SYMTAB_SHNDX",
            &["greet"],
            |f, d| {
                let at = f.sym(d, "greet", 6);
                put(d, at, &elf::SHN_XINDEX.to_le_bytes())
            },
        ),
        edit(
            "symbol st_name past the string table",
            &["symbol #", "name"],
            |f, d| {
                let at = f.sym(d, "greet", 0);
                put(d, at, &(f.strtab_size as u32 + 100).to_le_bytes())
            },
        ),
        edit(
            "symbol value past its section",
            &["greet", ".text.greet", "past the end"],
            |f, d| {
                let at = f.sym(d, "greet", 8);
                put(d, at, &0x1000u64.to_le_bytes())
            },
        ),
        edit(
            "symbol value + size overflows",
            &["greet", ".text.greet", "past the end"],
            |f, d| {
                let at = f.sym(d, "greet", 16);
                put(d, at, &u64::MAX.to_le_bytes())
            },
        ),
        edit(
            "relocation symbol index out of range",
            &[".rela.text.greet", "symbol table has"],
            |f, d| {
                let at = f.rela(d, ".rela.text.greet", 8);
                let info = ((f.nsyms as u64 + 10) << 32) | u64::from(elf::R_X86_64_PC32);
                put(d, at, &info.to_le_bytes())
            },
        ),
        edit(
            "relocation offset past its section",
            &[".rela.text.greet", ".text.greet", "past the end"],
            |f, d| {
                let at = f.rela(d, ".rela.text.greet", 0);
                put(d, at, &0x10000u64.to_le_bytes())
            },
        ),
        edit(
            "relocation field straddles the section end",
            &[".text.greet", "past the end"],
            |f, d| {
                let size = ElfFile64::<LE>::parse(&**d)
                    .unwrap()
                    .section_by_name(".text.greet")
                    .unwrap()
                    .size();
                let at = f.rela(d, ".rela.text.greet", 0);
                put(d, at, &(size - 2).to_le_bytes())
            },
        ),
        edit(
            "relocation offset near u64::MAX",
            &[".text.greet", "past the end"],
            |f, d| {
                let at = f.rela(d, ".rela.text.greet", 0);
                put(d, at, &(u64::MAX - 1).to_le_bytes())
            },
        ),
    ]
}

fn check_edit(pair: &Pair, e: &Edit, side: Side, failures: &mut Vec<String>) {
    let fields = Fields::new(pair.bytes(side));
    let mut bad = pair.bytes(side).to_vec();
    (e.apply)(&fields, &mut bad);
    // Through the file-level entry point, as the tool runs.
    let dir = pair.case.dir.path();
    let bad_path = dir.join("damaged.o");
    std::fs::write(&bad_path, &bad).unwrap();
    let (orig, patched) = match side {
        Side::Patched => (pair.case.orig.as_path(), bad_path.as_path()),
        Side::Original => (bad_path.as_path(), pair.case.patched.as_path()),
    };
    let out = dir.join("damaged-out.o");
    let _ = std::fs::remove_file(&out);
    let r =
        guarded(|| create_diff_object::diff_objects(orig, patched, &pair.xen, &out, &options()));
    match r {
        Err(p) => failures.push(format!("{} ({side:?}): panicked: {p}", e.what)),
        Ok(Err(err @ Error::Target(TargetError::Malformed { .. }))) => {
            let Error::Target(TargetError::Malformed { path, what }) = &err else {
                unreachable!()
            };
            let msg = err.to_string();
            if path != &bad_path {
                failures.push(format!(
                    "{} ({side:?}): names {}, not the damaged file",
                    e.what,
                    path.display()
                ));
            }
            for word in e.expect {
                if !what.contains(word) {
                    failures.push(format!(
                        "{} ({side:?}): {msg:?} does not say {word:?}",
                        e.what
                    ));
                }
            }
            assert_eq!(err.exit_code(), 1);
            if out.exists() {
                failures.push(format!("{} ({side:?}): output written", e.what));
            }
        }
        Ok(other) => failures.push(format!(
            "{} ({side:?}): expected Malformed, got {:?}",
            e.what,
            other.map(|_| ())
        )),
    }
}

#[test]
fn targeted_damage_is_malformed_and_named() {
    let pair = Pair::new(("changed_string", "changed_string", "patched.c"));
    let mut failures = Vec::new();
    let edits = edits();
    for e in &edits {
        check_edit(&pair, e, Side::Patched, &mut failures);
        if !e.patched_only {
            check_edit(&pair, e, Side::Original, &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Special tables are read entry by entry: a table without contents or of
/// a size that is not a whole number of entries is refused, naming it.
#[test]
fn damaged_special_tables_are_refused() {
    let pair = Pair::new(("ex_table", "ex_table", "patched.c"));
    let mut failures = Vec::new();
    let special = [
        Edit {
            patched_only: true,
            ..edit(
                "special table as SHT_NOBITS",
                &[".ex_table", "without contents"],
                |f, d| {
                    let at = f.sh(d, ".ex_table", 4);
                    put(d, at, &elf::SHT_NOBITS.to_le_bytes())
                },
            )
        },
        Edit {
            patched_only: true,
            ..edit(
                "special table size not a multiple of its entries",
                &[".ex_table", "not a multiple"],
                |f, d| {
                    // Grow the table by 4 bytes (still inside the file):
                    // its relocations still fit, its entries do not.
                    let at = f.sh(d, ".ex_table", 32);
                    let size = u64::from_le_bytes(d[at..at + 8].try_into().unwrap());
                    put(d, at, &(size + 4).to_le_bytes())
                },
            )
        },
    ];
    for e in &special {
        check_edit(&pair, e, Side::Patched, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A relocation type the loader cannot apply (here `R_X86_64_32`, from
/// code built without Xen's flags) is an error naming the section, the
/// type and the target, not a payload the loader would reject.
#[test]
fn relocation_type_the_loader_cannot_apply_is_named() {
    let pair = Pair::new(("changed_string", "changed_string", "patched.c"));
    let fields = Fields::new(&pair.patched);
    let mut bad = pair.patched.clone();
    let at = fields.rela(&bad, ".rela.text.greet", 8);
    let sym = u32::from_le_bytes(bad[at + 4..at + 8].try_into().unwrap());
    let info = (u64::from(sym) << 32) | u64::from(elf::R_X86_64_32);
    put(&mut bad, at, &info.to_le_bytes());
    match pair.diff(Side::Patched, &bad) {
        Ok(Err(e @ Error::Target(TargetError::Unsupported(_)))) => {
            let msg = e.to_string();
            assert!(
                msg.contains("section .text.greet")
                    && msg.contains("relocation type 10")
                    && !msg.contains("against  "),
                "{msg}"
            );
        }
        other => panic!(
            "expected Unsupported, got {:?}",
            other.map(|r| r.map(|_| ()))
        ),
    }
}

/// Harmless oddities are tolerated: the result is the same payload.
#[test]
fn zero_entry_sizes_are_tolerated() {
    let pair = Pair::new(("changed_string", "changed_string", "patched.c"));
    let fields = Fields::new(&pair.patched);
    let mut odd = pair.patched.clone();
    for name in [".symtab", ".rela.text.greet"] {
        let at = fields.sh(&odd, name, 56);
        put(&mut odd, at, &0u64.to_le_bytes());
    }
    let want = match pair.diff(Side::Patched, &pair.patched) {
        Ok(Ok(Diff::Write(bytes, _))) => bytes,
        _ => unreachable!("checked in Pair::new"),
    };
    match pair.diff(Side::Patched, &odd) {
        Ok(Ok(Diff::Write(bytes, _))) => assert_eq!(bytes, want),
        Ok(Ok(Diff::NoChange(_))) => panic!("no change"),
        Ok(Err(e)) => panic!("{e}"),
        Err(p) => panic!("panicked: {p}"),
    }
}

/// A zero-filled section claims any size it likes (it has no bytes in the
/// file): below 4 GiB it is copied into the payload as it is, from there
/// it is refused, naming the section.
#[test]
fn huge_zero_filled_sections() {
    let pair = Pair::new(("new_global_var", "new_global_var", "patched.c"));
    let fields = Fields::new(&pair.patched);
    let mut failures = Vec::new();
    for size in [
        u64::from(u32::MAX),
        1 << 32,
        1 << 48,
        i64::MAX as u64,
        u64::MAX - 7,
        u64::MAX,
    ] {
        let mut bad = pair.patched.clone();
        let at = fields.sh(&bad, ".bss.record_count", 32);
        put(&mut bad, at, &size.to_le_bytes());
        match pair.diff(Side::Patched, &bad) {
            Err(p) => failures.push(format!("size {size:#x}: panicked: {p}")),
            Ok(Ok(Diff::Write(bytes, _))) if size <= u64::from(u32::MAX) => {
                let payload = ElfFile64::<LE>::parse(&*bytes).unwrap();
                let bss = payload.section_by_name(".bss.record_count").unwrap();
                assert_eq!(bss.size(), size);
            }
            Ok(Err(Error::Target(TargetError::Malformed { what, .. })))
                if size > u64::from(u32::MAX)
                    && what.contains(".bss.record_count")
                    && what.contains("4 GiB") => {}
            Ok(other) => failures.push(format!("size {size:#x}: {:?}", other.map(|_| ()))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Overlapping and nested symbols (assembly aliases, or damage) are not
/// an error in themselves: every combination either diffs or is refused,
/// on both sides, without a panic.
#[test]
fn overlapping_symbols_never_panic() {
    let pair = Pair::new(("changed_string", "changed_string", "patched.c"));
    let mut panics = Vec::new();
    for side in [Side::Patched, Side::Original] {
        let good = pair.bytes(side);
        let fields = Fields::new(good);
        let file = ElfFile64::<LE>::parse(good).unwrap();
        let greet = file.section_by_name(".text.greet").unwrap();
        let (shndx, size) = (greet.index().0 as u16, greet.size());
        for value in 0..size {
            for len in [0, 1, 4, size - value] {
                let mut bad = good.to_vec();
                // Move other() into greet()'s section, over part of it.
                let at = fields.sym(good, "other", 0);
                put(&mut bad, at + 6, &shndx.to_le_bytes());
                put(&mut bad, at + 8, &value.to_le_bytes());
                put(&mut bad, at + 16, &len.to_le_bytes());
                if let Err(p) = pair.diff(side, &bad) {
                    panics.push(format!("{side:?} other at {value:#x} size {len}: {p}"));
                }
            }
        }
    }
    assert_no_panics("overlapping symbols", &panics);
}

/// A function whose symbol size reaches past its section's bytes, next to
/// a changed `mov $imm32` (the line-number check reads the immediate):
/// before the range check in `read`, this indexed past the patched bytes.
#[test]
fn symbol_past_its_section_next_to_an_immediate_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let assemble = |name: &str, body: &str| {
        let src = dir.path().join(format!("{name}.s"));
        std::fs::write(
            &src,
            format!(
                ".section .text.f,\"ax\",@progbits\n.globl f\n.type f,@function\nf: {body}\n.size f, 6\n"
            ),
        )
        .unwrap();
        let obj = dir.path().join(format!("{name}.o"));
        let out = std::process::Command::new("cc")
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .output()
            .expect("running cc");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        obj
    };
    // mov $5, %eax; ret — and the same function cut after the opcode and one byte of a changed immediate.
    let orig = assemble("orig", "movl $5, %eax\nret");
    let patched = assemble("patched", ".byte 0xb8, 0x06");
    let xen = Pair::new(("changed_string", "changed_string", "patched.c")).xen;
    let out = dir.path().join("out.o");
    for (a, b, bad) in [(&orig, &patched, &patched), (&patched, &orig, &patched)] {
        let r = guarded(|| create_diff_object::diff_objects(a, b, &xen, &out, &options()));
        match r {
            Ok(Err(Error::Target(TargetError::Malformed { path, what }))) => {
                assert_eq!(&path, bad);
                assert!(
                    what.contains("symbol f")
                        && what.contains(".text.f")
                        && what.contains("past the end"),
                    "{what}"
                );
            }
            Ok(other) => panic!("expected Malformed, got {:?}", other.map(|_| ())),
            Err(p) => panic!("panicked: {p}"),
        }
    }
}

/// Everything the differ asks of a (possibly damaged) xen-syms.
fn use_xen_syms(pair: &Pair, path: &Path) -> Result<(), String> {
    let Ok(xen) = guarded(|| XenSyms::load(path))? else {
        return Ok(());
    };
    guarded(|| {
        let _ = xen.build_id();
        let _ = xen.lookup("greet", None);
        let _ = xen.lookup("helper", Some("changed_string.c"));
        let _ = xen.resolve_runtime_name("changed_string.c#helper");
        let _ = abi::special_sizes(&xen, None);
        let _ = abi::detect(&xen, None);
        let _ = diff_bytes(
            &pair.case.orig,
            &pair.orig,
            &pair.case.patched,
            &pair.patched,
            &xen,
            &options(),
        );
    })
}

#[test]
fn damaged_xen_syms_never_panics() {
    let pair = Pair::new(("ex_table", "ex_table", "patched.c"));
    let good = std::fs::read(&pair.case.xen_syms).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xen-syms");
    let mut panics = Vec::new();
    let step = (good.len() / 300).max(1);
    for cut in (0..good.len()).step_by(step) {
        std::fs::write(&path, &good[..cut]).unwrap();
        if let Err(p) = use_xen_syms(&pair, &path) {
            panics.push(format!("cut at {cut}: {p}"));
        }
    }
    // Damage the headers, symbols and the DWARF the entry sizes come from.
    let file = ElfFile64::<LE>::parse(&*good).unwrap();
    let mut hot = hot_ranges(&good);
    for s in file.sections() {
        let name = s.name().unwrap_or("");
        if name == ".debug_info" || name == ".debug_abbrev" || name == ".debug_str" {
            let (start, len) = s.file_range().unwrap();
            hot.push((start as usize, (start + len) as usize));
        }
    }
    let mut rng = Rng(0x0bad_5eed_0000_0002 ^ seed());
    for round in 0..1500 * scale() {
        let mut bad = good.clone();
        mutate(&mut rng, &mut bad, &hot);
        std::fs::write(&path, &bad).unwrap();
        if let Err(p) = use_xen_syms(&pair, &path) {
            let keep = std::env::temp_dir().join(format!("xen-syms-panic-{round}"));
            let _ = std::fs::write(&keep, &bad);
            panics.push(format!("round {round} ({}): {p}", keep.display()));
        }
    }
    assert_no_panics("damaged xen-syms", &panics);
}
