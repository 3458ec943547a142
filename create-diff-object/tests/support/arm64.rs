//! AArch64 fixtures (tests/cdo-arm64/): compiled by Debian's cross compiler
//! with Xen's arm64 flags and linked into a small fake arm64 xen-syms.
//! A missing cross toolchain fails the test, naming the package.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Case;

/// The cross toolchain's prefix (Xen's `CROSS_COMPILE`).
pub const CROSS: &str = "aarch64-linux-gnu-";

/// Xen's arm64 code-generation flags (Config.mk's EMBEDDED_EXTRA_CFLAGS,
/// xen/Makefile's, arch/arm/arch.mk's for CONFIG_ARM_64), minus warnings
/// and include paths, plus -g for DWARF.
pub const XEN_ARM64_CFLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-fno-strict-aliasing",
    "-std=gnu99",
    "-nostdinc",
    "-fno-builtin",
    "-fno-common",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-exceptions",
    "-fno-asynchronous-unwind-tables",
    "-mcpu=generic",
    "-mgeneral-regs-only",
    "-mno-outline-atomics",
];

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cdo-arm64")
}

/// Run a cross tool, failing loudly when it is not installed.
pub fn tool(name: &str) -> Command {
    let prog = format!("{CROSS}{name}");
    let found = Command::new(&prog).arg("--version").output();
    assert!(
        matches!(&found, Ok(o) if o.status.success()),
        "{prog} not found: install Debian's gcc-aarch64-linux-gnu (ci/setup installs it)"
    );
    Command::new(prog)
}

/// Compile `src` (relative to `dir`) to `dir/<stem>.o` for arm64.
pub fn compile(dir: &Path, src: &str) -> PathBuf {
    let obj = dir.join(Path::new(src).with_extension("o"));
    let out = tool("gcc")
        .current_dir(dir)
        .args(XEN_ARM64_CFLAGS)
        .arg("-I")
        .arg(fixtures_dir().join("include"))
        .args(["-include", "xen_fixture_arm64.h", "-c", src, "-o"])
        .arg(&obj)
        .output()
        .expect("running the arm64 cross compiler");
    assert!(
        out.status.success(),
        "compiling {src} for arm64 failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    obj
}

/// Build arm64 fixture `case`: `orig.c` and `patched.c` become `<case>.c`;
/// xen-syms is the original object and the fixture base, linked at Xen's
/// arm64 load address.
pub fn build_case(case: &str) -> Case {
    let src = fixtures_dir().join(case);
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = format!("{case}.c");
    let mut objs = Vec::new();
    for (sub, file) in [("orig", "orig.c"), ("patched", "patched.c")] {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(src.join(file), d.join(&unit)).expect("fixture source");
        objs.push(compile(&d, &unit));
    }
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(
        fixtures_dir().join("include/fixture_base.c"),
        other.join("fixture_base.c"),
    )
    .unwrap();
    let base = compile(&other, "fixture_base.c");
    let xen_syms = dir.path().join("xen-syms");
    let out = tool("ld")
        .args(["--build-id=sha1", "-e", "_start", "-Ttext=0x200000", "-o"])
        .arg(&xen_syms)
        .arg(&objs[0])
        .arg(&base)
        .output()
        .expect("running the arm64 linker");
    assert!(
        out.status.success(),
        "linking the arm64 xen-syms failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dir.path().join("out.o");
    Case {
        orig: objs[0].clone(),
        patched: objs[1].clone(),
        dir,
        xen_syms,
        out,
    }
}

/// `ld -r` of the cross binutils must accept the payload.
pub fn ld_accepts(path: &Path) {
    let out = path.with_extension("ld.o");
    let r = tool("ld")
        .arg("-r")
        .arg("-o")
        .arg(&out)
        .arg(path)
        .output()
        .expect("running the arm64 linker");
    assert!(
        r.status.success(),
        "ld -r rejected the arm64 payload:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
}
