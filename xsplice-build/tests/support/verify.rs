//! Shared by the `verify` tests: building the C fixture payloads of
//! `tests/verify/` against a fake xen-syms, and byte-level mutations of a
//! payload that the loader must reject, each with the failure it must cause.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use xsplice_build::verify::{Check, Failure};

/// The fixture directory (C sources and the fake hypervisor's linker script).
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/verify")
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The built fast-tier fixture.
pub struct Fixture {
    _dir: tempfile::TempDir,
    pub xen_syms: PathBuf,
    /// Replaces xen_extra_version, exports `fixture_counter`.
    pub payload: PathBuf,
    /// Stacked on `payload`: uses `fixture_counter`, depends on payload's build-id.
    pub stacked: PathBuf,
}

const CFLAGS: &[&str] = &[
    "-O1",
    "-fno-pie",
    "-fpic",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
    "-fno-stack-protector",
    "-mfunction-return=thunk-extern",
    "-fcf-protection=branch",
];

fn compile(src: &Path, out: &Path, debug: bool) {
    let mut cc = Command::new("cc");
    cc.args(CFLAGS).arg("-c").arg(src).arg("-o").arg(out);
    if debug {
        cc.arg("-g");
    }
    run(&mut cc);
}

/// `ld -r --build-id` of one object, then the two dependency notes added
/// the way Xen's test Makefile does (a copy of a build-id note section).
fn link_payload(dir: &Path, obj: &Path, out: &Path, depends_on: &Path, xen_syms: &Path) {
    run(Command::new("ld")
        .args(["-r", "--build-id=sha1", "-o"])
        .arg(out)
        .arg(obj));
    let note = |from: &Path, name: &str| -> PathBuf {
        let bin = dir.join(name);
        run(Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.note.gnu.build-id"])
            .arg(from)
            .arg(&bin));
        bin
    };
    let dep = note(depends_on, &format!("{}.dep.bin", out.display()));
    let xen = note(xen_syms, "xen.note.bin");
    run(Command::new("objcopy")
        .arg("--add-section")
        .arg(format!(".livepatch.depends={}", dep.display()))
        .args(["--set-section-flags", ".livepatch.depends=alloc,readonly"])
        .arg("--add-section")
        .arg(format!(".livepatch.xen_depends={}", xen.display()))
        .args([
            "--set-section-flags",
            ".livepatch.xen_depends=alloc,readonly",
        ])
        .arg(out));
}

/// Build (once per test binary) the fake xen-syms and the two payloads.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let src = fixture_dir();
        let dir = tempfile::Builder::new()
            .prefix("verify-fixture")
            // Integration tests have a target temporary directory; the fuzzer example does not.
            .tempdir_in(
                option_env!("CARGO_TARGET_TMPDIR").map_or_else(std::env::temp_dir, PathBuf::from),
            )
            .unwrap();
        let d = dir.path();
        let xa = d.join("xen_a.o");
        let xb = d.join("xen_b.o");
        compile(&src.join("xen_a.c"), &xa, true);
        compile(&src.join("xen_b.c"), &xb, true);
        let xen_syms = d.join("xen-syms");
        run(Command::new("ld")
            .args(["--build-id=sha1", "--no-warn-rwx-segments", "-T"])
            .arg(src.join("xen.lds"))
            .arg("-o")
            .arg(&xen_syms)
            .arg(&xa)
            .arg(&xb));
        let po = d.join("patch.o");
        compile(&src.join("patch.c"), &po, false);
        let payload = d.join("fixture.livepatch");
        link_payload(d, &po, &payload, &xen_syms, &xen_syms);
        let so = d.join("stacked.o");
        compile(&src.join("stacked.c"), &so, false);
        let stacked = d.join("stacked.livepatch");
        link_payload(d, &so, &stacked, &payload, &xen_syms);
        Fixture {
            _dir: dir,
            xen_syms,
            payload,
            stacked,
        }
    })
}

