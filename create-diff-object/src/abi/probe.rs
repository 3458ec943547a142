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

use crate::abi::{xen_dir, SpecialSizes};
use crate::error::Error;

const SYMBOL_PREFIX: &str = "xsplice_build_probe_";

/// Split a shell command line as `make` recorded it (quotes and backslashes).
pub(crate) fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => return Err("trailing backslash".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("trailing backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

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
        let Some(line) = text
            .lines()
            .find(|l| l.starts_with("cmd_") && l.contains(" := "))
        else {
            continue;
        };
        let Some((_, command)) = line.split_once(" := ") else {
            continue;
        };
        let words = shell_words(command).map_err(|e| Error::Malformed {
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
    let result = compile_probe(&xen, compiler, args, &source, exprs);
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

fn compile_probe(
    xen: &Path,
    compiler: &str,
    args: &[String],
    source: &str,
    exprs: &[(&str, &str)],
) -> Result<HashMap<String, u64>, Error> {
    let scratch = Scratch::new()?;
    let src = scratch.0.join("probe.c");
    let obj = scratch.0.join("probe.o");
    std::fs::write(&src, source).map_err(|source| Error::Io {
        path: src.clone(),
        source,
    })?;
    let output = Command::new(compiler)
        .args(args)
        .arg("-fno-common")
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
        return Err(Error::Unsupported(format!(
            "{}: type-size probe did not compile with the tree's command: {}",
            xen.display(),
            first.trim()
        )));
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
    let values = evaluate(
        &xen,
        &[
            "xen/lib.h",
            "asm/alternative.h",
            bug_header,
            "asm/uaccess.h",
        ],
        &[
            ("bug_frame", "sizeof(struct bug_frame)"),
            ("ex_table", "sizeof(struct exception_table_entry)"),
            ("alt_instr", "sizeof(struct alt_instr)"),
        ],
    )?;
    let get = |k: &str| values.get(k).copied().unwrap_or(0);
    Ok(SpecialSizes {
        bug_frame: get("bug_frame"),
        ex_table: get("ex_table"),
        alt_instr: get("alt_instr"),
        alt_call: crate::abi::ALT_CALL_SIZE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            shell_words("gcc -c 'a b' \"c\\\"d\" e\\ f  -o x").unwrap(),
            vec!["gcc", "-c", "a b", "c\"d", "e f", "-o", "x"]
        );
        assert!(shell_words("gcc 'oops").is_err());
    }

    #[test]
    fn strips_io() {
        let w: Vec<String> =
            "gcc -MMD -MP -MF d -O2 -Wp,-MD,x -c a.c -o a.o -MQ a.o -Werror -I./include"
                .split(' ')
                .map(String::from)
                .collect();
        assert_eq!(strip_io_options(&w), vec!["gcc", "-O2", "-I./include"]);
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
