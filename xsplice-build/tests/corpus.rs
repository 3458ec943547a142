//! The regression corpus (`tests/corpus/`) on a real, built Xen tree
//! (XSPLICE_XEN_TREE): realistic fixes, each built with the xsplice-build
//! binary and checked against `tests/corpus/MANIFEST` from the exit code,
//! the payload ELF (function-table names through their relocations, old
//! sizes against xen-syms, symbols defined, special-section entries kept
//! exactly for the included functions), the JSON report (refusals, init
//! functions, messages) and `xsplice-build verify`; the source tree is
//! never written. All cases share one base cache, so the base is built
//! once; per-case wall times are printed. The fast tier only checks that
//! the manifest parses and matches the patches on disk.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SymbolKind};
use serde_json::Value;
use support::payload::FUNC_ENTRY;
use support::tree::{Contents, Snapshot};
use support::xen_tree;

fn corpus_dir() -> PathBuf {
    support::project().join("tests/corpus")
}

/// The Xen series whose corpus runs: 4.17 (`MANIFEST`, patches in
/// `tests/corpus/`) or a later one (`MANIFEST-4.20`, patches ported to it
/// in `tests/corpus/4.20/`, the others shared with 4.17), or the stable
/// fixes of 4.21.1 on 4.21.0 (`MANIFEST-stable-4.21.1`, every patch in
/// `tests/corpus/stable-4.21.1/`).
#[derive(Debug, Clone, Copy)]
struct Series {
    release: Option<&'static str>,
    /// Earlier series whose ported patches this one takes when it has no
    /// port of its own (newest first): a 4.21 port that applies to 4.22.0
    /// unchanged is read from `tests/corpus/4.21/`, not copied.
    inherits: &'static [&'static str],
}

impl Series {
    const fn of(release: &'static str, inherits: &'static [&'static str]) -> Series {
        Series {
            release: Some(release),
            inherits,
        }
    }

    fn manifest(self) -> PathBuf {
        match self.release {
            None => corpus_dir().join("MANIFEST"),
            Some(s) => corpus_dir().join(format!("MANIFEST-{s}")),
        }
    }

    fn ported_dir(self) -> Option<PathBuf> {
        self.release.map(|s| corpus_dir().join(s))
    }

    /// NAME.diff from the first of the series' own directory, the
    /// directories of the series it inherits from, and `tests/corpus/`.
    fn diff(self, name: &str) -> PathBuf {
        let file = format!("{name}.diff");
        self.ported_dir()
            .into_iter()
            .chain(self.inherits.iter().map(|s| corpus_dir().join(s)))
            .map(|d| d.join(&file))
            .find(|p| p.is_file())
            .unwrap_or_else(|| corpus_dir().join(file))
    }
}

const S417: Series = Series {
    release: None,
    inherits: &[],
};
const S420: Series = Series::of("4.20", &[]);
const S421: Series = Series::of("4.21", &[]);
const S422: Series = Series::of("4.22", &["4.21", "4.20"]);
const S4210: Series = Series::of("stable-4.21.1", &[]);
const SERIES: [Series; 5] = [S417, S420, S421, S422, S4210];

/// Size of one Xen 4.17 `struct livepatch_func`.
/// Special sections whose entries must follow the functions they describe.
fn special() -> impl Iterator<Item = &'static str> {
    xsplice_target::sections::SPECIAL_TABLES
        .iter()
        .map(|t| t.name)
}

