//! Type sizes from a Xen tree without DWARF: compile a tiny C file with the
//! compiler command Xen itself recorded for one of its objects (so every
//! `-I`, `-D` and `-include` matches the build), sizing one char array per
//! wanted expression, and read the array sizes back from the symbol table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use object::{Object, ObjectSymbol};

use super::facts::{xen_dir, SpecialSizes, ALT_CALL_SIZE};
use crate::error::Error;
use crate::kbuild;

const SYMBOL_PREFIX: &str = "xsplice_build_probe_";

/// The compile command of one C object of the tree, as argv, without its
/// input, output and dependency-file options.
pub(crate) fn compile_command(xen: &Path) -> Result<Vec<String>, Error> {
    let preferred = xen.join("common/.kernel.o.cmd");
    let candidates = std::iter::once(preferred).chain(
        std::fs::read_dir(xen.join("common"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.') && n.ends_with(".o.cmd"))
            }),
    );
    for cmd_file in candidates {
        let Ok(text) = std::fs::read_to_string(&cmd_file) else {
            continue;
        };
        let Some(command) = kbuild::first_command(&text) else {
            continue;
        };
        let words = kbuild::words(&command).map_err(|e| Error::Malformed {
            path: cmd_file.clone(),
            what: format!("cannot split the recorded command: {e}"),
        })?;
        if !words.iter().any(|w| w.ends_with(".c")) {
            continue;
        }
        return Ok(strip_io_options(&words));
    }
    Err(Error::Unsupported(format!(
        "{}: no recorded compile command (common/.*.o.cmd); build the tree first",
        xen.display()
    )))
}

fn strip_io_options(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-MF" | "-MQ" | "-MT" | "-o" | "-c" => {
                it.next();
            }
            "-MMD" | "-MD" | "-MP" | "-Werror" => {}
            w if w.starts_with("-Wp,-M") => {}
            _ => out.push(w.clone()),
        }
    }
    out
}

/// A scratch directory removed on drop (the probe never writes into the tree).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "xsplice-probe-{}-{}-{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Evaluate integer constant expressions (`sizeof(...)`, `offsetof`) in the
/// tree's own compilation environment. `includes` are `<header>` names;
/// `exprs` are (key, C expression) pairs; returns key → value.
pub fn evaluate(
    tree: &Path,
    includes: &[&str],
    exprs: &[(&str, &str)],
) -> Result<HashMap<String, u64>, Error> {
    let xen = xen_dir(tree)
        .ok_or_else(|| Error::Unsupported(format!("{}: not a Xen source tree", tree.display())))?;
    let command = compile_command(&xen)?;
    let Some((compiler, args)) = command.split_first() else {
        return Err(Error::Unsupported(format!(
            "{}: empty recorded compile command",
            xen.display()
        )));
    };
    let mut source = String::from("/* type-size probe */\n");
    for inc in includes {
        source.push_str(&format!("#include <{inc}>\n"));
    }
    for (key, expr) in exprs {
        // +1 so that a zero value still gives a symbol with a size.
        source.push_str(&format!("char {SYMBOL_PREFIX}{key}[({expr}) + 1];\n"));
    }
    // Callers ask the same questions per object (and from several threads):
    // compile each probe once per process.
    type Cache =
        Mutex<HashMap<(PathBuf, Vec<String>, String), Result<HashMap<String, u64>, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (xen.clone(), command.clone(), source.clone());
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(hit) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return hit.map_err(Error::Unsupported);
    }
    let disk = cache_dir().and_then(|dir| DiskEntry::new(dir, compiler, args, &source));
    let result = match disk.as_ref().and_then(|d| d.load(&xen)) {
        Some(kept) => kept,
        None => compile_probe(&xen, compiler, args, &source, exprs, disk.as_ref()),
    };
    if let Ok(mut c) = cache.lock() {
        c.insert(
            key,
            result
                .as_ref()
                .map(Clone::clone)
                .map_err(ToString::to_string),
        );
    }
    result
}

/// Where probe results are kept across processes: set by the driver (its
/// cache directory), else `$XSPLICE_CACHE_DIR`, `$XDG_CACHE_HOME/xsplice-build`
/// or `~/.cache/xsplice-build`, under `probe/`.
static CACHE_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Keep probe results under `dir` (first call wins; `None`: no disk cache).
pub fn set_cache_dir(dir: Option<PathBuf>) {
    let _ = CACHE_DIR.set(dir);
}

fn cache_dir() -> Option<&'static Path> {
    CACHE_DIR
        .get_or_init(|| crate::cache::default_dir().map(|(d, _)| d.join("probe")))
        .as_deref()
}

