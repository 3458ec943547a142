//! A fake xen-syms linked from small C files: same-named static functions
//! in three files (one renamed to a path, as Xen's
//! `CONFIG_ENFORCE_UNIQUE_SYMBOLS` build does), DWARF for struct sizes, and a
//! build-id.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

pub(crate) const FILE_A: &str = r#"
struct livepatch_expectation { unsigned char enabled:1, len:5, rsv:2; unsigned char data[31]; };
struct livepatch_func { const char *name; void *new_addr; void *old_addr;
    unsigned int new_size, old_size; unsigned char version; unsigned char _pad[39];
    struct livepatch_expectation expect; };
struct livepatch_func lp_probe_var;
static int helper(int x) { return x + 1; }
int a_entry(int x) { return helper(x); }
static int counter;
int *a_counter(void) { return &counter; }
"#;
const FILE_B: &str = r#"
static int helper(int x) { return x * 2; }
int b_entry(int x) { return helper(x); }
void _start(void) {}
"#;
const FILE_C: &str = r#"
static int helper(int x) { return x * 3; }
int c_entry(int x) { return helper(x); }
"#;

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Build the fake xen-syms in `dir`; `debug` selects `-g`.
pub(crate) fn fake_xen_syms(dir: &Path, debug: bool) -> PathBuf {
    let mut objs = Vec::new();
    for (name, text) in [("a", FILE_A), ("b", FILE_B), ("c", FILE_C)] {
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, text).unwrap();
        let obj = dir.join(format!("{name}.o"));
        let mut cc = Command::new("cc");
        cc.args(["-O0", "-fno-pie", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&obj);
        if debug {
            cc.arg("-g");
        }
        run(&mut cc);
        objs.push(obj);
    }
    run(Command::new("objcopy")
        .args(["--redefine-sym", "c.c=common/sub/c.c"])
        .arg(&objs[2]));
    let out = dir.join("xen-syms");
    run(Command::new("cc")
        .args([
            "-nostdlib",
            "-static",
            "-no-pie",
            "-Wl,--build-id=sha1",
            "-o",
        ])
        .arg(&out)
        .args(&objs));
    out
}

#[test]
fn lookups_by_name_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let syms = XenSyms::load(&fake_xen_syms(dir.path(), false)).unwrap();

    let a = syms.lookup("helper", Some("a.c")).unwrap();
    let b = syms.lookup("helper", Some("b.c")).unwrap();
    assert_ne!(a.addr, b.addr);
    assert_eq!(a.kind, SymKind::Func);
    assert!(!a.global);
    assert_eq!(syms.runtime_name(&a), "a.c#helper");

    // Suffix matches both ways: an absolute path and a shorter tail.
    let c = syms
        .lookup("helper", Some("/src/xen/common/sub/c.c"))
        .unwrap();
    assert_eq!(c.file.as_deref(), Some("common/sub/c.c"));
    assert_eq!(syms.lookup("helper", Some("sub/c.c")).unwrap().addr, c.addr);
    // A suffix that does not end at a path boundary does not match.
    assert!(syms.lookup("helper", Some("b/c.c")).is_err());

    // Without a file a local is not a match; the error lists candidates.
    let err = syms.lookup("helper", None).unwrap_err().to_string();
    assert!(
        err.contains("a.c#helper") && err.contains("b.c#helper"),
        "{err}"
    );
    let err = syms.lookup("helper", Some("d.c")).unwrap_err();
    assert!(matches!(err, Error::Lookup { .. }));
    assert!(matches!(
        syms.lookup("nonexistent", None),
        Err(Error::Lookup { .. })
    ));

    let g = syms.lookup("a_entry", None).unwrap();
    assert!(g.global);
    assert_eq!(syms.runtime_name(&g), "a_entry");
    let counter = syms.lookup("counter", Some("a.c")).unwrap();
    assert_eq!(counter.kind, SymKind::Object);

    // Runtime names resolve to the same symbols.
    assert_eq!(
        syms.resolve_runtime_name("b.c#helper").unwrap().addr,
        b.addr
    );
    assert_eq!(
        syms.resolve_runtime_name("common/sub/c.c#helper")
            .unwrap()
            .addr,
        c.addr
    );
    assert_eq!(syms.resolve_runtime_name("a_entry").unwrap().addr, g.addr);
    assert!(syms.resolve_runtime_name("helper").is_none());
}

