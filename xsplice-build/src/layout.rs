//! Layout check: the changed units compiled a second time with `-g`, so
//! that `create_diff_object::type_layout` can compare the type layouts of the
//! original and patched builds (the hypervisor's own build has no debug
//! info). Only the changed objects are compiled, each with its own recorded
//! command (`.X.o.cmd`) plus `-g`, writing only into the output directory:
//! no dependency file, no object in the tree. The original is compiled in
//! the pristine base tree, the patched one in the patched working copy
//! before it is restored.

use std::path::{Path, PathBuf};
use std::process::Command;

use create_diff_object::type_layout::{self, LayoutNote};
use create_diff_object::{Refusal, XenSyms};
use rayon::prelude::*;

use crate::error::Error;
use crate::progress::Log;
use crate::stages::ObjectDiff;
use xsplice_target::kbuild;

/// Where the `-g` builds of an object go: `DIR/objects/debug/{base,patched}/<object>`.
pub fn debug_object(objects_dir: &Path, side: &str, object: &str) -> PathBuf {
    objects_dir.join("debug").join(side).join(object)
}

/// The object whose compile command makes `object` (`X.init.o` is made from `X.o`).
fn compiled_target(object: &str) -> String {
    match object.strip_suffix(".init.o") {
        Some(stem) => format!("{stem}.o"),
        None => object.to_string(),
    }
}

/// The recorded compile command of `target`, rewritten to write only
/// `output` (no dependency file) and to emit debug info. `None` when the
/// record is missing or is not a C compile.
pub fn debug_command(cmd_file_text: &str, target: &str, output: &Path) -> Option<String> {
    let line = kbuild::command(cmd_file_text, target).ok()?;
    let words = kbuild::words(&line).ok()?;
    // Only the compiler invocation: anything chained after it post-processes the tree's object.
    let end = words
        .iter()
        .position(|w| matches!(w.as_str(), "&&" | ";" | "||" | "|"))
        .unwrap_or(words.len());
    let words = &words[..end];
    let source = words
        .iter()
        .position(|w| w == "-c")
        .and_then(|i| words.get(i + 1))?;
    if !source.ends_with(".c") {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        match w.as_str() {
            "-MMD" | "-MP" | "-MD" => {}
            "-MF" | "-MQ" | "-MT" | "-o" => skip_next = true,
            _ if w.starts_with("-Wp,-MD") || w.starts_with("-Wp,-MMD") => {}
            _ => out.push(w.clone()),
        }
    }
    // Types and declarations only: variable tracking (location lists) is
    // most of what -g costs at -O2, and the layout check reads no locations.
    out.extend(
        [
            "-g",
            // Every type the unit's headers define, used here or not: an
            // enum whose constants alone are used is otherwise left out.
            "-fno-eliminate-unused-debug-types",
            "-fno-var-tracking",
            "-fno-var-tracking-assignments",
            "-o",
        ]
        .map(String::from),
    );
    out.push(output.to_string_lossy().into_owned());
    kbuild::join(&out).ok()
}

/// One unit to compile with `-g`: its recorded command run in `xen_dir`.
struct Job {
    object: String,
    xen_dir: PathBuf,
    output: PathBuf,
    /// Where a copy is kept between runs (the base side: its sources and
    /// command never change for a cache entry).
    cached: Option<PathBuf>,
}

/// The directory of a base cache entry that keeps the base side's `-g`
/// builds; its name changes with the flags `debug_command` adds.
pub const DEBUG_CACHE: &str = "layout-debug-v1";

/// One tree the changed units are compiled in.
pub struct Side<'a> {
    /// The tree's `xen/` directory.
    pub xen_dir: &'a Path,
    /// `base` or `patched`: where the objects go under `objects/debug/`.
    pub name: &'a str,
    /// A directory keeping this side's builds between runs, if it never changes.
    pub cache: Option<&'a Path>,
    /// Where this side's objects of the ordinary build are (`objects/base`,
    /// `objects/patched`), to tell units whose code and data did not change.
    pub objects: Option<&'a Path>,
}

