//! What xsplice-build's tests share. Every test file that uses it has
//! `mod support;` (the `fuzz` example includes `fuzz`, `verify` and `cdo`
//! by path); not every file uses every helper, hence `dead_code`.
//!
//! - here: where the trees, fixtures and patches are; the `--json` report;
//! - `tree`: copies of `tests/xenlike` and proof that a tree was not written;
//! - `payload`: a payload read back (function table, relocation targets, notes);
//! - `verify`: the C fixture payloads for `verify` and their mutations;
//! - `fuzz`: the mutation fuzzer's engine;
//! - `cdo`: create-diff-object's test support, by path: its C fixture
//!   pairs (the fuzzer's seeds), the function-table reader and the
//!   byte-level ELF editor.
#![allow(dead_code)]

#[path = "../../../create-diff-object/tests/support/mod.rs"]
pub mod cdo;
pub mod fuzz;
pub mod payload;
pub mod tree;
pub mod verify;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// (variable, release series) of every supported release's tree.
pub const RELEASE_TREES: [(&str, &str); 6] = [
    ("XSPLICE_XEN_TREE", "4.17"),
    ("XSPLICE_XEN_TREE_418", "4.18"),
    ("XSPLICE_XEN_TREE_419", "4.19"),
    ("XSPLICE_XEN_TREE_420", "4.20"),
    ("XSPLICE_XEN_TREE_421", "4.21"),
    ("XSPLICE_XEN_TREE_422", "4.22"),
];

/// The workspace's top directory (sample-patches/, tests/, ci/).
pub fn project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A directory or file the real-Xen tier is given in `var`: unset fails
/// loudly (the tier never skips), saying what it needs.
pub fn env_path(var: &str, what: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) => PathBuf::from(p),
        None => panic!("{var} is not set: the real-Xen tier needs {what} (ci/test sets it)"),
    }
}

/// The built Xen tree `var` names (`XSPLICE_XEN_TREE`, `XSPLICE_XEN_TREE_420`, ...).
pub fn xen_tree(var: &str) -> PathBuf {
    env_path(var, "a built Xen tree")
}

/// `sample-patches/NAME.diff`.
pub fn sample_patch(name: &str) -> PathBuf {
    project().join(format!("sample-patches/{name}.diff"))
}

/// `tests/xenlike-patches/NAME.diff`: a patch against `tests/xenlike`.
pub fn xenlike_patch_file(name: &str) -> PathBuf {
    project().join(format!("tests/xenlike-patches/{name}.diff"))
}

/// The text of `tests/xenlike-patches/NAME.diff`, at compile time (a
/// `const`, and the test rebuilds when the file changes).
#[allow(unused_macros)]
macro_rules! xenlike_patch {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/xenlike-patches/",
            $name,
            ".diff"
        ))
    };
}
#[allow(unused_imports)]
pub(crate) use xenlike_patch;

/// A `--json` report, parsed (a syntax error fails the test).
pub fn json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The report's entry in `key` (a list of objects) whose fields match `fields`.
pub fn entry<'a>(report: &'a Value, key: &str, fields: &[(&str, &str)]) -> &'a Value {
    report[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list: {report:#}"))
        .iter()
        .find(|e| fields.iter().all(|(k, v)| e[*k] == *v))
        .unwrap_or_else(|| panic!("no {key} entry with {fields:?}: {report:#}"))
}

/// Assert a process exited with `code`, showing its output otherwise.
pub fn assert_exit(o: &std::process::Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The samples in `sample-patches/samples.list`'s stacking order.
pub const SAMPLES: [&str; 6] = [
    "hello-world",
    "bye-world",
    "replace-world",
    "hooks",
    "static-bug-frame",
    "timer-hot-path",
];

/// The names in a build's function table, in order.
pub fn function_names(r: &xsplice_build::BuildResult) -> Vec<&str> {
    r.functions.iter().map(|f| f.name.as_str()).collect()
}

/// The options a test starts from: the CLI's defaults (`BuildOptions::new`),
/// quiet. Tests set only what differs.
pub fn build_options(srcdir: &Path, patch: &Path, out: &Path) -> xsplice_build::BuildOptions {
    xsplice_build::BuildOptions {
        quiet: true,
        ..xsplice_build::BuildOptions::new(
            srcdir.to_path_buf(),
            patch.to_path_buf(),
            out.to_path_buf(),
        )
    }
}

/// The upstream recipe's make settings (default build strings), `jobs` wide.
pub fn upstream_make(jobs: usize) -> xsplice_build::build::MakeConfig {
    let recipe = xsplice_build::recipe::BuildRecipe::Upstream
        .resolve(None)
        .unwrap();
    xsplice_build::build::MakeConfig::new(jobs, false, recipe)
}

/// `xsplice-build verify PAYLOAD --xen-syms XEN_SYMS`, for the caller to
/// add options to and run.
pub fn verify_command(payload: &Path, xen_syms: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
    cmd.arg("verify")
        .arg(payload)
        .arg("--xen-syms")
        .arg(xen_syms);
    cmd
}