/// One manifest line.
#[derive(Debug, Default)]
struct Case {
    name: String,
    exit: i32,
    funcs: Option<BTreeSet<String>>,
    defines: Vec<String>,
    refers: Vec<String>,
    data_bytes: Option<u64>,
    special: Vec<String>,
    refused: Option<(String, String)>,
    /// `refusals[].kind` of the refusal (of `refused` when given).
    kind: Option<String>,
    init: Option<String>,
    init_warn: Vec<(String, String)>,
    /// `warnings[]` entries the report must hold: (kind, object).
    warn: Vec<(String, String)>,
    /// `layout-warn=KIND@TYPE`: the layout check accepted a changed type by
    /// a rule, listed in the report's `warnings` and on stderr.
    layout_warn: Vec<(String, String)>,
    compiler_error: Option<(String, u32)>,
    message: Vec<String>,
    known_bug: bool,
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_manifest(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut case = Case {
            name: words.next().unwrap().to_string(),
            ..Case::default()
        };
        let exit = words.next();
        case.exit = exit
            .and_then(|e| e.parse().ok())
            .unwrap_or_else(|| panic!("MANIFEST line {}: bad exit code {exit:?}", n + 1));
        for w in words {
            match w.split_once('=') {
                Some(("funcs", v)) => case.funcs = Some(list(v).into_iter().collect()),
                Some(("defines", v)) => case.defines = list(v),
                Some(("refers", v)) => case.refers = list(v),
                Some(("data-bytes", v)) => {
                    case.data_bytes = Some(
                        v.parse()
                            .unwrap_or_else(|_| panic!("MANIFEST line {}: data-bytes=N", n + 1)),
                    )
                }
                Some(("special", v)) => case.special = list(v),
                Some(("refused", v)) => {
                    let (sym, sec) = v
                        .split_once('@')
                        .unwrap_or_else(|| panic!("MANIFEST line {}: refused=SYM@SECTION", n + 1));
                    // '~' stands for ' ' (types: `struct~vcpu`).
                    case.refused = Some((sym.replace('~', " "), sec.to_string()));
                }
                Some(("kind", v)) => case.kind = Some(v.to_string()),
                Some(("init", v)) => case.init = Some(v.to_string()),
                Some(("init-warn", v)) => {
                    let (f, obj) = v
                        .split_once('@')
                        .unwrap_or_else(|| panic!("MANIFEST line {}: init-warn=FN@OBJECT", n + 1));
                    case.init_warn.push((f.to_string(), obj.to_string()));
                }
                Some(("warn", v)) => {
                    let (kind, obj) = v
                        .split_once('@')
                        .unwrap_or_else(|| panic!("MANIFEST line {}: warn=KIND@OBJECT", n + 1));
                    case.warn.push((kind.to_string(), obj.to_string()));
                }
                Some(("layout-warn", v)) => {
                    let (kind, ty) = v.split_once('@').unwrap_or_else(|| {
                        panic!("MANIFEST line {}: layout-warn=KIND@TYPE", n + 1)
                    });
                    case.layout_warn
                        .push((kind.to_string(), ty.replace('~', " ")));
                }
                Some(("compiler-error", v)) => {
                    let (file, line) = v
                        .rsplit_once(':')
                        .and_then(|(f, l)| Some((f.to_string(), l.parse().ok()?)))
                        .unwrap_or_else(|| {
                            panic!("MANIFEST line {}: compiler-error=FILE:LINE", n + 1)
                        });
                    case.compiler_error = Some((file, line));
                }
                Some(("message", v)) => case.message.push(v.replace('~', " ")),
                None if w == "known-bug" => case.known_bug = true,
                _ => panic!("MANIFEST line {}: unknown expectation {w:?}", n + 1),
            }
        }
        assert!(
            case.exit != 0 || case.funcs.is_some(),
            "MANIFEST line {}: a built case needs funcs=",
            n + 1
        );
        cases.push(case);
    }
    cases
}

/// The files a patch names, relative to the top of the tree.
fn patched_files(diff: &str) -> BTreeSet<String> {
    diff.lines()
        .filter_map(|l| {
            l.strip_prefix("--- a/")
                .or_else(|| l.strip_prefix("+++ b/"))
        })
        .map(|l| l.split('\t').next().unwrap_or(l).to_string())
        .collect()
}

/// Lists in the report (serde_json's `Value`), read leniently: a missing
/// or mistyped field reads as empty and fails the comparison that uses it.
trait Lists {
    fn arr(&self) -> &[Value];
    fn strs(&self) -> Vec<String>;
}

impl Lists for Value {
    fn arr(&self) -> &[Value] {
        self.as_array().map_or(&[], Vec::as_slice)
    }
    fn strs(&self) -> Vec<String> {
        self.arr()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    }
}

/// Section index a relocation's target lives in.
fn target_section(file: &object::File, target: RelocationTarget) -> Option<object::SectionIndex> {
    match target {
        RelocationTarget::Symbol(i) => file.symbol_by_index(i).ok()?.section_index(),
        RelocationTarget::Section(s) => Some(s),
        _ => None,
    }
}

