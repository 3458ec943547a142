//! Base build (cached) and patched build.
//!
//! The base build is a normal Xen build of a private copy of the user's
//! tree, with the build date/host strings pinned so that it reproduces the
//! hypervisor bit for bit. It lives in the cache under a key made from the
//! sources, the .config, the toolchain and the build flags, and is made in
//! a temporary directory renamed into place only when complete, so an
//! interrupted run never leaves a half-built entry.
//!
//! The patched build runs in a fresh copy of the cached base: the patch is
//! applied, then only the objects that include a touched file are rebuilt
//! (found in the base build's `.*.o.cmd` dependency lists) with make's own
//! single-object targets; when that cannot be decided safely (Makefiles,
//! Kconfig, generated files, new files), an ordinary incremental make runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::hash::{Hasher, StatCache};
use crate::progress::Log;
use crate::recipe::Recipe;
use crate::stages::{BaseBuild, PatchedBuild};
use crate::tree::{self, Touch, Touched};
use crate::worktree::Writes;
use xsplice_target::arch::Arch;
use xsplice_target::kbuild::{self, CommandProblem};

/// Environment variables that change what the hypervisor build produces.
const BUILD_ENV: [&str; 7] = [
    "CC",
    "LD",
    "CROSS_COMPILE",
    "XEN_TARGET_ARCH",
    "EXTRA_CFLAGS_XEN_CORE",
    "OBJCOPY",
    "CLANG",
];

/// Whether `path` exists and was written at or after `since`.
fn rebuilt_since(path: &Path, since: std::time::SystemTime) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| t >= since)
        .unwrap_or(false)
}

/// Bump when the cache layout or the build recipe changes (v3: the
/// dependency records are JSON, `dep-records.json`).
const CACHE_FORMAT: &str = "xsplice-build base cache v3";

/// How make is run (shared by base and patched builds, so the recorded
/// compile commands match and nothing is rebuilt needlessly).
#[derive(Debug, Clone)]
pub struct MakeConfig {
    pub jobs: usize,
    pub xen_debug: bool,
    /// The build recipe: make arguments and build strings (`crate::recipe`).
    pub recipe: Recipe,
    /// The top the recipe's arguments name. `None`: the tree being built.
    /// Patched builds use the base's, so make sees the commands it
    /// recorded and rebuilds only what the patch touches.
    pub top: Option<PathBuf>,
    /// Helper programs the recipe needs, put first on PATH.
    pub helpers: Option<PathBuf>,
    /// A directory whose compiler names run ccache, put first in make's
    /// PATH (`--ccache`). Not part of the cache key: the recorded compile
    /// commands and every output byte are the same without it.
    pub compiler_launcher: Option<PathBuf>,
}

impl MakeConfig {
    /// Make for `recipe` in the tree being built, with no helpers or launcher.
    pub fn new(jobs: usize, xen_debug: bool, recipe: Recipe) -> MakeConfig {
        MakeConfig {
            jobs,
            xen_debug,
            recipe,
            top: None,
            helpers: None,
            compiler_launcher: None,
        }
    }

    pub fn command(&self, xen_dir: &Path) -> Command {
        let mut cmd = Command::new(std::env::var("MAKE").unwrap_or_else(|_| "make".into()));
        cmd.arg("-C")
            .arg(xen_dir)
            .arg(format!("-j{}", self.jobs.max(1)));
        if self.xen_debug {
            cmd.arg("debug=y");
        }
        let top = self
            .top
            .clone()
            .unwrap_or_else(|| xen_dir.parent().unwrap_or(xen_dir).to_path_buf());
        cmd.args(self.recipe.args_for(&top));
        self.apply_env(&mut cmd);
        cmd
    }

    /// The environment make runs in, for commands run in its place too
    /// (replayed compile commands).
    pub fn apply_env(&self, cmd: &mut Command) {
        for (k, v) in &self.recipe.env {
            cmd.env(k, v);
        }
        // The recipe's helpers, then the ccache launcher, before PATH.
        let first: Vec<PathBuf> = [&self.helpers, &self.compiler_launcher]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if !first.is_empty() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let mut dirs = first;
            dirs.extend(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(dirs) {
                cmd.env("PATH", joined);
            }
        }
    }
}

/// The cache root: `--cache-dir`, `$XSPLICE_CACHE_DIR`, `$XDG_CACHE_HOME/xsplice-build`,
/// `~/.cache/xsplice-build`.
pub fn cache_root(opt: Option<&Path>) -> Result<PathBuf, Error> {
    cache_root_and_source(opt).map(|(p, _)| p)
}

/// [`cache_root`] and what chose it: the option or environment variable
/// a user changes to move the cache.
pub fn cache_root_and_source(opt: Option<&Path>) -> Result<(PathBuf, &'static str), Error> {
    if let Some(p) = opt {
        return Ok((p.to_path_buf(), "--cache-dir"));
    }
    xsplice_target::cache::default_dir().ok_or(Error::Input(crate::error::Problem::NoCacheDir))
}

/// Compiler names make may run besides each architecture's `TRIPLET-gcc`;
/// under `--ccache` each is a link to ccache, which then runs the real
/// compiler of that name found later in PATH.
const LAUNCHED_COMPILERS: &[&str] = &["gcc", "cc", "clang"];

/// The `--ccache` directory: links named like the compilers, to ccache
/// (ccache's "masquerade" mode, so the compile commands make records do not
/// change). Made once under the cache root.
pub fn ccache_launcher(cache: &Path) -> Result<PathBuf, Error> {
    let ccache = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("ccache"))
        .find(|c| c.is_file())
        .ok_or(Error::Input(crate::error::Problem::NoCcache))?;
    let dir = cache.join("ccache-bin");
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let cross = std::env::var("CROSS_COMPILE").unwrap_or_default();
    let names: Vec<String> = LAUNCHED_COMPILERS
        .iter()
        .map(|n| n.to_string())
        .chain(Arch::ALL.iter().map(|a| format!("{}-gcc", a.gnu_triplet())))
        .chain([format!("{cross}gcc")])
        .collect();
    for name in names.iter().map(String::as_str) {
        let link = dir.join(name);
        if fs::read_link(&link).ok().as_deref() == Some(ccache.as_path()) {
            continue;
        }
        // Made beside and renamed, so a concurrent run never sees a half-made link.
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&ccache, &tmp).map_err(|e| Error::io(&tmp, e))?;
        fs::rename(&tmp, &link).map_err(|e| Error::io(&link, e))?;
    }
    Ok(dir)
}

/// A tool's identity without running it: the file `program` resolves to
/// (through `PATH` and symlinks), its size and mtime. A toolchain upgrade
/// replaces the file, so the key changes; nothing is spawned per run.
fn tool_identity(program: &str) -> String {
    let found = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
    };
    let Some(path) = found else {
        return format!("{program}: not found");
    };
    let real = fs::canonicalize(&path).unwrap_or(path);
    match fs::metadata(&real) {
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            format!(
                "{program} {} {} {}.{}",
                real.display(),
                m.size(),
                m.mtime(),
                m.mtime_nsec()
            )
        }
        Err(e) => format!("{program}: {}: {e}", real.display()),
    }
}