/// A probe's result on disk, keyed by the compiler (resolved path, size,
/// mtime), its arguments and the probe's source; valid while every file
/// the compiler read (its dependency list) keeps its size and mtime.
struct DiskEntry {
    path: PathBuf,
    /// Dependencies changed this recently (mtime or ctime) are not trusted.
    racy_seconds: i64,
}

const DISK_FORMAT: &str = "xsplice-build probe cache v2";

/// Files changed this recently may change again without a new mtime:
/// results that read them are not kept.
const RACY_SECONDS: i64 = 2;

/// Size, mtime, ctime and inode: any write changes one of them.
type Stamp = (u64, (i64, i64), (i64, i64), u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.size(),
        (m.mtime(), m.mtime_nsec()),
        (m.ctime(), m.ctime_nsec()),
        m.ino(),
    ))
}

/// A probe cache file (JSON): the files the compiler read with their
/// stamps, and what the probe gave.
#[derive(serde::Serialize, serde::Deserialize)]
struct DiskRecord {
    format: String,
    /// Paths relative to `xen/`.
    deps: Vec<(String, Stamp)>,
    outcome: DiskOutcome,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum DiskOutcome {
    Values(std::collections::BTreeMap<String, u64>),
    /// The probe's failure, without the tree's path (copies of a tree
    /// share the entry).
    Failed(String),
}

impl DiskEntry {
    fn new(dir: &Path, compiler: &str, args: &[String], source: &str) -> Option<DiskEntry> {
        let resolved = if compiler.contains('/') {
            Some(PathBuf::from(compiler))
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(compiler))
                    .find(|p| p.is_file())
            })
        }?;
        let real = std::fs::canonicalize(&resolved).ok()?;
        let mut h = blake3::Hasher::new();
        let mut field = |b: &[u8]| {
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        };
        field(DISK_FORMAT.as_bytes());
        field(real.as_os_str().as_encoded_bytes());
        let st = stamp(&real)?;
        field(format!("{} {:?}", st.0, st.1).as_bytes());
        for a in args {
            field(a.as_bytes());
        }
        field(source.as_bytes());
        Some(DiskEntry {
            path: dir.join(h.finalize().to_hex().as_str()),
            racy_seconds: RACY_SECONDS,
        })
    }

    /// The kept values (or failure), if every dependency is unchanged.
    fn load(&self, xen: &Path) -> Option<Result<HashMap<String, u64>, Error>> {
        let data = std::fs::read(&self.path).ok()?;
        let record: DiskRecord = serde_json::from_slice(&data).ok()?;
        if record.format != DISK_FORMAT {
            return None;
        }
        for (dep, kept) in &record.deps {
            if stamp(&xen.join(dep)) != Some(*kept) {
                return None;
            }
        }
        Some(match record.outcome {
            DiskOutcome::Failed(why) => {
                Err(Error::Unsupported(format!("{}: {why}", xen.display())))
            }
            DiskOutcome::Values(values) => Ok(values.into_iter().collect()),
        })
    }

    /// Keep `values`, with the stamps of the files in make-style `depfile`
    /// (skipped when one is unreadable, oddly named or just changed).
    fn store(
        &self,
        xen: &Path,
        depfile: &str,
        source: &Path,
        result: Result<&HashMap<String, u64>, &str>,
    ) {
        let Some(deps) = depfile.split_once(':').map(|(_, d)| d) else {
            return;
        };
        if deps.contains("\\ ") {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(i64::MAX);
        let mut kept = Vec::new();
        for dep in deps.split_whitespace().filter(|d| *d != "\\") {
            // The probe's own source, in a scratch directory.
            if Path::new(dep) == source {
                continue;
            }
            let Some(st) = stamp(&xen.join(dep)) else {
                return;
            };
            if st.1 .0.max(st.2 .0) >= now - self.racy_seconds {
                return;
            }
            kept.push((dep.to_string(), st));
        }
        let outcome = match result {
            Ok(values) => {
                DiskOutcome::Values(values.iter().map(|(k, v)| (k.clone(), *v)).collect())
            }
            Err(why) => {
                let prefix = format!("{}: ", xen.display());
                DiskOutcome::Failed(why.strip_prefix(&prefix).unwrap_or(why).to_string())
            }
        };
        let record = DiskRecord {
            format: DISK_FORMAT.to_string(),
            deps: kept,
            outcome,
        };
        let Ok(text) = serde_json::to_vec(&record) else {
            return;
        };
        let Some(dir) = self.path.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(
            ".tmp.{}.{}",
            std::process::id(),
            self.path.file_name().unwrap_or_default().to_string_lossy()
        ));
        if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, &self.path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn compile_probe(
    xen: &Path,
    compiler: &str,
    args: &[String],
    source: &str,
    exprs: &[(&str, &str)],
    disk: Option<&DiskEntry>,
) -> Result<HashMap<String, u64>, Error> {
    let scratch = Scratch::new()?;
    let src = scratch.0.join("probe.c");
    let obj = scratch.0.join("probe.o");
    let dep = scratch.0.join("probe.d");
    std::fs::write(&src, source).map_err(|source| Error::Io {
        path: src.clone(),
        source,
    })?;
    let output = Command::new(compiler)
        .args(args)
        .arg("-fno-common")
        .arg("-MD")
        .arg("-MF")
        .arg(&dep)
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .current_dir(xen)
        .output()
        .map_err(|source| Error::Io {
            path: PathBuf::from(compiler),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| l.contains("error")).unwrap_or("");
        let why = format!(
            "{}: type-size probe did not compile with the tree's command: {}",
            xen.display(),
            first.trim()
        );
        // Failures are kept too (a header that needs context fails every
        // time): the compiler lists what it read when only preprocessing.
        if let Some(disk) = disk {
            let listed = Command::new(compiler)
                .args(args)
                .arg("-M")
                .arg("-MG")
                .arg("-MF")
                .arg(&dep)
                .arg(&src)
                .current_dir(xen)
                .output()
                .is_ok_and(|o| o.status.success());
            if let (true, Ok(depfile)) = (listed, std::fs::read_to_string(&dep)) {
                disk.store(xen, &depfile, &src, Err(&why));
            }
        }
        return Err(Error::Unsupported(why));
    }
    let data = std::fs::read(&obj).map_err(|source| Error::Io {
        path: obj.clone(),
        source,
    })?;
    let file = object::File::parse(&*data).map_err(|e| Error::Malformed {
        path: obj.clone(),
        what: e.to_string(),
    })?;
    let mut out = HashMap::new();
    for sym in file.symbols() {
        if let Some(key) = sym.name().ok().and_then(|n| n.strip_prefix(SYMBOL_PREFIX)) {
            if sym.size() > 0 {
                out.insert(key.to_string(), sym.size() - 1);
            }
        }
    }
    for (key, _) in exprs {
        if !out.contains_key(*key) {
            return Err(Error::Unsupported(format!(
                "{}: type-size probe gave no value for {key}",
                xen.display()
            )));
        }
    }
    if let (Some(disk), Ok(depfile)) = (disk, std::fs::read_to_string(&dep)) {
        disk.store(xen, &depfile, &src, Ok(&out));
    }
    Ok(out)
}

/// Special-section entry sizes as the tree's compiler lays the structs out.
pub fn special_sizes(tree: &Path) -> Result<SpecialSizes, Error> {
    let xen = xen_dir(tree)
        .ok_or_else(|| Error::Unsupported(format!("{}: not a Xen source tree", tree.display())))?;
    // Newer trees moved struct bug_frame to a common header.
    let bug_header = if xen.join("include/xen/bug.h").is_file() {
        "xen/bug.h"
    } else {
        "asm/bug.h"
    };
    // Arm has no `.ex_table` and no struct for it: only ask where there is.
    let config = xen.join(".config");
    let has_ex_table = std::fs::read_to_string(&config)
        .ok()
        .and_then(|text| crate::arch::from_config(&config, &text).ok())
        .is_none_or(|arch| arch.ex_table_struct().is_some());
    let mut headers = vec!["xen/lib.h", "asm/alternative.h", bug_header];
    let mut exprs = vec![
        ("bug_frame", "sizeof(struct bug_frame)"),
        ("alt_instr", "sizeof(struct alt_instr)"),
    ];
    if has_ex_table {
        headers.push("asm/uaccess.h");
        // x86's probe text stays what it was (its cache entries with it).
        exprs.insert(1, ("ex_table", "sizeof(struct exception_table_entry)"));
    }
    let values = evaluate(&xen, &headers, &exprs)?;
    let get = |k: &str| values.get(k).copied().unwrap_or(0);
    Ok(SpecialSizes {
        bug_frame: get("bug_frame"),
        ex_table: get("ex_table"),
        alt_instr: get("alt_instr"),
        alt_call: ALT_CALL_SIZE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_io() {
        let w: Vec<String> =
            "gcc -MMD -MP -MF d -O2 -Wp,-MD,x -c a.c -o a.o -MQ a.o -Werror -I./include"
                .split(' ')
                .map(String::from)
                .collect();
        assert_eq!(strip_io_options(&w), vec!["gcc", "-O2", "-I./include"]);
    }

    /// Results kept on disk are used while the headers the compiler read
    /// keep their size and mtime, and recomputed when one changes;
    /// failures are kept too.
    #[test]
    fn disk_cache_follows_the_headers() {
        let dir = tempfile::tempdir().unwrap();
        let xen = dir.path().join("xen");
        std::fs::create_dir_all(xen.join("include")).unwrap();
        let header = xen.join("include/s.h");
        let age = |p: &Path| {
            // Old enough not to be racy.
            let st = Command::new("touch")
                .args(["-d", "2020-01-01 00:00:00"])
                .arg(p)
                .status()
                .unwrap();
            assert!(st.success());
        };
        std::fs::write(&header, "struct s { char a[37]; };\n").unwrap();
        age(&header);
        let args = vec!["-O2".to_string(), "-I./include".to_string()];
        let source = "#include <s.h>\nchar xsplice_build_probe_s[sizeof(struct s) + 1];\n";
        let exprs = [("s", "sizeof(struct s)")];
        let cache = dir.path().join("cache");
        let mut disk = DiskEntry::new(&cache, "cc", &args, source).unwrap();
        // The files were just written: trust them at once (ctime tells
        // their rewrites apart).
        disk.racy_seconds = i64::MIN / 2;
        assert!(disk.load(&xen).is_none());
        let v = compile_probe(&xen, "cc", &args, source, &exprs, Some(&disk)).unwrap();
        assert_eq!(v["s"], 37);
        assert_eq!(disk.load(&xen).unwrap().unwrap()["s"], 37);
        // Another entry for another source.
        let other = DiskEntry::new(&cache, "cc", &args, "int x;\n").unwrap();
        assert!(other.load(&xen).is_none());
        // A changed header invalidates the entry.
        std::fs::write(&header, "struct s { char a[41]; };\n").unwrap();
        age(&header);
        assert!(disk.load(&xen).is_none());
        let v = compile_probe(&xen, "cc", &args, source, &exprs, Some(&disk)).unwrap();
        assert_eq!(v["s"], 41);
        assert_eq!(disk.load(&xen).unwrap().unwrap()["s"], 41);
        // A failing probe is kept as a failure.
        std::fs::write(&header, "struct t { char a[41]; };\n").unwrap();
        age(&header);
        assert!(compile_probe(&xen, "cc", &args, source, &exprs, Some(&disk)).is_err());
        let kept = disk.load(&xen).unwrap().unwrap_err().to_string();
        assert!(kept.contains("did not compile"), "{kept}");
        // A damaged record is a miss, never an answer.
        let good = std::fs::read(&disk.path).unwrap();
        std::fs::write(&disk.path, &good[..good.len() / 2]).unwrap();
        assert!(disk.load(&xen).is_none());
        std::fs::write(
            &disk.path,
            String::from_utf8(good).unwrap().replace("v2", "v1"),
        )
        .unwrap();
        assert!(disk.load(&xen).is_none(), "a record of another format");
    }

    /// A synthetic tree whose recorded command is the system cc: the probe
    /// must evaluate expressions against the tree's own headers.
    #[test]
    fn evaluates_against_tree_headers() {
        let dir = tempfile::tempdir().unwrap();
        let xen = dir.path().join("xen");
        std::fs::create_dir_all(xen.join("include/public")).unwrap();
        std::fs::create_dir_all(xen.join("common")).unwrap();
        std::fs::write(
            xen.join("include/public/sysctl.h"),
            "struct s { char a[37]; };\n",
        )
        .unwrap();
        std::fs::write(
            xen.join("common/.kernel.o.cmd"),
            "cmd_common/kernel.o := cc -MMD -MF common/.kernel.o.d -O2 -I./include -c common/kernel.c -o common/kernel.o\n",
        )
        .unwrap();
        let v = evaluate(
            dir.path(),
            &["public/sysctl.h"],
            &[("s", "sizeof(struct s)"), ("zero", "0")],
        )
        .unwrap();
        assert_eq!(v["s"], 37);
        assert_eq!(v["zero"], 0);
        // Nothing written into the tree.
        assert!(!xen.join("common/.kernel.o.d").exists());
        let err = evaluate(
            dir.path(),
            &["public/sysctl.h"],
            &[("t", "sizeof(struct nope)")],
        )
        .unwrap_err();
        assert!(err.to_string().contains("did not compile"), "{err}");
    }
}