// Byte-level ELF editing is shared with create-diff-object's robustness
// tests: `support::cdo::elf_edit`.
pub use super::cdo::elf_edit::*;

/// Assert one of verify's failure lines contains `want`, listing them otherwise.
pub fn assert_fails_with(failures: &[Failure], want: &str) {
    assert!(
        failures.iter().any(|l| l.to_string().contains(want)),
        "wanted {want:?}: {failures:#?}"
    );
}

/// Assert verify reports `check` failing about `subject`, listing the failures otherwise.
pub fn assert_check_fails(failures: &[Failure], check: Check, subject: &str) {
    assert!(
        failures
            .iter()
            .any(|l| l.check == check && l.subject == subject),
        "wanted {check} about {subject:?}: {failures:#?}"
    );
}

/// One corruption and the failure text it must produce.
pub struct Mutation {
    pub name: &'static str,
    pub apply: fn(&mut Vec<u8>),
    pub expect: &'static str,
    /// The loader rule it breaks.
    pub check: Check,
}

const FUNCS: &str = ".livepatch.funcs";

fn funcs_field(d: &[u8], off: usize) -> usize {
    section(d, FUNCS).offset + off
}

/// Corruptions that apply to any payload with one `.livepatch.funcs`
/// entry (old_addr left to the loader or relocated), a load hook, an
/// undefined `printk` and the three notes: the fixture and Xen's
/// `xen_hello_world`.
pub fn mutations() -> Vec<Mutation> {
    vec![
        Mutation {
            name: "unsupported relocation type",
            apply: |d| {
                let r = rela_at(d, FUNCS, 0);
                wr32(d, r + 8, 10); // R_X86_64_32
            },
            expect: "unsupported relocation R_X86_64_32 (10)",
            check: Check::Relocations,
        },
        Mutation {
            name: "SHT_REL relocation section",
            apply: |d| {
                let r = sections(d)
                    .into_iter()
                    .find(|s| s.name == ".rela.livepatch.funcs")
                    .unwrap();
                wr32(d, r.hdr + 4, 9);
            },
            expect: "SHT_REL relocations are not supported",
            check: Check::RelocationSections,
        },
        Mutation {
            name: "relocation against STN_UNDEF",
            apply: |d| {
                let r = rela_at(d, FUNCS, 0);
                wr32(d, r + 12, 0);
            },
            expect: "against STN_UNDEF",
            check: Check::Relocations,
        },
        Mutation {
            name: "relocation past its section",
            apply: |d| {
                let r = rela_at(d, FUNCS, 0);
                let size = section(d, FUNCS).size as u64;
                wr64(d, r, size - 4);
            },
            expect: "8-byte field runs past the end of .livepatch.funcs",
            check: Check::Relocations,
        },
        Mutation {
            name: "PC32 overflow",
            apply: |d| {
                let printk = symbol_index(d, "printk") as u64;
                let r = sections(d)
                    .into_iter()
                    .filter(|s| s.sh_type == 4)
                    .flat_map(|s| (0..s.size / 24).map(move |i| s.offset + i * 24))
                    .find(|&r| rd64(d, r + 8) >> 32 == printk)
                    .expect("a relocation against printk");
                wr64(d, r + 16, 0x7fff_0000_0000);
            },
            expect: "against printk+140733193388032 overflows 32 bits",
            check: Check::Relocations,
        },
        Mutation {
            name: "truncated to half",
            apply: |d| {
                let n = d.len() / 2;
                d.truncate(n)
            },
            expect: "past the end of the file",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "truncated inside the ELF header",
            apply: |d| d.truncate(40),
            expect: "shorter than an ELF header",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "not ELF",
            apply: |d| d[0] = b'X',
            expect: "not an ELF file",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "wrong machine",
            apply: |d| wr16(d, 18, 3),
            expect: "machine 3 is not EM_X86_64",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "program headers",
            apply: |d| wr16(d, 56, 1),
            expect: "1 program headers",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "section headers past the end",
            apply: |d| {
                let n = d.len() as u64;
                wr64(d, 40, n + 100)
            },
            expect: "section headers at",
            check: Check::ElfHeader,
        },
        Mutation {
            name: "section data past the end",
            apply: |d| {
                let s = section(d, FUNCS);
                let n = d.len() as u64;
                wr64(d, s.hdr + 24, n);
            },
            expect: "section .livepatch.funcs: data",
            check: Check::SectionHeaders,
        },
        Mutation {
            name: "alignment not a power of two",
            apply: |d| {
                let s = section(d, FUNCS);
                wr64(d, s.hdr + 48, 24);
            },
            expect: "section .livepatch.funcs: alignment 0x18 is not a power of two",
            check: Check::SectionHeaders,
        },
        Mutation {
            name: "writable and executable",
            apply: |d| {
                let s = section(d, FUNCS);
                let flags = rd64(d, s.hdr + 8);
                // SHF_WRITE | SHF_EXECINSTR: Xen 4.20+'s own payloads
                // declare the table const (read-only).
                wr64(d, s.hdr + 8, flags | 1 | 4);
            },
            expect: "section .livepatch.funcs: both writable and executable",
            check: Check::SectionPlacement,
        },
        Mutation {
            name: "second symbol table",
            apply: |d| {
                let s = section(d, ".comment");
                wr32(d, s.hdr + 4, 2);
            },
            expect: "a second symbol table",
            check: Check::SectionHeaders,
        },
        Mutation {
            name: "common symbol",
            apply: |d| {
                let (e, _, _) = symbols(d)
                    .into_iter()
                    .find(|(_, n, x)| n == "printk" && *x == 0)
                    .unwrap();
                wr16(d, e + 6, 0xfff2);
            },
            expect: "symbol printk: common symbol (SHN_COMMON)",
            check: Check::SymbolResolution,
        },
        Mutation {
            name: "symbol name outside the string table",
            apply: |d| {
                let (e, _, _) = symbols(d)[1].clone();
                wr32(d, e, 0x00ff_ffff);
            },
            expect: "symbol #1: name offset 16777215 is outside the string table",
            check: Check::SymbolTable,
        },
        Mutation {
            name: "unknown undefined symbol",
            apply: |d| rename_in(d, ".strtab", "printk", "qrintk"),
            expect: "symbol qrintk: undefined, and not in xen-syms",
            check: Check::SymbolResolution,
        },
        Mutation {
            name: "build-id note zeroed",
            apply: |d| {
                let s = section(d, ".note.gnu.build-id");
                d[s.offset..s.offset + s.size].fill(0);
            },
            expect: "section .note.gnu.build-id: note type 0 is not NT_GNU_BUILD_ID",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "depends note zeroed",
            apply: |d| {
                let s = section(d, ".livepatch.depends");
                d[s.offset..s.offset + s.size].fill(0);
            },
            expect: "section .livepatch.depends: note type 0 is not NT_GNU_BUILD_ID",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "depends on a wrong build-id",
            apply: |d| {
                let s = section(d, ".livepatch.depends");
                d[s.offset + s.size - 1] ^= 0xff;
            },
            expect: "is not xen-syms's",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "xen_depends on a wrong build-id",
            apply: |d| {
                let s = section(d, ".livepatch.xen_depends");
                d[s.offset + s.size - 1] ^= 0xff;
            },
            expect: "section .livepatch.xen_depends: build-id",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "xen_depends dropped",
            apply: |d| {
                rename_in(
                    d,
                    ".shstrtab",
                    ".livepatch.xen_depends",
                    ".livepatch.xen_dependz",
                )
            },
            expect: "section .livepatch.xen_depends: missing",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "depends empty",
            apply: |d| {
                let s = section(d, ".livepatch.depends");
                wr64(d, s.hdr + 32, 0);
            },
            expect: "section .livepatch.depends: empty",
            check: Check::BuildIdNotes,
        },
        Mutation {
            name: "nothing to patch",
            apply: |d| {
                rename_in(d, ".shstrtab", "livepatch.funcs", "livepatch.funcz");
                rename_in(d, ".shstrtab", "livepatch.hooks", "livepatch.hookz");
            },
            expect: "nothing to patch",
            check: Check::PatchingSections,
        },
        Mutation {
            name: "funcs size not a multiple",
            apply: |d| {
                let s = section(d, FUNCS);
                wr64(d, s.hdr + 32, 100);
            },
            expect: "section .livepatch.funcs: size 100 is not a multiple of 104",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "wrong version",
            apply: |d| {
                let o = funcs_field(d, 32);
                d[o] = 1;
            },
            expect: "version 1 is not 2",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "old_size 0",
            apply: |d| {
                let o = funcs_field(d, 28);
                wr32(d, o, 0);
            },
            expect: "old_size is 0",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "old_size 3",
            apply: |d| {
                let o = funcs_field(d, 28);
                wr32(d, o, 3);
            },
            expect: "old_size 3 cannot hold the",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "NOP-out longer than the opaque buffer",
            apply: |d| {
                let r = rela_at(d, FUNCS, 8);
                wr32(d, r + 8, 0); // new_addr relocation becomes R_X86_64_NONE: new_addr 0
                let o = funcs_field(d, 24);
                wr32(d, o, 40);
            },
            expect: "new_addr is 0 (NOP-out) but new_size 40 is more than 31",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "name pointer to nowhere",
            apply: |d| {
                let r = rela_at(d, FUNCS, 0);
                wr64(d, r + 16, 0x10_0000);
            },
            expect: "name pointer points past the end of",
            check: Check::FunctionTable,
        },
        Mutation {
            name: "expectation mismatch",
            apply: |d| {
                let o = funcs_field(d, 72);
                d[o] = 1 | (4 << 1);
                d[o + 1..o + 5].copy_from_slice(&[0xde, 0xad, 0xc0, 0xde]);
            },
            expect: "expectation deadc0de does not match the code in xen-syms",
            check: Check::Expectation,
        },
        Mutation {
            name: "expectation reserved bits",
            apply: |d| {
                let o = funcs_field(d, 72);
                d[o] = 1 | (2 << 1) | 0x40;
            },
            expect: "expectation has reserved bits set",
            check: Check::Expectation,
        },
        Mutation {
            name: "NULL load hook",
            apply: |d| {
                let r = rela_at(d, ".livepatch.hooks.load", 0);
                wr32(d, r + 8, 0);
            },
            expect: "section .livepatch.hooks.load[0]: hook pointer is NULL",
            check: Check::Hooks,
        },
        Mutation {
            name: "hook array size",
            apply: |d| {
                let s = section(d, ".livepatch.hooks.load");
                wr64(d, s.hdr + 32, 4);
            },
            expect: "section .livepatch.hooks.load: size 4 is not a multiple of 8",
            check: Check::Hooks,
        },
        Mutation {
            name: "bigger than 2 MiB",
            apply: |d| d.resize(d.len() + (2 << 20), 0),
            expect: "more than the loader's 2 MiB limit",
            check: Check::PayloadSize,
        },
    ]
}

/// Check every mutation: it must produce a failure containing its text.
pub fn assert_mutations_fail(original: &[u8], verify: impl Fn(&[u8]) -> Vec<Failure>) {
    let base = verify(original);
    assert!(
        base.is_empty(),
        "the unmutated payload must pass: {base:#?}"
    );
    let mut missed = Vec::new();
    for m in mutations() {
        let mut d = original.to_vec();
        (m.apply)(&mut d);
        let failures = verify(&d);
        if !failures
            .iter()
            .any(|l| l.check == m.check && l.to_string().contains(m.expect))
        {
            missed.push(format!(
                "{}: wanted {} {:?}, got {failures:#?}",
                m.name, m.check, m.expect
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "mutations not reported:\n{}",
        missed.join("\n")
    );
}