/// The cache key: sources, .config, toolchain, flags and pinned strings.
/// `cache` holds the stat cache that spares re-reading unchanged sources.
pub fn base_key(
    srcdir: &Path,
    config: &[u8],
    make: &MakeConfig,
    cache: &Path,
) -> Result<String, Error> {
    let mut h = Hasher::new();
    h.field(CACHE_FORMAT.as_bytes());
    let mut stat = StatCache::load(&cache.join("stat"), srcdir);
    tree::hash_tree(srcdir, &mut h, &mut stat)?;
    stat.save(srcdir);
    h.field(b"config");
    h.field(config);
    h.field(tool_identity(&make.recipe.cc).as_bytes());
    h.field(tool_identity(&make.recipe.ld).as_bytes());
    for k in BUILD_ENV {
        h.field(k.as_bytes());
        h.field(std::env::var(k).unwrap_or_default().as_bytes());
    }
    if make.recipe.name == "upstream" {
        // The upstream recipe's key material predates recipes: the build
        // strings, and a cross build's make arguments.
        for (k, v) in &make.recipe.env {
            h.field(k.as_bytes());
            h.field(v.as_bytes());
        }
        for a in &make.recipe.args {
            h.field(a.as_bytes());
        }
    } else {
        for m in make.recipe.key_material() {
            h.field(m.as_bytes());
        }
    }
    h.field(if make.xen_debug {
        b"debug=y"
    } else {
        b"debug="
    });
    Ok(h.finish_hex())
}

const COMPLETE_MARKER: &str = "complete";

/// Whether the cache holds a complete base build for `key` (what
/// `ensure_base` would use without building).
pub fn has_base(cache: &Path, key: &str) -> bool {
    cache.join(key).join(COMPLETE_MARKER).is_file()
}

/// The entry's manifest of digests (`hash::FileDigests`), written before
/// `complete`.
pub const DIGESTS: &str = "digests.json";

/// The files of an entry a run may read, relative to the entry: the base's
/// objects (the originals of changed objects), its `xen-syms`, make's
/// records of what each target read, and their one-file copy.
fn entry_read_files(entry: &Path) -> Vec<String> {
    let xen = entry.join("tree/xen");
    let mut out: Vec<String> = walkdir::WalkDir::new(&xen)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| {
            let name = e.file_name().to_string_lossy();
            name.ends_with(".o")
                || name == "xen-syms"
                || name.starts_with('.') && (name.ends_with(".cmd") || name.ends_with(".d"))
        })
        .filter_map(|e| {
            e.path()
                .strip_prefix(entry)
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
    if entry.join(DEP_RECORDS).is_file() {
        out.push(DEP_RECORDS.to_string());
    }
    out.sort();
    out
}

/// Record the digests of what runs read from `entry` (complete, or about
/// to be): the one-file copy of the records is made first, so it is covered.
fn record_digests(entry: &Path) -> Result<(), Error> {
    DepIndex::keep(&entry.join("tree/xen"), &entry.join(DEP_RECORDS), None);
    let files = entry_read_files(entry);
    crate::hash::FileDigests::record(entry, &files)?.save(&entry.join(DIGESTS))
}

/// The path of `base`'s xen-syms and of its records, relative to the entry:
/// what every run reads from a cached base.
pub fn base_files_read() -> Vec<String> {
    vec!["tree/xen/xen-syms".to_string(), DEP_RECORDS.to_string()]
}

/// Check that the files `rels` (relative to the entry) of a cached base
/// still have the contents recorded when the entry was completed. An entry
/// made before digests were recorded gets its manifest now (when the cache
/// is writable), from what it holds.
pub fn check_cached(base: &BaseBuild, rels: &[String], log: &Log) -> Result<(), Error> {
    check_entry(base.entry(), rels, log)
}

/// [`check_cached`] for the entry at `entry`.
pub fn check_entry(entry: &Path, rels: &[String], log: &Log) -> Result<(), Error> {
    let path = entry.join(DIGESTS);
    let digests = match crate::hash::FileDigests::load(&path)? {
        Some(d) => d,
        None => {
            log.line(&format!(
                "# {} has no digests (made by an older version): recording them now",
                entry.display()
            ));
            if let Err(e) = record_digests(entry) {
                log.line(&format!(
                    "# cannot record the digests: {e}; files unchecked"
                ));
                return Ok(());
            }
            return Ok(());
        }
    };
    let started = std::time::Instant::now();
    for rel in rels {
        // A file the entry does not hold is not read either (an entry
        // without records falls back to a full make).
        if !digests.files.contains_key(rel) && !entry.join(rel).exists() {
            continue;
        }
        digests.check(entry, rel).map_err(|m| Error::CacheCorrupt {
            entry: entry.to_path_buf(),
            mismatch: Box::new(m),
        })?;
    }
    log.line(&format!(
        "# {} cached file(s) match their digests: {:.1} ms",
        rels.len(),
        started.elapsed().as_secs_f64() * 1e3
    ));
    Ok(())
}

/// Drop the entry of `key` (found corrupt): moved aside in one rename, so
/// no run finds it half-removed, then removed.
pub fn discard_entry(entry: &Path, log: &Log) -> Result<(), Error> {
    let (Some(cache), Some(key)) = (entry.parent(), entry.file_name()) else {
        return Err(Error::io(entry, std::io::Error::other("not a cache entry")));
    };
    let aside = cache.join(format!(
        "tmp.{}.discarded.{}",
        std::process::id(),
        key.to_string_lossy()
    ));
    match fs::rename(entry, &aside) {
        Ok(()) => {}
        // Another run discarded it first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(entry, e)),
    }
    crate::crash::crash_point("entry-discarded");
    log.line(&format!("removing the discarded entry {}", aside.display()));
    fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))
}
/// Records the base build's own top (see `BaseBuild::build_top`).
const BUILD_TOP: &str = "build-top";