/// Entries of `section` that point into code: relocations whose target
/// lies in a section `counts` accepts.
fn count_entries(
    file: &object::File,
    section: &str,
    counts: impl Fn(object::SectionIndex) -> bool,
) -> usize {
    let Some(sec) = file.section_by_name(section) else {
        return 0;
    };
    sec.relocations()
        .filter(|(_, r)| target_section(file, r.target()).is_some_and(&counts))
        .count()
}

/// The function table read back from the payload (`support::payload`):
/// (name, old_size), every entry version 2 with code.
fn function_table(file: &object::File) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for f in support::payload::function_table(file, ".livepatch.funcs", FUNC_ENTRY)? {
        if f.new_size == 0 {
            return Err(format!("{}: new_size 0", f.name));
        }
        if f.version != 2 {
            return Err(format!(
                "{}: version {} (Xen 4.17 wants 2)",
                f.name, f.version
            ));
        }
        out.push((f.name, f.old_size));
    }
    Ok(out)
}

/// Per-section entry counts the payload must carry: the patched objects'
/// entries that point into an included function.
fn expected_special(out: &Path, report: &Value) -> Result<BTreeMap<&'static str, usize>, String> {
    let mut want: BTreeMap<&'static str, usize> = special().map(|s| (s, 0)).collect();
    // Objects only the patched build has are linked whole.
    let new_objects: Vec<Value> = report["new_objects"]
        .strs()
        .into_iter()
        .filter(|n| {
            !report["objects"]
                .arr()
                .iter()
                .any(|o| o["object"].as_str() == Some(n))
        })
        .map(|n| serde_json::json!({"object": n, "new_object": true}))
        .collect();
    for obj in report["objects"].arr().iter().chain(&new_objects) {
        let name = obj["object"].as_str().ok_or("object without a name")?;
        let path = out.join("objects/patched").join(name);
        let data = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{name}: {e}"))?;
        let new_object = obj["new_object"] == true;
        let included: BTreeSet<String> = obj["changed_functions"]
            .strs()
            .into_iter()
            .chain(obj["new_functions"].strs())
            // Report names are runtime names (`file#sym`); the object's are bare.
            .map(|f| f.rsplit('#').next().unwrap_or(&f).to_string())
            .collect();
        let sections: BTreeSet<usize> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text)
            .filter(|s| {
                let n = s.name().unwrap_or("");
                new_object
                    || included.contains(n)
                    || n.strip_suffix(".cold")
                        .is_some_and(|b| included.contains(b))
            })
            .filter_map(|s| s.section_index().map(|i| i.0))
            .collect();
        for s in special() {
            *want.get_mut(s).unwrap() += count_entries(&file, s, |i| sections.contains(&i.0));
        }
    }
    Ok(want)
}