#[test]
fn build_id_matches_the_note() {
    let dir = tempfile::tempdir().unwrap();
    let path = fake_xen_syms(dir.path(), false);
    let syms = XenSyms::load(&path).unwrap();
    let id = syms.build_id().expect("build-id").to_vec();
    assert_eq!(id.len(), 20);
    assert_eq!(crate::notes::build_id_of_file(&path).unwrap(), id);
    // Cross-check with readelf's own parse of the note.
    let out = Command::new("readelf")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&crate::notes::to_hex(&id)), "{text}");
}

#[test]
fn struct_sizes_from_dwarf() {
    let dir = tempfile::tempdir().unwrap();
    let with = XenSyms::load(&fake_xen_syms(dir.path(), true)).unwrap();
    assert_eq!(with.struct_size("livepatch_func"), Some(104));
    assert_eq!(with.struct_size("livepatch_expectation"), Some(32));
    assert_eq!(with.struct_size("nope"), None);
    assert_eq!(
        crate::abi::detect(&with, None).unwrap(),
        crate::abi::Abi::LivepatchV2
    );

    let dir2 = tempfile::tempdir().unwrap();
    let without = XenSyms::load(&fake_xen_syms(dir2.path(), false)).unwrap();
    assert_eq!(without.struct_size("livepatch_func"), None);
    // No DWARF and no tree: a clear refusal.
    let err = crate::abi::detect(&without, None).unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)), "{err}");
}