/// Whether two relocatable objects have the same allocated sections (names,
/// bytes, relocations by target name) and the same symbols in them: they
/// differ at most in debug info and other sections nothing loads.
pub fn same_code_and_data(a: &Path, b: &Path) -> bool {
    let read = |p: &Path| std::fs::read(p).ok();
    let (Some(da), Some(db)) = (read(a), read(b)) else {
        return false;
    };
    if da == db {
        return true;
    }
    let (Ok(fa), Ok(fb)) = (object::File::parse(&*da), object::File::parse(&*db)) else {
        return false;
    };
    match (loaded(&fa), loaded(&fb)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// What an object brings into the image: each allocated section's name,
/// bytes and relocations (offset, flags, addend, target by name), and each
/// symbol of those sections (name, section, value, size).
type Loaded = (Vec<(String, Vec<u8>, Vec<String>)>, Vec<String>);

fn loaded(f: &object::File<'_>) -> Option<Loaded> {
    use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionFlags};
    let alloc = |sec: &object::Section<'_, '_>| match sec.flags() {
        SectionFlags::Elf { sh_flags } => sh_flags & u64::from(object::elf::SHF_ALLOC) != 0,
        _ => true,
    };
    let target_name = |t: RelocationTarget| -> String {
        match t {
            RelocationTarget::Symbol(i) => f
                .symbol_by_index(i)
                .ok()
                .map(|s| match s.name() {
                    Ok(n) if !n.is_empty() => n.to_string(),
                    _ => s
                        .section_index()
                        .and_then(|x| f.section_by_index(x).ok())
                        .and_then(|x| x.name().ok().map(str::to_string))
                        .unwrap_or_default(),
                })
                .unwrap_or_default(),
            other => format!("{other:?}"),
        }
    };
    let mut sections = Vec::new();
    for sec in f.sections().filter(alloc) {
        let relocs = sec
            .relocations()
            .map(|(off, r)| {
                format!(
                    "{off} {:?} {} {}",
                    r.flags(),
                    r.addend(),
                    target_name(r.target())
                )
            })
            .collect();
        sections.push((
            sec.name().ok()?.to_string(),
            sec.data().ok()?.to_vec(),
            relocs,
        ));
    }
    let mut symbols: Vec<String> = f
        .symbols()
        .filter_map(|s| {
            let sec = f.section_by_index(s.section_index()?).ok()?;
            alloc(&sec).then(|| {
                format!(
                    "{} {} {} {}",
                    s.name().unwrap_or(""),
                    sec.name().unwrap_or(""),
                    s.address(),
                    s.size()
                )
            })
        })
        .collect();
    symbols.sort();
    Some((sections, symbols))
}

/// Compile the changed objects' units with `-g` in each tree of `sides`
/// (the pristine base, whose builds are kept in its cache entry, and the
/// patched working copy), in parallel, a batch of objects at a time.
/// Objects not compiled from C (assembly, no record) are skipped and
/// logged. A header type whose layout changed is refused whatever the
/// payload replaces, so once a batch shows one the remaining objects are
/// not compiled (a change to `struct vcpu` rebuilds hundreds of units).
/// A type in `accepted` (its refusal accepted with `--accept`) does not
/// stop the compiles: the other units' types must still be checked.
/// Returns how many compiles ran.
pub fn compile_debug(
    objects: &[String],
    sides: &[Side<'_>],
    objects_dir: &Path,
    threads: usize,
    accepted: &[String],
    log: &Log,
) -> Result<usize, Error> {
    let threads = threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .ok();
    let mut compiled = 0;
    // A unit whose code and data are the same on both sides (a build with
    // debug info differs in its line tables whenever a header it includes
    // gains a line) does not depend on any changed layout: it is left out,
    // as the units the patch did not rebuild are.
    let objects: Vec<String> = objects
        .iter()
        .filter(|o| {
            let same = sides.iter().all(|s| s.objects.is_some())
                && same_code_and_data(
                    &sides[0].objects.unwrap().join(o.as_str()),
                    &sides[1].objects.unwrap().join(o.as_str()),
                );
            if same {
                log.line(&format!(
                    "# layout check: {o}: code and data unchanged (only debug info differs): \
                     its types are not compared"
                ));
            }
            !same
        })
        .cloned()
        .collect();
    for batch in objects.chunks(threads.max(sides.len()) * 2) {
        let jobs: Vec<Job> = sides
            .iter()
            .flat_map(|side| {
                batch.iter().map(move |o| Job {
                    object: o.clone(),
                    xen_dir: side.xen_dir.to_path_buf(),
                    output: debug_object(objects_dir, side.name, o),
                    cached: side.cache.map(|c| c.join(o)),
                })
            })
            .collect();
        let run = || {
            jobs.par_iter()
                .map(|j| compile_one(j, log))
                .collect::<Vec<_>>()
        };
        let results = match &pool {
            Some(pool) => pool.install(run),
            None => run(),
        };
        for r in results {
            if r? {
                compiled += 1;
            }
        }
        if let Some((obj, name)) = batch
            .iter()
            .find_map(|o| header_change(objects_dir, o, accepted).map(|n| (o, n)))
        {
            log.line(&format!(
                "# layout check: {obj}: header type {name} changed layout, which is refused \
                 whatever the payload replaces: the remaining units are not compiled"
            ));
            break;
        }
    }
    Ok(compiled)
}

/// The first type defined outside the unit's own file whose layout
/// change is refused whatever the payload replaces (an instance or a
/// pointer to one in the unit), if both `-g` builds of `object` are there.
fn header_change(objects_dir: &Path, object: &str, accepted: &[String]) -> Option<String> {
    let read = |side: &str| {
        let path = debug_object(objects_dir, side, object);
        let data = std::fs::read(&path).ok()?;
        type_layout::read_unit(&path, &data).ok()
    };
    let (o, p) = (read("base")?, read("patched")?);
    let header: Vec<String> = type_layout::changed_layouts(&o, &p)
        .into_iter()
        .filter(|(c, _)| !c.local)
        .map(|(c, _)| c.name)
        .collect();
    type_layout::assess(&o, &p, None, &|_, _| None)
        .refusals
        .into_iter()
        .find(|r| header.contains(&r.symbol) && !accepted.contains(&r.symbol))
        .map(|r| r.symbol)
}

fn compile_one(job: &Job, log: &Log) -> Result<bool, Error> {
    let target = compiled_target(&job.object);
    let p = Path::new(&target);
    let record = job
        .xen_dir
        .join(p.parent().unwrap_or(Path::new("")))
        .join(format!(
            ".{}.cmd",
            p.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
    let text = std::fs::read_to_string(&record).unwrap_or_default();
    // The compile runs in the tree: the output path must not be relative to here.
    let output = std::path::absolute(&job.output).map_err(|e| Error::io(&job.output, e))?;
    let Some(cmd) = debug_command(&text, &target, &output) else {
        log.line(&format!(
            "# layout check: {}: no C compile recorded in {}; its types are not checked",
            job.object,
            record.display()
        ));
        return Ok(false);
    };
    if let Some(parent) = job.output.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    if let Some(cached) = job.cached.as_ref().filter(|c| c.is_file()) {
        std::fs::copy(cached, &job.output).map_err(|e| Error::io(&job.output, e))?;
        log.line(&format!(
            "# layout check: {}: -g build of the base from {}",
            job.object,
            cached.display()
        ));
        return Ok(true);
    }
    let mut sh = Command::new("sh");
    sh.arg("-c").arg(&cmd).current_dir(&job.xen_dir);
    log.run(
        &mut sh,
        &format!(
            "compiling {} with -g for the layout check (in {})",
            job.object,
            job.xen_dir.display()
        ),
    )?;
    if let Some(cached) = &job.cached {
        // Best effort: without the copy the next run compiles again.
        if let Err(e) = keep(&job.output, cached) {
            log.line(&format!(
                "# layout check: not kept in {}: {e}",
                cached.display()
            ));
        }
    }
    Ok(true)
}

/// Copy `from` to `to` atomically (a temporary file renamed into place),
/// so concurrent runs never read half a copy.
fn keep(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::copy(from, tmp.path())?;
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(())
}

/// What the layout check found in every changed object: its refusals,
/// and the changed layouts it accepted by a rule that refused them before
/// (warnings), each with its object.
#[derive(Debug, Default)]
pub struct Findings {
    pub refusals: Vec<(String, Refusal)>,
    pub notes: Vec<(String, LayoutNote)>,
}

/// The layout check of every changed object compiled on both sides.
/// `objects` says which functions the payload replaces per object; `None`
/// when the diff failed: then only the refusals of types defined outside
/// the unit, which do not depend on what the payload holds. A refusal of
/// a header type seen in several units is listed once, with how many
/// other units saw it; a note once per type and kind. `syms` places the
/// existing variables whose alignment is checked.
pub fn check(
    changed: &[String],
    objects_dir: &Path,
    objects: Option<&[ObjectDiff]>,
    syms: &XenSyms,
    log: &Log,
) -> Result<Findings, Error> {
    let mut found: Vec<(String, Refusal, Vec<String>)> = Vec::new();
    let mut notes: Vec<(String, LayoutNote)> = Vec::new();
    let mut checked = 0;
    for obj in changed {
        let (o, p) = (
            debug_object(objects_dir, "base", obj),
            debug_object(objects_dir, "patched", obj),
        );
        if !o.is_file() || !p.is_file() {
            log.line(&format!(
                "# layout check: {obj}: no -g build of both sides (not C, code and data \
                 unchanged, or not compiled after an earlier refusal): its types are not compared"
            ));
            continue;
        }
        let read = |path: &Path| -> Result<type_layout::Unit, Error> {
            let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            type_layout::read_unit(path, &data).map_err(|e| Error::Diff {
                object: obj.clone(),
                source: e,
            })
        };
        let (ou, pu) = (read(&o)?, read(&p)?);
        let replaced: Option<Vec<String>> = objects.map(|objects| {
            objects
                .iter()
                .filter(|d| &d.object == obj)
                .flat_map(|d| {
                    d.changed_functions()
                        .iter()
                        .map(|f| f.name.clone())
                        .chain(d.new_functions().iter().cloned())
                })
                .collect()
        });
        checked += 1;
        let changes = type_layout::changed_layouts(&ou, &pu);
        for (change, _) in &changes {
            log.line(&format!(
                "{obj}: layout of {} changed: {}",
                change.name, change.first_difference
            ));
        }
        let source = pu.source.clone();
        let address_of = |name: &str, external: bool| {
            let file = (!external).then_some(source.as_str());
            syms.lookup(name, file).ok().map(|s| s.addr)
        };
        let verdict = type_layout::assess(&ou, &pu, replaced.as_deref(), &address_of);
        for r in verdict.refusals {
            if objects.is_none() && !changes.iter().any(|(c, _)| !c.local && c.name == r.symbol) {
                continue;
            }
            match found
                .iter_mut()
                .find(|(_, f, _)| f.symbol == r.symbol && f.section == r.section)
            {
                Some((_, _, also)) => also.push(obj.clone()),
                None => found.push((obj.clone(), r, Vec::new())),
            }
        }
        for n in verdict.notes {
            log.line(&format!("{obj}: {n}"));
            if !notes
                .iter()
                .any(|(_, m)| m.kind == n.kind && m.type_name == n.type_name)
            {
                notes.push((obj.clone(), n));
            }
        }
    }
    log.line(&format!(
        "# layout check: {checked} unit(s) compared, {} refusal(s), {} accepted change(s)",
        found.len(),
        notes.len()
    ));
    let refusals: Vec<(String, Refusal)> = found
        .into_iter()
        .map(|(obj, mut r, also)| {
            if !also.is_empty() {
                let shown: Vec<&str> = also.iter().take(5).map(String::as_str).collect();
                r.reason.push_str(&format!(
                    "; also changed in {} other changed unit(s): {}{}",
                    also.len(),
                    shown.join(", "),
                    if also.len() > shown.len() {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
            (obj, r)
        })
        .collect();
    // A type refused in one unit is not also "accepted" from another.
    let notes = notes
        .into_iter()
        .filter(|(_, n)| !refusals.iter().any(|(_, r)| r.symbol == n.type_name))
        .collect();
    Ok(Findings { refusals, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_command_is_rewritten_to_a_private_debug_compile() {
        let rec = "cmd_common/grant_table.o := gcc -MMD -MP -MF common/.grant_table.o.d -m64 \
                   -O2 '-D__OBJECT_LABEL__=common/grant_table.o' -DX='$$y' -c common/grant_table.c \
                   -o common/.grant_table.o.tmp -MQ common/grant_table.o\n\nsource_x := y\n";
        let cmd = debug_command(rec, "common/grant_table.o", Path::new("/tmp/o u/t.o")).unwrap();
        // Compared as the shell splits it: the quoting is the joiner's.
        assert_eq!(
            kbuild::words(&cmd).unwrap(),
            [
                "gcc",
                "-m64",
                "-O2",
                "-D__OBJECT_LABEL__=common/grant_table.o",
                "-DX=$y",
                "-c",
                "common/grant_table.c",
                "-g",
                "-fno-eliminate-unused-debug-types",
                "-fno-var-tracking",
                "-fno-var-tracking-assignments",
                "-o",
                "/tmp/o u/t.o"
            ]
        );
    }

    #[test]
    fn assembly_and_missing_records_are_not_compiled() {
        let rec =
            "cmd_arch/x86/entry.o := gcc -D__ASSEMBLY__ -c arch/x86/entry.S -o arch/x86/entry.o\n";
        assert!(debug_command(rec, "arch/x86/entry.o", Path::new("/t.o")).is_none());
        assert!(debug_command("", "a.o", Path::new("/t.o")).is_none());
        assert!(debug_command(rec, "other.o", Path::new("/t.o")).is_none());
    }

    #[test]
    fn chained_post_processing_is_left_out() {
        let rec = "cmd_a.o := gcc -c a.c -o a.o && objcopy a.o a.init.o\n";
        assert_eq!(
            kbuild::words(&debug_command(rec, "a.o", Path::new("/t.o")).unwrap()).unwrap(),
            [
                "gcc",
                "-c",
                "a.c",
                "-g",
                "-fno-eliminate-unused-debug-types",
                "-fno-var-tracking",
                "-fno-var-tracking-assignments",
                "-o",
                "/t.o"
            ]
        );
        assert_eq!(compiled_target("arch/x86/setup.init.o"), "arch/x86/setup.o");
    }

    /// A unit that only gained a line in a header it includes differs in
    /// its debug info, not in what it loads; a changed constant differs.
    #[test]
    fn units_differing_only_in_debug_info_have_the_same_code_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let build = |name: &str, text: &str| {
            let src = dir.path().join(format!("{name}.c"));
            std::fs::write(&src, text).unwrap();
            let obj = dir.path().join(format!("{name}.o"));
            let ok = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args(["-g", "-O2", "-ffunction-sections", "-fdata-sections", "-c"])
                .arg(&src)
                .arg("-o")
                .arg(&obj)
                .status()
                .expect("running the C compiler")
                .success();
            assert!(ok);
            obj
        };
        let body = "int limit = 3;\nint scale(int x) { return x * limit; }\n";
        let a = build("a", body);
        let b = build("b", &format!("\n\n/* a header line */\n{body}"));
        let c = build("c", &body.replace("x * limit", "x * limit + 1"));
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(same_code_and_data(&a, &b));
        assert!(!same_code_and_data(&a, &c));
        assert!(!same_code_and_data(&a, &dir.path().join("missing.o")));
    }
}