/// Everything wrong with one case's outcome (empty: as expected), and the
/// one-line summary printed for it.
fn check_case(
    series: Series,
    case: &Case,
    tree: &Path,
    cache: &Path,
    scratch: &Path,
    xen_syms: &create_diff_object::XenSyms,
) -> (Vec<String>, String, f64) {
    let mut problems = Vec::new();
    let diff = series.diff(&case.name);
    let diff_text = fs::read_to_string(&diff).unwrap();
    let touched: BTreeSet<PathBuf> = patched_files(&diff_text)
        .into_iter()
        .map(|f| tree.join(f))
        .collect();
    let before: Vec<_> = touched
        .iter()
        .map(|p| {
            (
                fs::read(p).ok(),
                fs::metadata(p).ok().map(|m| (m.mtime(), m.mtime_nsec())),
            )
        })
        .collect();

    let out = scratch.join(&case.name);
    let json = scratch.join(format!("{}.json", case.name));
    let start = Instant::now();
    let run = Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
        .arg("-q")
        .arg("-s")
        .arg(tree)
        .arg("-p")
        .arg(&diff)
        .arg("-o")
        .arg(&out)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--json")
        .arg(&json)
        .arg("--xen-syms")
        .arg(tree.join("xen/xen-syms"))
        .output()
        .expect("running xsplice-build");
    let secs = start.elapsed().as_secs_f64();
    let code = run.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&run.stderr)
        .trim()
        .replace('\n', " | ");

    let after: Vec<_> = touched
        .iter()
        .map(|p| {
            (
                fs::read(p).ok(),
                fs::metadata(p).ok().map(|m| (m.mtime(), m.mtime_nsec())),
            )
        })
        .collect();
    if before != after {
        problems.push("the source tree's patched files changed".into());
    }
    for p in &touched {
        for ext in ["orig", "rej"] {
            let leftover = PathBuf::from(format!("{}.{ext}", p.display()));
            if leftover.exists() {
                problems.push(format!("{} left in the tree", leftover.display()));
            }
        }
    }

    if code != case.exit {
        problems.push(format!("exit {code}, expected {} ({stderr})", case.exit));
    }
    let report = match fs::read(&json)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_slice::<Value>(&t).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            problems.push(format!("JSON report {}: {e}", json.display()));
            return (problems, format!("exit {code}"), secs);
        }
    };
    if report["exit_code"] != code {
        problems.push(format!(
            "report exit_code {:?}, process exit {code}",
            report["exit_code"]
        ));
    }
    let error = report["error"].as_str().unwrap_or("").to_string();
    let mut summary = format!("exit {code}");

    for text in &case.message {
        if !error.contains(text.as_str()) {
            problems.push(format!("message {error:?} lacks {text:?}"));
        }
    }
    if let Some(f) = &case.init {
        if !report["init_only_changes"].strs().contains(f) {
            problems.push(format!(
                "report init_only_changes {:?} lacks {f}",
                report["init_only_changes"].strs()
            ));
        }
        if !error.contains(f.as_str()) {
            problems.push(format!("message {error:?} does not name {f}"));
        }
        summary = format!("exit {code}: init only ({f})");
    }
    for (f, obj) in &case.init_warn {
        let listed = report["objects"].arr().iter().any(|o| {
            o["object"].as_str() == Some(obj) && o["init_only_changes"].strs().contains(f)
        });
        if !listed {
            problems.push(format!(
                "report objects do not list init-only change {f} under {obj}: {:?}",
                report["objects"]
            ));
        }
        if !(stderr.contains("warning") && stderr.contains(f.as_str())) {
            problems.push(format!("stderr {stderr:?} does not warn about {f}"));
        }
    }
    for (kind, obj) in &case.warn {
        let listed = report["warnings"]
            .arr()
            .iter()
            .any(|w| w["kind"].as_str() == Some(kind) && w["object"].as_str() == Some(obj));
        if !listed {
            problems.push(format!(
                "report warnings lack a {kind} warning for {obj}: {:?}",
                report["warnings"]
            ));
        }
        if !stderr.contains("warning") {
            problems.push(format!("stderr {stderr:?} has no warning"));
        }
    }
    for (kind, ty) in &case.layout_warn {
        let listed = report["warnings"]
            .arr()
            .iter()
            .any(|w| w["kind"].as_str() == Some(kind) && w["symbols"][0].as_str() == Some(ty));
        if !listed {
            problems.push(format!(
                "report warnings lack {kind} for {ty}: {:?}",
                report["warnings"]
            ));
        }
        if !(stderr.contains(&format!("[{kind}]")) && stderr.contains(ty.as_str())) {
            problems.push(format!("stderr {stderr:?} does not warn {kind} about {ty}"));
        }
    }
    if let Some((file, line)) = &case.compiler_error {
        let c = &report["compiler_error"];
        if c["file"].as_str() != Some(file) || c["line"] != *line {
            problems.push(format!(
                "report compiler_error {c:?}, expected {file}:{line}"
            ));
        }
        if !error.contains(&format!("{file}:{line}:")) {
            problems.push(format!("message {error:?} does not quote {file}:{line}"));
        }
        summary = format!("exit {code}: does not compile ({file}:{line})");
    }
    if let Some(kind) = &case.kind {
        let hit = report["refusals"].arr().iter().any(|r| {
            r["kind"].as_str() == Some(kind)
                && case.refused.as_ref().is_none_or(|(sym, sec)| {
                    r["symbol"].as_str() == Some(sym) && r["section"].as_str() == Some(sec)
                })
        });
        if !hit {
            problems.push(format!(
                "no refusal of kind {kind} (of {:?}): {:?}",
                case.refused, report["refusals"]
            ));
        }
    }
    if let Some((sym, sec)) = &case.refused {
        let hit = report["refusals"]
            .arr()
            .iter()
            .any(|r| r["symbol"].as_str() == Some(sym) && r["section"].as_str() == Some(sec));
        if !hit {
            problems.push(format!(
                "no refusal of {sym} in {sec}: {:?}",
                report["refusals"]
            ));
        }
        if !(error.contains(sym.as_str()) && error.contains(sec.as_str())) {
            problems.push(format!("message {error:?} does not name {sym} and {sec}"));
        }
        summary = format!("exit {code}: refused {sym} ({sec})");
    }

    if case.exit == 0 && code == 0 {
        let payload = out.join(format!("{}.livepatch", case.name));
        let stdout = String::from_utf8_lossy(&run.stdout);
        if stdout.trim() != payload.to_string_lossy() {
            problems.push(format!("stdout {stdout:?}, expected the payload's path"));
        }
        let verify = support::verify_command(&payload, &tree.join("xen/xen-syms"))
            .output()
            .expect("running xsplice-build verify");
        if !verify.status.success() {
            problems.push(format!(
                "verify fails: {}",
                String::from_utf8_lossy(&verify.stderr).trim()
            ));
        }
        // XSPLICE_CORPUS_KEEP=DIR keeps each built payload as
        // DIR/NAME.livepatch, e.g. for `XSPLICE_E2E_ONLY` (ci/e2e-qemu).
        if let Some(keep) = std::env::var_os("XSPLICE_CORPUS_KEEP").filter(|v| !v.is_empty()) {
            let keep = PathBuf::from(keep);
            if let Err(e) = fs::create_dir_all(&keep)
                .and_then(|()| fs::copy(&payload, keep.join(payload.file_name().unwrap())))
            {
                problems.push(format!("XSPLICE_CORPUS_KEEP {}: {e}", keep.display()));
            }
        }
        match fs::read(&payload) {
            Err(e) => problems.push(format!("{}: {e}", payload.display())),
            Ok(data) => match object::File::parse(&*data) {
                Err(e) => problems.push(format!("payload does not parse: {e}")),
                Ok(file) => {
                    let kept = check_payload(case, &file, &report, &out, xen_syms, &mut problems);
                    let n = function_table(&file).map(|t| t.len()).unwrap_or(0);
                    summary = format!("exit 0: {n} function(s); code references kept: {kept}");
                }
            },
        }
    }
    (problems, summary, secs)
}