#[test]
fn not_an_elf_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk");
    std::fs::write(&p, b"\x7fELF garbage").unwrap();
    assert!(matches!(XenSyms::load(&p), Err(Error::Malformed { .. })));
    assert!(matches!(
        XenSyms::load(&dir.path().join("missing")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn object_file_is_not_xen_syms() {
    let dir = tempfile::tempdir().unwrap();
    fake_xen_syms(dir.path(), false);
    // One of the objects xen-syms was linked from: ELF64 x86-64, but ET_REL.
    let obj = dir.path().join("a.o");
    match XenSyms::load(&obj) {
        Err(Error::Malformed { path, what }) => {
            assert_eq!(path, obj);
            assert!(what.contains("ET_REL"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    // The same file with its machine changed to one no live-patch loader
    // runs on (32-bit Arm) is refused too.
    let mut data = std::fs::read(dir.path().join("xen-syms")).unwrap();
    data[18..20].copy_from_slice(&elf::EM_ARM.to_le_bytes());
    let foreign = dir.path().join("foreign-syms");
    std::fs::write(&foreign, &data).unwrap();
    match XenSyms::load(&foreign) {
        Err(Error::Malformed { path, what }) => {
            assert_eq!(path, foreign);
            assert!(what.contains(&format!("machine {}", elf::EM_ARM)), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    // AArch64 is the other supported machine: read, and its facts chosen.
    data[18..20].copy_from_slice(&elf::EM_AARCH64.to_le_bytes());
    std::fs::write(&foreign, &data).unwrap();
    let syms = XenSyms::load(&foreign).expect("an arm64 xen-syms is read");
    assert_eq!(syms.arch(), crate::Arch::Aarch64);
}

/// The raw-table scan (a fresh load's first lookups) finds, for every
/// name, exactly what the full symbol list and its index hold.
fn assert_scan_matches_list(syms: &XenSyms) -> usize {
    let all = syms.symbols();
    let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for &n in &names {
        let listed: Vec<XenSymbol> = all.iter().filter(|s| s.name == n).cloned().collect();
        assert_eq!(syms.scan(n), listed, "{n}");
        assert_eq!(syms.named(n), listed, "{n}");
        // A name's prefix is another name, not a partial match.
        let prefix = &n[..n.char_indices().last().map_or(0, |(i, _)| i)];
        let listed: Vec<XenSymbol> = all.iter().filter(|s| s.name == prefix).cloned().collect();
        assert_eq!(syms.scan(prefix), listed, "{prefix}");
    }
    assert!(syms.scan("no_such_symbol_anywhere").is_empty());
    names.len()
}

#[test]
fn scan_agrees_with_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = fake_xen_syms(dir.path(), false);
    let syms = XenSyms::load(&path).unwrap();
    assert!(assert_scan_matches_list(&syms) >= 8);
    // Past the scans a lookup uses the index, with the same answers.
    let fresh = XenSyms::load(&path).unwrap();
    let first: Vec<_> = (0..SCANS_BEFORE_INDEX + 2)
        .map(|_| fresh.lookup("helper", Some("b.c")).unwrap())
        .collect();
    assert!(fresh.all.get().is_some(), "the index was never built");
    assert!(first.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<XenSyms>();
}

/// The top of the built Xen tree the real tier runs against.
pub(crate) fn real_tree() -> PathBuf {
    match std::env::var_os("XSPLICE_XEN_TREE") {
        Some(p) => PathBuf::from(p),
        None => panic!("XSPLICE_XEN_TREE is not set: the real-Xen tier needs a built Xen tree"),
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn real_xen_syms() {
    let tree = real_tree();
    let path = tree.join("xen/xen-syms");
    let syms = XenSyms::load(&path).unwrap();

    let local = syms
        .lookup("assign_integer_param", Some("common/kernel.c"))
        .unwrap();
    assert_eq!(local.kind, SymKind::Func);
    assert_eq!(
        syms.runtime_name(&local),
        "common/kernel.c#assign_integer_param"
    );
    assert_eq!(
        syms.resolve_runtime_name("common/kernel.c#assign_integer_param")
            .map(|s| s.addr),
        Some(local.addr)
    );
    // An object built elsewhere may record an absolute source path.
    let abs = format!("{}/xen/common/kernel.c", tree.display());
    assert_eq!(
        syms.lookup("assign_integer_param", Some(&abs))
            .unwrap()
            .addr,
        local.addr
    );

    let global = syms.lookup("xen_extra_version", None).unwrap();
    assert!(global.global && global.kind == SymKind::Func);
    assert_eq!(syms.runtime_name(&global), "xen_extra_version");
    // Xen's own map lists runtime names: every entry we check must agree.
    let map = std::fs::read_to_string(tree.join("xen/xen-syms.map")).unwrap();
    let mut checked = 0;
    for line in map.lines() {
        let mut f = line.split_whitespace();
        let (Some(addr), Some(_ty), Some(name)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let addr = u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap();
        let sym = syms
            .resolve_runtime_name(name)
            .unwrap_or_else(|| panic!("{name} from xen-syms.map does not resolve"));
        assert_eq!(sym.addr, addr, "{name}");
        checked += 1;
    }
    assert!(checked > 5000, "only {checked} map entries");

    assert!(assert_scan_matches_list(&XenSyms::load(&path).unwrap()) > 5000);

    let id = syms.build_id().unwrap();
    let out = Command::new("readelf")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("Build ID: {}", crate::notes::to_hex(id))),
        "{text}"
    );
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn real_abi_and_special_sizes() {
    let tree = real_tree();
    let syms = XenSyms::load(&tree.join("xen/xen-syms")).unwrap();
    let want = crate::abi::SpecialSizes {
        bug_frame: 8,
        ex_table: 8,
        alt_instr: 14,
        alt_call: 4,
    };
    // From the headers and the probe (4.17 defconfig has no DWARF, so the
    // xen-syms based calls below take this path too).
    assert_eq!(
        crate::abi::detect_from_tree(&tree).unwrap(),
        crate::abi::Abi::LivepatchV2
    );
    assert_eq!(crate::abi::probe::special_sizes(&tree).unwrap(), want);
    assert_eq!(
        crate::abi::detect(&syms, None).unwrap(),
        crate::abi::Abi::LivepatchV2
    );
    assert_eq!(crate::abi::special_sizes(&syms, None).unwrap(), want);
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_ARM64_420 (ci/test sets it)"]
fn real_arm64_special_sizes() {
    // Xen 4.20 for arm64: `struct bug_frame` 16 bytes, `struct alt_instr`
    // 12 (xen/arch/arm/include/asm/{bug,alternative}.h), no `.ex_table`.
    // Its defconfig has no DWARF, so both calls take the probe, which must
    // not ask an Arm tree for the exception-table struct it lacks.
    let tree = match std::env::var_os("XSPLICE_XEN_TREE_ARM64_420") {
        Some(p) => PathBuf::from(p),
        None => {
            panic!("XSPLICE_XEN_TREE_ARM64_420 is not set: the real-Xen tier needs the arm64 tree")
        }
    };
    let syms = XenSyms::load(&tree.join("xen/xen-syms")).unwrap();
    assert_eq!(syms.arch(), crate::Arch::Aarch64);
    let want = crate::abi::SpecialSizes {
        bug_frame: 16,
        ex_table: 0,
        alt_instr: 12,
        alt_call: 4,
    };
    assert_eq!(crate::abi::probe::special_sizes(&tree).unwrap(), want);
    assert_eq!(crate::abi::special_sizes(&syms, None).unwrap(), want);
}
