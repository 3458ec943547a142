//! What create-diff-object's tests share (each test file has `mod support;`;
//! not every file uses every helper, hence `dead_code`): compile a case's
//! original and patched C file with Xen's x86 flags (plus -g), link a small
//! fake xen-syms from the original objects, and read the payload the
//! differ writes. `real_tree` finds and recompiles objects of a built Xen
//! tree for the real-Xen tier (and the benchmark).
#![allow(dead_code)]

pub mod arm64;
pub mod elf_edit;
pub mod funcs;
pub mod real_tree;

pub use funcs::FuncRow;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::{AbiChoice, Error, Options, Outcome, Refusal, XenSyms};
use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

/// The code-generation flags Xen 4.17 passes for x86 (from a `.o.cmd` of
/// the tree), minus warnings and include paths, plus -g for DWARF.
pub const XEN_CFLAGS: &[&str] = &[
    "-m64",
    "-O2",
    "-g",
    "-fno-strict-aliasing",
    "-std=gnu99",
    "-fomit-frame-pointer",
    "-nostdinc",
    "-fno-builtin",
    "-fno-common",
    "-ffunction-sections",
    "-fdata-sections",
    "-mindirect-branch=thunk-extern",
    "-mindirect-branch-register",
    "-fno-jump-tables",
    "-mfunction-return=thunk-extern",
    "-msoft-float",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-exceptions",
    "-fno-asynchronous-unwind-tables",
    "-mno-red-zone",
    "-fpic",
    "-mno-mmx",
    "-mno-sse",
    "-mskip-rax-setup",
    "-fcf-protection=branch",
    "-mmanual-endbr",
    "-mpreferred-stack-boundary=3",
];

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cdo")
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Compile `src` (a file name relative to `dir`, so `STT_FILE` is that name) to `dir/<stem>.o`.
pub fn compile(dir: &Path, src: &str) -> PathBuf {
    compile_with(dir, src, &[])
}