/// The cached base build for `key`, building it if missing. A build the
/// user already made in `srcdir` is adopted when it matches (see
/// `adoptable`) and its incremental rebuild reproduces `xen_syms` (the
/// hypervisor the payload is for; default: the tree's own xen-syms).
pub fn ensure_base(
    cache: &Path,
    key: &str,
    srcdir: &Path,
    config: &[u8],
    make: &MakeConfig,
    xen_syms: Option<&Path>,
    log: &Log,
) -> Result<BaseBuild, Error> {
    let entry = cache.join(key);
    let found = |cached, adopted| BaseBuild {
        key: key.to_string(),
        tree: entry.join("tree"),
        xen_syms: entry.join("tree/xen/xen-syms"),
        cached,
        build_top: fs::read_to_string(entry.join(BUILD_TOP))
            .ok()
            .map(|t| PathBuf::from(t.trim_end_matches('\n'))),
        adopted,
    };
    if entry.join(COMPLETE_MARKER).is_file() {
        log.line(&format!("base build: cache hit {}", entry.display()));
        return Ok(found(true, false));
    }
    fs::create_dir_all(cache).map_err(|e| Error::io(cache, e))?;
    remove_stale_temps(cache, log);
    // A half-made entry without the marker cannot be trusted.
    if entry.exists() {
        fs::remove_dir_all(&entry).map_err(|e| Error::io(&entry, e))?;
    }
    // Unique per run and per thread (library callers may build in parallel).
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = cache.join(format!("tmp.{}.{seq}.{key}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let reference = xen_syms
        .map(Path::to_path_buf)
        .unwrap_or_else(|| srcdir.join("xen/xen-syms"));
    let adopted = match adoptable(srcdir, config, &reference, &make.recipe) {
        Ok(()) => adopt_base_in(&tmp, srcdir, &reference, make, log),
        Err(why) => {
            log.line(&format!("# not adopting the tree's build: {why}"));
            Ok(false)
        }
    };
    let result = adopted.and_then(|adopted| {
        if !adopted {
            build_base_in(&tmp, srcdir, config, make, log)?;
        }
        Ok(adopted)
    });
    let adopted = match result {
        Ok(a) => a,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let completed = write_file(
        &tmp.join(BUILD_TOP),
        format!("{}\n", tmp.join("tree").display()).as_bytes(),
    )
    .and_then(|()| record_digests(&tmp))
    .and_then(|()| write_file(&tmp.join(COMPLETE_MARKER), format!("{key}\n").as_bytes()));
    if let Err(e) = completed {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    crate::crash::crash_point("entry-complete");
    match fs::rename(&tmp, &entry) {
        Ok(()) => {
            crate::crash::crash_point("entry-renamed");
            Ok(found(false, adopted))
        }
        // Another run completed the same base first: use it.
        Err(_) if entry.join(COMPLETE_MARKER).is_file() => {
            let _ = fs::remove_dir_all(&tmp);
            Ok(found(false, false))
        }
        Err(e) => Err(Error::io(&entry, e)),
    }
}

fn build_base_in(
    tmp: &Path,
    srcdir: &Path,
    config: &[u8],
    make: &MakeConfig,
    log: &Log,
) -> Result<(), Error> {
    let tree = tmp.join("tree");
    tree::copy_tree(srcdir, &tree, log)?;
    let xen = tree.join("xen");
    // The user's tree may be built in place: start from sources only (a
    // never-built tree has nothing to clean, and distclean would build
    // kconfig's host tools once more).
    if tree::has_build_outputs(srcdir) {
        log.run(
            make.command(&xen).arg("distclean"),
            "make distclean in the private copy",
        )?;
    }
    write_file(&xen.join(".config"), config)?;
    log.run(make.command(&xen).arg("olddefconfig"), "make olddefconfig")?;
    let synced = fs::read(xen.join(".config")).map_err(|e| Error::io(xen.join(".config"), e))?;
    if !tree::config_enables_livepatch(&synced) {
        return Err(Error::Input(crate::error::Problem::LivepatchDropped));
    }
    log.run(&mut make.command(&xen), "base build (make)")?;
    if !xen.join("xen-syms").is_file() {
        return Err(Error::Command {
            what: "base build produced no xen/xen-syms".into(),
            log: Some(log.path().into()),
        });
    }
    Ok(())
}

/// Xen's `include/xen/compile.h` names for the pinned build strings.
const COMPILE_H_STRINGS: [(&str, &str); 5] = [
    ("XEN_BUILD_DATE", "XEN_COMPILE_DATE"),
    ("XEN_BUILD_TIME", "XEN_COMPILE_TIME"),
    ("XEN_WHOAMI", "XEN_COMPILE_BY"),
    ("XEN_DOMAIN", "XEN_COMPILE_DOMAIN"),
    ("XEN_BUILD_HOST", "XEN_COMPILE_HOST"),
];

/// `#define NAME "value"` lines of a compile.h.
fn compile_h_defines(text: &str) -> BTreeMap<&str, &str> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("#define ")?;
            let (name, value) = rest.split_once(char::is_whitespace)?;
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some((name, value))
        })
        .collect()
}

/// Whether the user's built tree is the base this run would build: the
/// same .config, the build strings pinned to the same values and the same
/// compiler (as `include/xen/compile.h` recorded them). Kbuild rebuilds
/// whatever was built with other commands; the rebuilt xen-syms is
/// checked against `reference` afterwards (`adopt_base_in`).
fn adoptable(
    srcdir: &Path,
    config: &[u8],
    reference: &Path,
    recipe: &Recipe,
) -> Result<(), String> {
    let xen = srcdir.join("xen");
    if !xen.join("xen-syms").is_file() {
        return Err("the tree is not built (no xen/xen-syms)".into());
    }
    if !reference.is_file() {
        return Err(format!(
            "no {} to check a rebuild against",
            reference.display()
        ));
    }
    if fs::read(xen.join(".config")).ok().as_deref() != Some(config) {
        return Err("its xen/.config is not the config of this build".into());
    }
    let compile_h = xen.join("include/xen/compile.h");
    let text =
        fs::read_to_string(&compile_h).map_err(|e| format!("{}: {e}", compile_h.display()))?;
    let defines = compile_h_defines(&text);
    for (env, define) in COMPILE_H_STRINGS {
        let want = recipe
            .env
            .iter()
            .find(|(k, _)| k == env)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if defines.get(define).copied() != Some(want.as_str()) {
            return Err(format!(
                "it was built with {define} {:?}, this build pins {env}={want:?}",
                defines.get(define).copied().unwrap_or("(none)")
            ));
        }
    }
    // Xen records the first line of `$(CC) --version`; its first word is
    // the name the compiler was called by.
    let cc = &recipe.cc;
    let version = Command::new(cc)
        .arg("--version")
        .output()
        .map_err(|e| format!("{cc} --version: {e}"))?;
    let ours = String::from_utf8_lossy(&version.stdout);
    let tail = |line: &str| line.split_once(' ').map(|(_, t)| t.trim().to_string());
    let recorded = defines.get("XEN_COMPILER").copied().and_then(tail);
    let current = ours.lines().next().and_then(tail);
    if recorded.is_none() || recorded != current {
        return Err(format!(
            "it was built by {:?}, this build uses {cc} ({:?})",
            defines.get("XEN_COMPILER").copied().unwrap_or("(unknown)"),
            ours.lines().next().unwrap_or("")
        ));
    }
    Ok(())
}

/// Copy the user's built tree and run an incremental make with the pinned
/// strings; keep it when the resulting xen-syms has `reference`'s build-id.
/// `Ok(false)`: not adopted, `tmp` left empty for a clean build.
fn adopt_base_in(
    tmp: &Path,
    srcdir: &Path,
    reference: &Path,
    make: &MakeConfig,
    log: &Log,
) -> Result<bool, Error> {
    use xsplice_target::notes::{build_id_of_file, to_hex};
    let tree = tmp.join("tree");
    let discard = |why: String| -> Result<bool, Error> {
        log.line(&format!("# not adopting the tree's build: {why}"));
        if tree.exists() {
            fs::remove_dir_all(&tree).map_err(|e| Error::io(&tree, e))?;
        }
        Ok(false)
    };
    tree::copy_tree(srcdir, &tree, log)?;
    let xen = tree.join("xen");
    if let Err(e) = log.run(
        &mut make.command(&xen),
        "incremental make of the copy of the tree's build",
    ) {
        return discard(e.to_string());
    }
    let rebuilt = build_id_of_file(&xen.join("xen-syms"));
    let wanted = build_id_of_file(reference);
    match (rebuilt, wanted) {
        (Ok(a), Ok(b)) if a == b => {
            log.line(&format!(
                "# adopted the tree's build: xen-syms build-id {} as {}",
                to_hex(&a),
                reference.display()
            ));
            Ok(true)
        }
        (Ok(a), Ok(b)) => discard(format!(
            "the rebuilt xen-syms (build-id {}) is not {} (build-id {})",
            to_hex(&a),
            reference.display(),
            to_hex(&b)
        )),
        (Err(e), _) | (_, Err(e)) => discard(e.to_string()),
    }
}

/// Remove temporary build directories of runs that no longer exist
/// (killed mid-build).
fn remove_stale_temps(cache: &Path, log: &Log) {
    let Ok(dir) = fs::read_dir(cache) else { return };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("tmp.") else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or("");
        let alive = !pid.is_empty() && Path::new("/proc").join(pid).exists();
        if !alive {
            log.line(&format!("removing stale {}", e.path().display()));
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Write an output atomically (temporary file + rename): an interrupted
/// run never leaves a truncated payload, list or report.
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), Error> {
    // A stage with nothing to do (no changed object to diff) may not have
    // made its directory.
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    xsplice_target::limits::write_atomic(path, data).map_err(|e| match e {
        xsplice_target::Error::Io { source, .. } => Error::io(path, source),
        other => Error::io(path, std::io::Error::other(other.to_string())),
    })
}

/// Apply the patch to `work` (a fresh copy of the base) and rebuild what it affects.
#[allow(clippy::too_many_arguments)]
pub fn patched_build(
    base: &BaseBuild,
    work: &Path,
    patch: &Path,
    touched: &[Touched],
    srcdir: &Path,
    make: &MakeConfig,
    writes: &mut Writes,
    log: &Log,
) -> Result<PatchedBuild, Error> {
    apply_patch(work, patch, touched, srcdir, writes, log)?;
    let xen = work.join("xen");
    let mut out = rebuild_affected(base, &xen, touched, make, writes, log)?;
    find_changed_objects(base, &xen, &mut out, log)?;
    // The diff compares against these: they must be the base's.
    let originals: Vec<String> = out
        .changed
        .iter()
        .map(|o| format!("tree/xen/{o}"))
        .collect();
    check_cached(base, &originals, log)?;
    Ok(out)
}

/// The patch applied to the working copy, whose writes are noted.
fn apply_patch(
    work: &Path,
    patch: &Path,
    touched: &[Touched],
    srcdir: &Path,
    writes: &mut Writes,
    log: &Log,
) -> Result<(), Error> {
    for t in touched {
        writes.path(&t.path);
    }
    // Files outside the hashed part of the tree (tools/, docs/) do not
    // affect the hypervisor, so the cached copy may hold other versions:
    // take the user's, for the patch to apply as it did in the dry run.
    for t in touched {
        let dst = work.join(&t.path);
        let src = srcdir.join(&t.path);
        if t.touch != Touch::Created && tree::outside_hash(&t.path) && src.is_file() {
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            fs::copy(&src, &dst).map_err(|e| Error::io(&dst, e))?;
        }
    }
    log.run(
        &mut tree::patch_command(work, patch),
        &format!("applying the patch to the working copy {}", work.display()),
    )?;
    crate::crash::crash_point("work-patched");
    Ok(())
}

/// Make on what the patch affects: each affected object by its recorded
/// command (else make of those objects), or, when the records cannot
/// say, a full incremental make. The changed objects are not known yet.
fn rebuild_affected(
    base: &BaseBuild,
    xen: &Path,
    touched: &[Touched],
    make: &MakeConfig,
    writes: &mut Writes,
    log: &Log,
) -> Result<PatchedBuild, Error> {
    let start = std::time::Instant::now();
    let deps = DepIndex::load_base(base, log);
    log.line(&format!(
        "# dependency index: {} targets, {:.2} s",
        deps.len(),
        start.elapsed().as_secs_f64()
    ));
    let mut out = PatchedBuild::default();
    match deps
        .affected_objects(touched)
        .and_then(|targets| single_targets_buildable(xen, targets))
    {
        Ok(targets) => {
            if !targets.is_empty() {
                let from = log.position();
                match recorded_builds(xen, &targets) {
                    Ok(builds) => {
                        // Each writes its object and, beside it, its records
                        // and temporaries.
                        for b in &builds {
                            writes.path(Path::new("xen").join(&b.target));
                        }
                        run_recorded(xen, &builds, make, log)
                            .map_err(|e| with_compiler_error(e, log, from, xen))?
                    }
                    Err(why) => {
                        writes.anywhere();
                        log.line(&format!("# make of the affected objects: {why}"));
                        let mut cmd = make.command(xen);
                        // Kept until make has run.
                        let _rules = derived_object_rules(&targets, &mut cmd)?;
                        cmd.args(&targets);
                        log.run(&mut cmd, "patched build (make of the affected objects)")
                            .map_err(|e| with_compiler_error(e, log, from, xen))?;
                    }
                }
            }
            out.recompiled = targets;
        }
        Err(reason) => {
            writes.anywhere();
            log.line(&format!("full incremental make: {reason}"));
            let started = std::time::SystemTime::now();
            let from = log.position();
            if let Err(e) = log.run(&mut make.command(xen), "patched build (make)") {
                let e = with_compiler_error(e, log, from, xen);
                // The payload needs the objects, not the patched hypervisor:
                // when prelink.o (every object linked into xen-syms) was
                // rebuilt, only a final link failed, e.g. xen.efi refusing
                // the orphan sections new hooks add.
                if !rebuilt_since(&xen.join("prelink.o"), started) {
                    return Err(e);
                }
                log.line(
                    "# make failed after prelink.o was rebuilt: only the final links \
                     (xen-syms, xen.efi) failed, and the payload does not use them",
                );
            }
            out.full_make = true;
            out.full_make_reason = Some(reason);
        }
    }
    Ok(out)
}

/// The objects the patched build changed (`out.changed`) or added
/// (`out.new`): those rebuilt (everything after a full make) that are
/// linked into xen-syms, compared with the base's.
fn find_changed_objects(
    base: &BaseBuild,
    xen: &Path,
    out: &mut PatchedBuild,
    log: &Log,
) -> Result<(), Error> {
    let linked = linked_objects(xen);
    match &linked {
        Some(l) => log.line(&format!("# {} objects are linked into xen-syms", l.len())),
        None => log.line("# no link record (.prelink.o.cmd): every object counts"),
    }
    let candidates: BTreeSet<String> = if out.full_make {
        all_objects(xen)
    } else {
        out.recompiled.iter().cloned().collect()
    };
    for obj in candidates {
        if is_ignored_object(&obj) {
            continue;
        }
        if let Some(linked) = &linked {
            if !linked.contains(&obj) {
                continue;
            }
        } else if xen.join(init_variant(&obj)).is_file() && obj != init_variant(&obj) {
            // X.o is only an intermediate of X.init.o.
            continue;
        }
        let new_path = xen.join(&obj);
        let old_path = base.xen_dir().join(&obj);
        if !new_path.is_file() {
            continue;
        }
        if !old_path.is_file() {
            out.new.push(obj);
        } else if !same_bytes(&old_path, &new_path)? {
            out.changed.push(obj);
        }
    }
    Ok(())
}

/// A failed make whose output (logged after `from`) holds a compiler
/// error becomes [`Error::Compile`], quoting the first one.
fn with_compiler_error(e: Error, log: &Log, from: u64, xen: &Path) -> Error {
    let Error::Command { what, log: path } = e else {
        return e;
    };
    match crate::error::CompilerError::first_in(&log.text_since(from), xen) {
        Some(error) => Error::Compile {
            what,
            error,
            log: path,
        },
        None => Error::Command { what, log: path },
    }
}

/// One object rebuilt by replaying what make recorded for it, instead of
/// `make OBJ` (which re-runs Xen's compiler-feature checks, seconds per
/// call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBuild {
    /// The object, relative to xen/.
    pub target: String,
    /// The recorded command (`cmd_OBJ` of `.OBJ.cmd`), as the shell runs it.
    pub shell: String,
    /// Xen's `objcopy_fix_sym` step, which make runs after the recorded
    /// compile without recording it (CONFIG_ENFORCE_UNIQUE_SYMBOLS): the
    /// compiler wrote `tmp`; the `STT_FILE` symbol `from` becomes `to`.
    pub fix_sym: Option<FixSym>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixSym {
    pub tmp: String,
    pub from: String,
    pub to: String,
}

/// The replayable builds of `targets`, in an order that builds `X.o`
/// before `X.init.o`; `Err` says why make must build them instead (a
/// record that is missing, not Xen's kbuild shape, or a step the replay
/// does not know).
pub fn recorded_builds(xen: &Path, targets: &[String]) -> Result<Vec<RecordedBuild>, String> {
    // Only Xen's kbuild records are known well enough to replay.
    if !xen.join("Rules.mk").is_file() {
        return Err("not Xen's kbuild (no Rules.mk)".into());
    }
    let config = fs::read_to_string(xen.join(".config")).map_err(|e| format!(".config: {e}"))?;
    let enabled = |opt: &str| config.lines().any(|l| l.trim() == format!("{opt}=y"));
    if enabled("CONFIG_CC_IS_CLANG") {
        return Err("clang builds are left to make".into());
    }
    // Rules.mk renames the file symbol after compiling to .X.o.tmp; only
    // the form this replay knows is replayed.
    let rules = fs::read_to_string(xen.join("Rules.mk")).unwrap_or_default();
    let unique_symbols = enabled("CONFIG_ENFORCE_UNIQUE_SYMBOLS")
        && rules.contains("--redefine-sym $(<F)=$(call rel-path,$<) $(dot-target).tmp $@");
    // X.init.o is made from X.o: replaying it means rebuilding X.o first,
    // even when the target list names only the X.init.o.
    let mut all: Vec<String> = Vec::new();
    for t in targets {
        if let Some(stem) = t.strip_suffix(".init.o") {
            let obj = format!("{stem}.o");
            if !targets.contains(&obj) && !all.contains(&obj) {
                all.push(obj);
            }
        }
        if !all.contains(t) {
            all.push(t.clone());
        }
    }
    let mut out = Vec::new();
    for target in &all {
        let record = kbuild::record_path(xen, target);
        let text = fs::read_to_string(&record).map_err(|e| format!("{}: {e}", record.display()))?;
        let shell = kbuild::command(&text, target).map_err(|p| match p {
            CommandProblem::Missing => format!("{}: no cmd_{target}", record.display()),
            CommandProblem::MakeReference => {
                format!("{}: a make reference in the command", record.display())
            }
        })?;
        let fix_sym = fix_sym_step(xen, target, &shell, unique_symbols)?;
        out.push(RecordedBuild {
            target: target.clone(),
            shell,
            fix_sym,
        });
    }
    // X.init.o is made from X.o.
    out.sort_by_key(|b| b.target.ends_with(".init.o"));
    Ok(out)
}

/// For a C object compiled to `dir/.X.o.tmp` (CONFIG_ENFORCE_UNIQUE_SYMBOLS),
/// the `objcopy --redefine-sym` that Rules.mk runs next: the file symbol
/// `X.c` becomes the source's path relative to xen/ (after symlinks).
fn fix_sym_step(
    xen: &Path,
    target: &str,
    shell: &str,
    unique_symbols: bool,
) -> Result<Option<FixSym>, String> {
    let words = kbuild::words(shell)
        .map_err(|e| format!("{target}: cannot split the recorded command: {e}"))?;
    let output = words
        .iter()
        .position(|w| w == "-o")
        .and_then(|i| words.get(i + 1));
    let Some(output) = output else {
        // No compiler output: a complete recorded step (X.init.o's objcopy).
        return Ok(None);
    };
    if output == target {
        return Ok(None);
    }
    let dot_tmp = kbuild::record_path(xen, target)
        .strip_prefix(xen)
        .map(|p| p.to_string_lossy().replace(".cmd", ".tmp"))
        .unwrap_or_default();
    let source = words.iter().find(|w| w.ends_with(".c"));
    match source {
        Some(src) if unique_symbols && *output == dot_tmp => {
            let real = fs::canonicalize(xen.join(src)).map_err(|e| format!("{src}: {e}"))?;
            let top = fs::canonicalize(xen).map_err(|e| format!("{}: {e}", xen.display()))?;
            let rel = real.strip_prefix(&top).unwrap_or(&real);
            let base = Path::new(src)
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            Ok(Some(FixSym {
                tmp: output.clone(),
                from: base,
                to: rel.to_string_lossy().to_string(),
            }))
        }
        _ => Err(format!(
            "{target}: the recorded command writes {output}, a step the replay does not know"
        )),
    }
}

/// Run the replayable builds in xen/ (with make's environment: pinned
/// build strings), `make.jobs` at a time, `X.o` before `X.init.o`.
pub fn run_recorded(
    xen: &Path,
    builds: &[RecordedBuild],
    make: &MakeConfig,
    log: &Log,
) -> Result<(), Error> {
    let objcopy =
        std::env::var("OBJCOPY").unwrap_or_else(|_| format!("{}objcopy", make.recipe.cross));
    let run_one = |b: &RecordedBuild| -> Result<(), Error> {
        let what = format!("patched build: {} (recorded command)", b.target);
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(&b.shell).current_dir(xen);
        make.apply_env(&mut cmd);
        log.run(&mut cmd, &what)?;
        if let Some(f) = &b.fix_sym {
            let mut cmd = Command::new(&objcopy);
            cmd.arg("--redefine-sym")
                .arg(format!("{}={}", f.from, f.to))
                .arg(&f.tmp)
                .arg(&b.target)
                .current_dir(xen);
            log.run(&mut cmd, &what)?;
            let tmp = xen.join(&f.tmp);
            fs::remove_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        Ok(())
    };
    let (first, init): (Vec<&RecordedBuild>, Vec<&RecordedBuild>) =
        builds.iter().partition(|b| !b.target.ends_with(".init.o"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(make.jobs.max(1))
        .build()
        .map_err(|e| Error::Command {
            what: format!("patched build: no thread pool: {e}"),
            log: None,
        })?;
    pool.install(|| {
        use rayon::prelude::*;
        first.par_iter().try_for_each(|b| run_one(b))?;
        init.par_iter().try_for_each(|b| run_one(b))
    })
}

/// Objects that are never part of a payload: link aggregates and any
/// architecture's compiler probes (each path names its architecture).
fn is_ignored_object(obj: &str) -> bool {
    obj.ends_with("built_in.o") || obj == "prelink.o" || is_probe_object(obj)
}

fn is_probe_object(obj: &str) -> bool {
    Arch::ALL.iter().any(|a| a.probe_objects().contains(&obj))
}

fn init_variant(obj: &str) -> String {
    match obj.strip_suffix(".o") {
        Some(stem) if !stem.ends_with(".init") => format!("{stem}.init.o"),
        _ => obj.to_string(),
    }
}

fn same_bytes(a: &Path, b: &Path) -> Result<bool, Error> {
    let ma = fs::metadata(a).map_err(|e| Error::io(a, e))?;
    let mb = fs::metadata(b).map_err(|e| Error::io(b, e))?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let da = fs::read(a).map_err(|e| Error::io(a, e))?;
    let db = fs::read(b).map_err(|e| Error::io(b, e))?;
    Ok(da == db)
}

/// Every `*.o` under `xen_dir`, relative to it.
pub fn all_objects(xen_dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(xen_dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.file_name().to_string_lossy().ends_with(".o"))
        .filter_map(|e| {
            e.path()
                .strip_prefix(xen_dir)
                .ok()
                .map(|p| p.to_string_lossy().to_string())
        })
        .collect()
}

/// The leaf objects linked into xen-syms, from the link commands make
/// recorded (`.prelink.o.cmd` → `built_in.o` → objects, and archive
/// members). `None` when the tree does not record them.
pub fn linked_objects(xen_dir: &Path) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut stack = vec!["prelink.o".to_string()];
    let mut seen = BTreeSet::new();
    while let Some(target) = stack.pop() {
        if !seen.insert(target.clone()) {
            continue;
        }
        let text = fs::read_to_string(kbuild::record_path(xen_dir, &target)).ok()?;
        let command = kbuild::first_command(&text)?;
        let mut after_o = false;
        for tok in kbuild::words(&command).ok()? {
            if after_o {
                after_o = false;
                continue;
            }
            if tok == "-o" {
                after_o = true;
                continue;
            }
            let tok = tok.trim_end_matches(';').trim_start_matches("./");
            if tok == target {
                continue;
            }
            if tok.ends_with("built_in.o") || tok.ends_with(".a") {
                stack.push(tok.to_string());
            } else if tok.ends_with(".o") {
                out.insert(tok.to_string());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Xen's top-level Makefile makes a single object only from a source of
/// the same stem (`%.o: %.c`, handed to the directory's sub-make); nothing
/// there makes `X.init.o`, which Rules.mk derives from `X.o` with objcopy
/// (`cmd_obj_init_o`), so `make X.init.o` answers "Nothing to be done".
/// This rule, given to make after Xen's Makefile, hands `X.init.o` to the
/// directory's sub-make the same way; that sub-make rebuilds `X.o` first.
const DERIVED_OBJECT_RULES: &str = "\
%.init.o: tools_fixdep FORCE
\t$(Q)$(MAKE) $(build)=$(*D) $(*D)/$(@F)
";

/// When `targets` holds `X.init.o` objects, write [`DERIVED_OBJECT_RULES`]
/// to a temporary makefile (outside the tree) and add it to `cmd` after
/// Xen's own Makefile. Returns the file, to be kept until make has run.
fn derived_object_rules(
    targets: &[String],
    cmd: &mut Command,
) -> Result<Option<tempfile::NamedTempFile>, Error> {
    if !targets.iter().any(|t| t.ends_with(".init.o")) {
        return Ok(None);
    }
    let mut file = tempfile::Builder::new()
        .prefix("xsplice-build-rules.")
        .suffix(".mk")
        .tempfile()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    std::io::Write::write_all(&mut file, DERIVED_OBJECT_RULES.as_bytes())
        .map_err(|e| Error::io(file.path(), e))?;
    cmd.arg("-f").arg("Makefile").arg("-f").arg(file.path());
    Ok(Some(file))
}

/// Make's single-object targets (`make common/version.o`) run the Makefile
/// of the object's directory; objects built from a parent's Makefile
/// (`common/compat/kernel.o`) need the full incremental make.
/// `X.init.o` targets replace their `X.o` (the sub-make that makes one
/// makes the other; asking for both would run two sub-makes on `X.o` at
/// once) and need kbuild's `$(build)` to reach that sub-make.
fn single_targets_buildable(xen: &Path, targets: Vec<String>) -> Result<Vec<String>, String> {
    // Only Xen's kbuild (Rules.mk) runs the object directory's Makefile.
    if !xen.join("Rules.mk").is_file() {
        return Ok(targets);
    }
    let derived: BTreeSet<String> = targets
        .iter()
        .filter_map(|t| t.strip_suffix(".init.o").map(|stem| format!("{stem}.o")))
        .collect();
    let targets: Vec<String> = targets
        .into_iter()
        .filter(|t| !derived.contains(t))
        .collect();
    if !derived.is_empty() {
        let kbuild = fs::read_to_string(xen.join("scripts/Kbuild.include")).unwrap_or_default();
        if !kbuild.lines().any(|l| l.starts_with("build := ")) {
            return Err(
                "the patch touches a file built as an X.init.o object and this tree's kbuild \
                 has no $(build) to make it alone"
                    .into(),
            );
        }
    }
    for t in &targets {
        let dir = Path::new(t).parent().unwrap_or(Path::new(""));
        if !xen.join(dir).join("Makefile").is_file() {
            return Err(format!(
                "{t} is built by a parent directory's Makefile ({} has none)",
                dir.display()
            ));
        }
    }
    Ok(targets)
}

/// `a/./b/../c` → `a/c`, without touching the file system (the recorded
/// paths are relative to xen/ or absolute; symlinks do not matter there).
fn normalize_lexically(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." => {}
            "" if !parts.is_empty() => {}
            ".." if parts.last().is_some_and(|p| !p.is_empty() && *p != "..") => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// The files a target's records name (relative to xen/ where possible).
fn parse_deps(text: &str) -> BTreeSet<String> {
    let mut deps = BTreeSet::new();
    for tok in text.split_whitespace() {
        let tok = tok
            .trim_end_matches(':')
            .trim_end_matches(')')
            .trim_start_matches("./");
        if tok.is_empty() || tok.starts_with('-') || tok.starts_with('$') || tok.contains('=') {
            continue;
        }
        if tok.contains('/') || tok.contains('.') {
            // common/compat/kernel.c includes "../kernel.c": its record
            // says common/compat/../kernel.c, which must match a patch
            // to common/kernel.c, or the compat twin stays unpatched.
            deps.insert(normalize_lexically(tok));
        }
    }
    deps
}

/// What each build target read, from make's recorded `.*.cmd` / `.*.d` files.
/// The records are kept as text and parsed only for the targets a query
/// can concern (their text names the file asked about): a run reads a
/// few of the hundreds of records.
#[derive(Debug, Default)]
pub struct DepIndex {
    /// target (relative to xen/) → its records' text.
    records: BTreeMap<String, String>,
}

/// The records of a cached base build, gathered once into one file.
const DEP_RECORDS: &str = "dep-records.json";

/// Its `format`: a file of another format is not read, but made again.
const DEP_RECORDS_FORMAT: &str = "xsplice-build dep-records v1";

/// The one-file copy of a base's records (`DEP_RECORDS`).
#[derive(serde::Serialize, serde::Deserialize)]
struct DepRecordsFile {
    format: String,
    /// target (relative to xen/) → its records' text.
    records: BTreeMap<String, String>,
}

impl DepIndex {
    pub fn load(xen_dir: &Path) -> DepIndex {
        let mut idx = DepIndex::default();
        for e in walkdir::WalkDir::new(xen_dir).into_iter().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(stem) = name.strip_prefix('.').filter(|_| e.file_type().is_file()) else {
                continue;
            };
            let Some(rel_dir) = e.path().parent().and_then(|p| p.strip_prefix(xen_dir).ok()) else {
                continue;
            };
            let Some(target) = stem
                .strip_suffix(".cmd")
                .or_else(|| stem.strip_suffix(".d"))
            else {
                continue;
            };
            let target = rel_dir.join(target).to_string_lossy().to_string();
            let Ok(text) = fs::read_to_string(e.path()) else {
                continue;
            };
            let rec = idx.records.entry(target).or_default();
            rec.push_str(&text);
            rec.push('\n');
        }
        idx
    }

    /// The index of a complete base build: read from the entry's one-file
    /// copy of the records, made on first use (the base never changes).
    pub fn load_base(base: &BaseBuild, log: &Log) -> DepIndex {
        DepIndex::keep(&base.xen_dir(), &base.entry().join(DEP_RECORDS), Some(log))
    }

    /// The index of the records under `xen_dir`, from their one-file copy
    /// `kept`, which is made when missing (best effort: it only saves
    /// time). A copy that does not read back (truncated, corrupt, another
    /// format) is said, naming it, and made again from the records.
    fn keep(xen_dir: &Path, kept: &Path, log: Option<&Log>) -> DepIndex {
        match fs::read(kept) {
            Ok(bytes) => match DepIndex::read_kept(&bytes) {
                Ok(idx) => return idx,
                Err(why) => crate::progress::Progress::new(false).warn(
                    log,
                    &format!(
                        "{}: unreadable dependency records ({why}); made again from the \
                         build's .cmd and .d files",
                        kept.display()
                    ),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                if let Some(log) = log {
                    log.line(&format!("# {}: {e}: made again", kept.display()));
                }
            }
        }
        let idx = DepIndex::load(xen_dir);
        if !idx.records.is_empty() {
            let file = DepRecordsFile {
                format: DEP_RECORDS_FORMAT.to_string(),
                records: idx.records.clone(),
            };
            let json = serde_json::to_vec(&file).expect("strings serialize");
            let _ = xsplice_target::limits::write_atomic(kept, &json);
        }
        idx
    }

    /// The records from their one-file copy, or why it does not read back.
    fn read_kept(bytes: &[u8]) -> Result<DepIndex, String> {
        let file: DepRecordsFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if file.format != DEP_RECORDS_FORMAT {
            return Err(format!(
                "format {:?}, not {DEP_RECORDS_FORMAT:?}",
                file.format
            ));
        }
        if file.records.is_empty() {
            return Err("no records".to_string());
        }
        Ok(DepIndex {
            records: file.records,
        })
    }

    /// How many targets have records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The parsed dependencies of the targets whose records mention one of
    /// `needles` (file names: every dependency path ends with its name).
    fn mentioning<'a>(
        &self,
        needles: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, BTreeSet<String>> {
        let needles: Vec<&str> = needles.into_iter().collect();
        self.records
            .iter()
            .filter(|(_, text)| needles.iter().any(|n| text.contains(n)))
            .map(|(t, text)| (t.clone(), parse_deps(text)))
            .collect()
    }

    /// The objects to rebuild for `touched`, or why a full make is needed.
    pub fn affected_objects(&self, touched: &[Touched]) -> Result<Vec<String>, String> {
        if self.records.is_empty() {
            return Err("the base build recorded no dependency files".into());
        }
        let name_of = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
        let mut objs: BTreeSet<String> = BTreeSet::new();
        for t in touched {
            let path = normalize_lexically(&t.path.to_string_lossy());
            let Some(rel) = path.strip_prefix("xen/") else {
                let top = !path.contains('/');
                if top
                    || path.starts_with("config/")
                    || path.starts_with("scripts/")
                    || path.starts_with("tools/flask/")
                {
                    return Err(format!("the patch touches {path}, which the build reads"));
                }
                continue; // tools/, docs/: not part of the hypervisor
            };
            // A new header is in no base object's
            // dependencies: only files the patch also modifies can include it, and
            // those are rebuilt anyway. Unless its name could shadow a header the
            // base build read, it needs no full make (which would also try to link
            // xen.efi, and fails there when the patch adds hook sections).
            if t.touch == Touch::Created
                && rel.ends_with(".h")
                && !rel.starts_with("include/public/")
            {
                let file = rel.rsplit('/').next().unwrap_or(rel);
                let shadows = self
                    .mentioning([file])
                    .values()
                    .flatten()
                    .any(|d| d.rsplit('/').next() == Some(file));
                if !shadows {
                    continue;
                }
            }
            if t.touch != Touch::Modified {
                return Err(format!("the patch creates or deletes {path}"));
            }
            let is_source = [".c", ".h", ".S"].iter().any(|e| rel.ends_with(e));
            if !is_source || rel.starts_with("include/public/") {
                return Err(format!(
                    "the patch touches {path} (not a plain C source or header)"
                ));
            }
            for (target, deps) in &self.mentioning([name_of(rel).as_str()]) {
                if !deps
                    .iter()
                    .any(|d| d == rel || d.ends_with(&format!("/xen/{rel}")))
                {
                    continue;
                }
                if target.ends_with(".o")
                    && !target.ends_with("built_in.o")
                    && target != "prelink.o"
                {
                    objs.insert(target.clone());
                } else if target.ends_with(".a") {
                    continue;
                } else {
                    return Err(format!("{path} is read by the generated file {target}"));
                }
            }
        }
        // Objects derived from affected ones (X.init.o from X.o).
        loop {
            let names: Vec<String> = objs.iter().map(|o| name_of(o)).collect();
            let extra: Vec<String> = self
                .mentioning(names.iter().map(String::as_str))
                .iter()
                .filter(|(t, deps)| {
                    t.ends_with(".o")
                        && !t.ends_with("built_in.o")
                        && *t != "prelink.o"
                        && !objs.contains(*t)
                        && deps.iter().any(|d| objs.contains(d))
                })
                .map(|(t, _)| t.clone())
                .collect();
            if extra.is_empty() {
                break;
            }
            objs.extend(extra);
        }
        // Anything else built from affected objects (a boot .bin, say) is
        // make's business.
        let names: Vec<String> = objs.iter().map(|o| name_of(o)).collect();
        for (target, deps) in &self.mentioning(names.iter().map(String::as_str)) {
            let aggregate = target.ends_with(".o") || target.ends_with(".a");
            if !aggregate && deps.iter().any(|d| objs.contains(d)) {
                return Err(format!("{target} is built from an affected object"));
            }
        }
        objs.retain(|o| !is_probe_object(o));
        Ok(objs.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    /// The one-file copy of a base's records reads back as the records;
    /// a truncated or corrupt copy, or one of the old format, is said in
    /// the log naming the file, and made again from the records.
    #[test]
    fn damaged_dep_records_are_named_and_made_again() {
        use super::{DepIndex, DEP_RECORDS};
        let dir = tempfile::tempdir().unwrap();
        let xen = dir.path().join("xen");
        std::fs::create_dir_all(xen.join("common")).unwrap();
        std::fs::write(
            xen.join("common/.kernel.o.cmd"),
            "cmd_common/kernel.o := gcc -c kernel.c\n",
        )
        .unwrap();
        std::fs::write(
            xen.join("common/.kernel.o.d"),
            "common/kernel.o: common/kernel.c include/xen/lib.h\n",
        )
        .unwrap();
        let kept = dir.path().join(DEP_RECORDS);
        let log = crate::progress::Log::create(&dir.path().join("build.log")).unwrap();
        let fresh = DepIndex::keep(&xen, &kept, Some(&log));
        assert_eq!(fresh.len(), 1);
        let whole = std::fs::read(&kept).unwrap();
        assert_eq!(DepIndex::read_kept(&whole).unwrap().records, fresh.records);
        let damages: [(&str, Vec<u8>); 3] = [
            ("truncated", whole[..whole.len() / 2].to_vec()),
            ("corrupt", b"\x00\x01not json".to_vec()),
            // The format before JSON: target NUL text NUL.
            (
                "old format",
                b"common/kernel.o\0cmd_common/kernel.o := gcc\0".to_vec(),
            ),
        ];
        for (what, bytes) in damages {
            std::fs::write(&kept, &bytes).unwrap();
            let before = log.position();
            let idx = DepIndex::keep(&xen, &kept, Some(&log));
            assert_eq!(idx.records, fresh.records, "{what}");
            let said = log.text_since(before);
            assert!(
                said.contains(&kept.display().to_string())
                    && said.contains("unreadable dependency records"),
                "{what}: {said}"
            );
            assert_eq!(
                std::fs::read(&kept).unwrap(),
                whole,
                "{what}: not made again"
            );
        }
    }

    /// `X.init.o` is made by the directory's sub-make (through the extra
    /// rule), which also makes `X.o`: only the former is asked for, and
    /// only where kbuild has `$(build)` to reach that sub-make.
    #[test]
    fn init_objects_are_made_through_the_directory_sub_make() {
        let xen = tempfile::tempdir().unwrap();
        let x = xen.path();
        std::fs::write(x.join("Rules.mk"), "").unwrap();
        std::fs::create_dir_all(x.join("arch/x86")).unwrap();
        std::fs::write(
            x.join("arch/x86/Makefile"),
            "obj-bin-y += dmi_scan.init.o\n",
        )
        .unwrap();
        std::fs::create_dir_all(x.join("scripts")).unwrap();
        let targets = vec![
            "arch/x86/dmi_scan.init.o".to_string(),
            "arch/x86/dmi_scan.o".to_string(),
            "arch/x86/time.o".to_string(),
        ];
        // Without kbuild's $(build): the full make.
        std::fs::write(x.join("scripts/Kbuild.include"), "# old\n").unwrap();
        let err = super::single_targets_buildable(x, targets.clone()).unwrap_err();
        assert!(err.contains("X.init.o"), "{err}");
        std::fs::write(
            x.join("scripts/Kbuild.include"),
            "build := -f $(srctree)/Rules.mk obj\n",
        )
        .unwrap();
        let got = super::single_targets_buildable(x, targets).unwrap();
        assert_eq!(got, ["arch/x86/dmi_scan.init.o", "arch/x86/time.o"]);

        let mut cmd = std::process::Command::new("make");
        let rules = super::derived_object_rules(&got, &mut cmd)
            .unwrap()
            .unwrap();
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().to_string())
            .collect();
        assert_eq!(args[..3], ["-f", "Makefile", "-f"]);
        let text = std::fs::read_to_string(rules.path()).unwrap();
        assert!(
            text.starts_with("%.init.o: tools_fixdep FORCE\n\t$(Q)$(MAKE) $(build)="),
            "{text}"
        );
        let mut plain = std::process::Command::new("make");
        assert!(
            super::derived_object_rules(&["common/kernel.o".into()], &mut plain)
                .unwrap()
                .is_none()
        );
        assert_eq!(plain.get_args().count(), 0);
    }

    /// The rule really makes `X.init.o` from `X.o` through a sub-make, the
    /// way Xen's kbuild does (a miniature of it: `$(build)`, a Rules.mk
    /// with the objcopy step), where the bare target had no rule.
    #[test]
    fn derived_object_rule_runs_the_sub_make() {
        let xen = tempfile::tempdir().unwrap();
        let x = xen.path();
        std::fs::create_dir_all(x.join("d")).unwrap();
        std::fs::write(
            x.join("Makefile"),
            "build := -f Rules.mk obj\nQ := @\ntools_fixdep:\n\t@:\nFORCE:\n.PHONY: FORCE tools_fixdep\n",
        )
        .unwrap();
        std::fs::write(
            x.join("Rules.mk"),
            "$(obj)/%.init.o: $(obj)/%.o\n\tcp $< $@\n$(obj)/%.o: $(obj)/%.c\n\tcp $< $@\n",
        )
        .unwrap();
        std::fs::write(x.join("d/a.c"), "new").unwrap();
        let mut cmd = std::process::Command::new("make");
        cmd.arg("-C").arg(x);
        let _rules = super::derived_object_rules(&["d/a.init.o".into()], &mut cmd).unwrap();
        let out = cmd.arg("d/a.init.o").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read_to_string(x.join("d/a.init.o")).unwrap(),
            "new"
        );
    }

    #[test]
    fn recorded_paths_are_normalised_lexically() {
        use super::normalize_lexically as n;
        assert_eq!(n("common/compat/../kernel.c"), "common/kernel.c");
        assert_eq!(n("./common/./kernel.c"), "common/kernel.c");
        assert_eq!(
            n("/src/xen/arch/x86/x86_64/../physdev.c"),
            "/src/xen/arch/x86/physdev.c"
        );
        assert_eq!(n("../include/x.h"), "../include/x.h");
        assert_eq!(n("a//b"), "a/b");
    }
}