fn check_payload(
    case: &Case,
    file: &object::File,
    report: &Value,
    out: &Path,
    xen_syms: &create_diff_object::XenSyms,
    problems: &mut Vec<String>,
) -> String {
    let table = match function_table(file) {
        Ok(t) => t,
        Err(e) => {
            problems.push(format!("function table: {e}"));
            return String::new();
        }
    };
    let names: BTreeSet<String> = table.iter().map(|(n, _)| n.clone()).collect();
    if names.len() != table.len() {
        problems.push(format!("duplicate function-table entries: {table:?}"));
    }
    if let Some(want) = &case.funcs {
        if &names != want {
            let missing: Vec<_> = want.difference(&names).collect();
            let extra: Vec<_> = names.difference(want).collect();
            problems.push(format!(
                "function table: missing {missing:?}, unexpected {extra:?}"
            ));
        }
    }
    let reported: BTreeSet<String> = report["functions"]
        .arr()
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    if reported != names || report["functions"].arr().len() != table.len() {
        problems.push(format!(
            "JSON functions {reported:?} differ from the ELF's {names:?}"
        ));
    }
    for (name, old_size) in &table {
        match xen_syms.resolve_runtime_name(name) {
            None => problems.push(format!(
                "{name}: not in xen-syms (the loader cannot resolve it)"
            )),
            Some(s) if s.size != u64::from(*old_size) => problems.push(format!(
                "{name}: old_size {old_size}, xen-syms says {}",
                s.size
            )),
            Some(_) => {}
        }
    }

    for d in &case.defines {
        let defined = file
            .symbols()
            .any(|s| s.name() == Ok(d.as_str()) && s.section_index().is_some());
        if !defined {
            problems.push(format!("payload does not define {d}"));
        }
    }

    for r in &case.refers {
        let undefined = file
            .symbols()
            .any(|s| s.name() == Ok(r.as_str()) && s.section_index().is_none());
        if !undefined {
            problems.push(format!(
                "payload does not refer to the running Xen's {r} (undefined symbol)"
            ));
        }
    }

    // Writable data the payload brings: new variables only, never copies
    // of the running Xen's.
    if let Some(want) = case.data_bytes {
        let have: u64 = file
            .sections()
            .filter(|s| {
                s.name()
                    .is_ok_and(|n| n.starts_with(".data") || n.starts_with(".bss"))
            })
            .map(|s| s.size())
            .sum();
        if have != want {
            problems.push(format!(
                "{have} byte(s) of .data*/.bss* sections, expected {want}"
            ));
        }
    }

    // Special entries: exactly those of the included functions.
    let code_section = |i: object::SectionIndex| {
        file.section_by_index(i)
            .ok()
            .and_then(|s| s.name().ok().map(|n| n.starts_with(".text")))
            .unwrap_or(false)
    };
    let mut kept = Vec::new();
    match expected_special(out, report) {
        Err(e) => problems.push(format!("reading the patched objects: {e}")),
        Ok(want) => {
            for s in special() {
                let have = count_entries(file, s, code_section);
                if have > 0 {
                    kept.push(format!("{s} {have}"));
                }
                if have != want[s] {
                    problems.push(format!(
                        "{s}: {have} code reference(s) in the payload, the included functions have {}",
                        want[s]
                    ));
                }
            }
        }
    }
    for s in &case.special {
        if count_entries(file, s, code_section) == 0 {
            problems.push(format!("{s}: no entries in the payload"));
        }
    }
    kept.join(", ")
}