/// `compile` with extra flags after Xen's (the layout check's debug flags).
pub fn compile_with(dir: &Path, src: &str, extra: &[&str]) -> PathBuf {
    let include = fixtures_dir().join("include");
    let obj = dir.join(Path::new(src).with_extension("o"));
    let out = Command::new(cc())
        .current_dir(dir)
        .args(XEN_CFLAGS)
        .args(extra)
        .arg("-I")
        .arg(&include)
        .args(["-include", "xen_fixture.h", "-c", src, "-o"])
        .arg(&obj)
        .output()
        .expect("running the C compiler");
    assert!(
        out.status.success(),
        "compiling {src} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

/// A compiled case: original and patched objects of one unit, and a fake
/// xen-syms linked from the original objects.
pub struct Case {
    pub dir: tempfile::TempDir,
    pub orig: PathBuf,
    pub patched: PathBuf,
    pub xen_syms: PathBuf,
    pub out: PathBuf,
}

/// Build fixture `case`: `orig.c` and `patched_file` become `<unit>.c`;
/// every other `.c` in the fixture directory is linked into xen-syms.
pub fn build_case_with(case: &str, unit: &str, patched_file: &str) -> Case {
    let src = fixtures_dir().join(case);
    let dir = tempfile::tempdir().expect("tempdir");
    let orig_dir = dir.path().join("orig");
    let patched_dir = dir.path().join("patched");
    let other_dir = dir.path().join("other");
    for d in [&orig_dir, &patched_dir, &other_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    let unit_c = format!("{unit}.c");
    std::fs::copy(src.join("orig.c"), orig_dir.join(&unit_c)).expect("fixture orig.c");
    std::fs::copy(src.join(patched_file), patched_dir.join(&unit_c)).expect("fixture patched file");
    let orig = compile(&orig_dir, &unit_c);
    let patched = compile(&patched_dir, &unit_c);
    let mut link = vec![orig.clone()];
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".c") && !name.starts_with("orig") && !name.starts_with("patched") {
            std::fs::copy(src.join(&name), other_dir.join(&name)).unwrap();
            link.push(compile(&other_dir, &name));
        }
    }
    std::fs::copy(
        fixtures_dir().join("include/fixture_base.c"),
        other_dir.join("fixture_base.c"),
    )
    .unwrap();
    link.push(compile(&other_dir, "fixture_base.c"));
    let xen_syms = dir.path().join("xen-syms");
    let out = Command::new("ld")
        .args([
            "--build-id=sha1",
            "-e",
            "_start",
            "-Ttext=0xffff82d040200000",
            "-o",
        ])
        .arg(&xen_syms)
        .args(&link)
        .output()
        .expect("running ld");
    assert!(
        out.status.success(),
        "linking xen-syms failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dir.path().join("out.o");
    Case {
        dir,
        orig,
        patched,
        xen_syms,
        out,
    }
}

pub fn build_case(case: &str) -> Case {
    build_case_with(case, case, "patched.c")
}

/// The version-2 function table (Xen 4.17 and later), which most cases use.
pub const V2: AbiChoice = AbiChoice::Fixed(create_diff_object::Abi::LivepatchV2);

/// The differ's report for a case that must give a payload (version 2).
pub fn written(case: &Case) -> create_diff_object::DiffReport {
    match case.diff(&opts(V2)) {
        Ok(Outcome::Written(r)) => r,
        Ok(Outcome::NoChange(r)) => panic!("expected a payload, got no change: {r:?}"),
        Err(e) => panic!("expected a payload, got error: {e}"),
    }
}

/// The names of the functions a report says changed, in its order.
pub fn changed_names(r: &create_diff_object::DiffReport) -> Vec<&str> {
    r.changed_functions
        .iter()
        .map(|f| f.name.as_str())
        .collect()
}

/// The report for a case with no functional change: nothing is written.
pub fn no_change(case: &Case) -> create_diff_object::DiffReport {
    match case.diff(&opts(V2)) {
        Ok(Outcome::NoChange(r)) => {
            assert!(!case.out.exists(), "no output may be written on no change");
            r
        }
        Ok(Outcome::Written(r)) => panic!("expected no change, got a payload: {r:?}"),
        Err(e) => panic!("expected no change, got error: {e}"),
    }
}

/// The refusals for a case the differ must refuse: exit code 2, nothing written.
pub fn refusals(case: &Case) -> Vec<Refusal> {
    match case.diff(&opts(V2)) {
        Err(e @ Error::NotPatchable { .. }) => {
            assert_eq!(e.exit_code(), 2);
            assert!(!case.out.exists(), "nothing is written on a refusal");
            match e {
                Error::NotPatchable { refusals, .. } => refusals,
                _ => unreachable!(),
            }
        }
        Ok(o) => panic!("expected a refusal, got {o:?}"),
        Err(e) => panic!("expected a refusal, got error: {e}"),
    }
}

pub fn opts(abi: AbiChoice) -> Options {
    Options {
        abi,
        resolve: true,
        debug: true,
        xen_tree: None,
        accept: Vec::new(),
    }
}

impl Case {
    /// The command line's four paths: ORIG PATCHED XEN_SYMS OUT.
    pub fn args(&self) -> [&Path; 4] {
        [&self.orig, &self.patched, &self.xen_syms, &self.out]
    }
    pub fn xen(&self) -> XenSyms {
        XenSyms::load(&self.xen_syms).expect("loading fake xen-syms")
    }
    pub fn diff(
        &self,
        opts: &Options,
    ) -> Result<create_diff_object::Outcome, create_diff_object::Error> {
        create_diff_object::diff_objects(&self.orig, &self.patched, &self.xen(), &self.out, opts)
    }
    pub fn payload(&self) -> Payload {
        Payload::read(&self.out)
    }
}

/// One relocation of the payload, with its target named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rel {
    pub offset: u64,
    pub r_type: u32,
    /// Symbol name, or the section name for section symbols.
    pub target: String,
    pub addend: i64,
    pub target_undefined: bool,
}

#[derive(Debug, Clone)]
pub struct Sym {
    pub name: String,
    pub section: Option<String>,
    pub global: bool,
    pub kind: object::SymbolKind,
    pub size: u64,
    pub value: u64,
}

/// The payload's contents, read back with `object`.
#[derive(Debug)]
pub struct Payload {
    /// The file itself.
    pub bytes: Vec<u8>,
    pub sections: BTreeMap<String, Vec<u8>>,
    pub flags: BTreeMap<String, u64>,
    pub relocs: BTreeMap<String, Vec<Rel>>,
    pub symbols: Vec<Sym>,
}

impl Payload {
    pub fn read(path: &Path) -> Payload {
        let data = std::fs::read(path).expect("reading the payload");
        let file = ElfFile64::<object::Endianness>::parse(&*data).expect("payload parses as ELF64");
        assert_eq!(
            file.elf_header().e_type(object::Endianness::Little),
            object::elf::ET_REL
        );
        let mut sections = BTreeMap::new();
        let mut flags = BTreeMap::new();
        let mut relocs = BTreeMap::new();
        for s in file.sections() {
            let name = s.name().unwrap().to_string();
            if name.is_empty() {
                continue;
            }
            sections.insert(name.clone(), s.data().unwrap().to_vec());
            flags.insert(
                name.clone(),
                s.elf_section_header().sh_flags(object::Endianness::Little),
            );
            let mut list = Vec::new();
            for (offset, r) in s.relocations() {
                let (target, undef) = match r.target() {
                    RelocationTarget::Symbol(i) => {
                        let sym = file.symbol_by_index(i).unwrap();
                        if sym.kind() == object::SymbolKind::Section {
                            let sec = file.section_by_index(sym.section_index().unwrap()).unwrap();
                            (sec.name().unwrap().to_string(), false)
                        } else {
                            (sym.name().unwrap().to_string(), sym.is_undefined())
                        }
                    }
                    other => panic!("unexpected relocation target {other:?}"),
                };
                let r_type = match r.flags() {
                    object::RelocationFlags::Elf { r_type } => r_type,
                    f => panic!("unexpected flags {f:?}"),
                };
                list.push(Rel {
                    offset,
                    r_type,
                    target,
                    addend: r.addend(),
                    target_undefined: undef,
                });
            }
            if !list.is_empty() {
                relocs.insert(name, list);
            }
        }
        let symbols = file
            .symbols()
            .map(|s| Sym {
                name: s.name().unwrap_or("").to_string(),
                section: s
                    .section_index()
                    .and_then(|i| file.section_by_index(i).ok())
                    .map(|sec| sec.name().unwrap().to_string()),
                global: s.is_global(),
                kind: s.kind(),
                size: s.size(),
                value: s.address(),
            })
            .collect();
        Payload {
            bytes: data.clone(),
            sections,
            flags,
            relocs,
            symbols,
        }
    }

    pub fn has(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }
    pub fn relocs(&self, section: &str) -> &[Rel] {
        self.relocs.get(section).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn symbol(&self, name: &str) -> Option<&Sym> {
        self.symbols.iter().find(|s| s.name == name)
    }
    /// The names in the version-2 `.livepatch.funcs`, in table order.
    pub fn func_names(&self) -> Vec<String> {
        self.funcs(".livepatch.funcs", 104)
            .into_iter()
            .map(|f| f.name)
            .collect()
    }
    /// The function table in `section` (`support::funcs`); a malformed
    /// one fails the test.
    pub fn funcs(&self, section: &str, entry_size: usize) -> Vec<FuncRow> {
        let file = object::File::parse(&*self.bytes).unwrap();
        funcs::function_table(&file, section, entry_size).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// `ld -r` must accept the payload (the driver links payloads with it).
pub fn ld_accepts(path: &Path) {
    let out = path.with_extension("ld.o");
    let r = Command::new("ld")
        .arg("-r")
        .arg("-o")
        .arg(&out)
        .arg(path)
        .output()
        .expect("running ld");
    assert!(
        r.status.success(),
        "ld -r rejected the payload:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = Command::new("readelf")
        .arg("-aW")
        .arg(path)
        .output()
        .expect("running readelf");
    assert!(r.status.success(), "readelf -a failed");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !err.contains("Error") && !err.contains("Warning"),
        "readelf complains: {err}"
    );
}

/// Address and size of `name` in the fake xen-syms.
pub fn xen_symbol(case: &Case, name: &str, file: Option<&str>) -> (u64, u64) {
    let xen = case.xen();
    let s = xen.lookup(name, file).expect("symbol in xen-syms");
    (s.addr, s.size)
}

/// A refusal whose reason names every one of `names` and whose hint sends
/// the author to a load hook (`templates/livepatch-hooks.h`).
#[allow(dead_code)]
pub fn assert_names_with_hook_hint(r: &create_diff_object::Refusal, names: &[&str]) {
    for name in names {
        assert!(r.reason.contains(name), "{name}: {}", r.reason);
    }
    assert!(
        r.hint.contains("load hook") && r.hint.contains("templates/livepatch-hooks.h"),
        "{}",
        r.hint
    );
}