/// Every patch has a manifest line and every line a patch that names the
/// files it changes; returns the case names.
fn check_corpus_files(series: Series, cases: &[Case]) -> BTreeSet<String> {
    let listed: BTreeSet<String> = cases.iter().map(|c| c.name.clone()).collect();
    assert_eq!(listed.len(), cases.len(), "duplicate names in MANIFEST");
    let diffs_in = |dir: &Path| -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".diff").map(str::to_string)
            })
            .collect()
    };
    match series.ported_dir() {
        None => assert_eq!(
            diffs_in(&corpus_dir()),
            listed,
            "tests/corpus/*.diff and MANIFEST disagree"
        ),
        Some(dir) => {
            let ported = diffs_in(&dir);
            let unlisted: Vec<_> = ported.difference(&listed).collect();
            assert!(
                unlisted.is_empty(),
                "{}: patches {unlisted:?} are not in {}",
                dir.display(),
                series.manifest().display()
            );
            // A port exists because the patch it shadows does not apply:
            // a byte-identical copy of the inherited one is not a port.
            let inherited = Series {
                release: None,
                ..series
            };
            for name in &ported {
                let own = dir.join(format!("{name}.diff"));
                let other = inherited.diff(name);
                assert!(
                    fs::read(&own).ok() != fs::read(&other).ok(),
                    "{} is a copy of {}: drop it (the series reads the inherited patch)",
                    own.display(),
                    other.display()
                );
            }
        }
    }
    for name in &listed {
        let path = series.diff(name);
        let diff = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (listed in the manifest)", path.display()));
        assert!(
            patched_files(&diff).iter().all(|f| f.starts_with("xen/")),
            "{name}.diff: paths must be relative to the top of the tree (xen/...)"
        );
        assert!(
            !patched_files(&diff).is_empty(),
            "{name}.diff names no file"
        );
    }
    listed
}

/// Fast tier: every series' manifest parses and matches the patches on disk.
#[test]
fn corpus_manifest_matches_patches() {
    for series in SERIES {
        let manifest = fs::read_to_string(series.manifest()).unwrap();
        let cases = parse_manifest(&manifest);
        check_corpus_files(series, &cases);
        assert!(
            cases.len() >= 8,
            "{}: the corpus shrank to {} case(s)",
            series.manifest().display(),
            cases.len()
        );
        for code in [0, 1, 2, 3] {
            assert!(
                cases.iter().any(|c| c.exit == code && !c.known_bug),
                "{}: no passing case for exit {code}",
                series.manifest().display()
            );
        }
    }
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE (ci/test runs it)"]
fn corpus_on_real_xen() {
    run_corpus(S417, &xen_tree("XSPLICE_XEN_TREE"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_420 (ci/test runs it)"]
fn corpus_on_real_xen_420() {
    run_corpus(S420, &xen_tree("XSPLICE_XEN_TREE_420"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_421 (ci/test runs it)"]
fn corpus_on_real_xen_421() {
    run_corpus(S421, &xen_tree("XSPLICE_XEN_TREE_421"));
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_422 (ci/test runs it)"]
fn corpus_on_real_xen_422() {
    run_corpus(S422, &xen_tree("XSPLICE_XEN_TREE_422"));
}

/// The stable fixes between RELEASE-4.21.0 and RELEASE-4.21.1, each alone
/// on 4.21.0 (`ci/xen-tree 4.21.0`), as a distro on 4.21.0 would ship them.
#[test]
#[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE_4210 (ci/test runs it)"]
fn corpus_on_real_xen_4210() {
    run_corpus(S4210, &xen_tree("XSPLICE_XEN_TREE_4210"));
}

fn run_corpus(series: Series, tree: &Path) {
    let tree = tree.to_path_buf();
    let manifest = fs::read_to_string(series.manifest()).unwrap();
    let cases = parse_manifest(&manifest);
    // XSPLICE_CORPUS_ONLY=a,b runs only those cases (while developing).
    let only: Option<BTreeSet<String>> = std::env::var("XSPLICE_CORPUS_ONLY")
        .ok()
        .map(|v| list(&v).into_iter().collect());

    let listed = check_corpus_files(series, &cases);

    // The whole tree, by size and mtime (plus the patched files' bytes).
    let all_touched: BTreeSet<PathBuf> = cases
        .iter()
        .flat_map(|c| {
            let d = fs::read_to_string(series.diff(&c.name)).unwrap();
            patched_files(&d)
        })
        .map(|f| tree.join(f))
        .collect();
    let before = Snapshot::take(&tree, Contents::Only(all_touched));

    // Shared by every case and kept between runs: the base is built once.
    // The cache ci/test warms (XSPLICE_CACHE_DIR) when set, so CI builds
    // the base once; else one under the target dir.
    let cache = std::env::var_os("XSPLICE_CACHE_DIR")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus-cache"));
    let scratch = tempfile::tempdir().unwrap();
    let xen_syms = create_diff_object::XenSyms::load(&tree.join("xen/xen-syms")).unwrap();

    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    let mut rows = Vec::new();
    for case in &cases {
        if only.as_ref().is_some_and(|o| !o.contains(&case.name)) {
            continue;
        }
        let (problems, summary, secs) =
            check_case(series, case, &tree, &cache, scratch.path(), &xen_syms);
        let verdict = match (problems.is_empty(), case.known_bug) {
            (true, false) => "ok",
            (false, false) => "FAIL",
            (false, true) => "known-bug",
            (true, true) => "FIXED?",
        };
        eprintln!(
            "corpus: {:<26} {:>7.2} s  {verdict:<9} {summary}",
            case.name, secs
        );
        for p in &problems {
            eprintln!("corpus:     {p}");
        }
        rows.push((case.name.clone(), secs));
        let entry = format!("{}: {}", case.name, problems.join("; "));
        match (problems.is_empty(), case.known_bug) {
            (false, false) => failures.push(entry),
            (false, true) => known.push(entry),
            (true, true) => fixed.push(case.name.clone()),
            (true, false) => {}
        }
    }
    if let Some(o) = &only {
        let unknown: Vec<_> = o.iter().filter(|n| !listed.contains(n.as_str())).collect();
        assert!(
            unknown.is_empty(),
            "XSPLICE_CORPUS_ONLY names unknown cases {unknown:?}"
        );
        eprintln!(
            "corpus: XSPLICE_CORPUS_ONLY set: {} of {} case(s) run",
            rows.len(),
            cases.len()
        );
    }
    let total: f64 = rows.iter().map(|(_, s)| s).sum();
    eprintln!("corpus: {} case(s) in {total:.1} s", rows.len());

    let changed = before.changed();
    if !changed.is_empty() {
        let first: Vec<_> = changed.iter().take(10).collect();
        failures.push(format!("the source tree changed: {first:?}"));
    }

    if !known.is_empty() {
        eprintln!("corpus: {} KNOWN BUG(S), expected to fail:", known.len());
        for k in &known {
            eprintln!("corpus:   KNOWN BUG {k}");
        }
    }
    for f in &fixed {
        failures.push(format!(
            "{f}: marked known-bug in MANIFEST but now passes: drop the mark"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} corpus case(s) failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
