//! The tree a patched build runs in.
//!
//! Copying the whole built base for every patch costs about a second, most
//! of the warm path. So each cache entry keeps one working copy next to
//! its pristine tree: a patched build locks it, applies the patch,
//! compiles, and afterwards every file whose type, size or mtime differs
//! from the pristine tree is copied back (with its mtime, so make sees the
//! base as up to date) and every file the build added is removed. Only
//! the directories the build wrote in are compared when it says which
//! ([`Writes`]: the patched files and the replayed objects); after a make,
//! which may write anywhere, both trees are walked whole. A
//! marker written before the first change and removed after the restore
//! makes a copy left dirty by a killed run be thrown away and re-made.
//! When another run holds the lock, or the lock cannot be made (a
//! read-only cache), the build uses a private copy instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::Error;
use crate::progress::Log;
use crate::stages::BaseBuild;
use crate::tree;

/// A working tree, shared (in the cache entry) or private (in the output directory).
pub struct WorkTree {
    /// Top of the tree (holds `xen/`).
    pub path: PathBuf,
    pristine: PathBuf,
    shared: Option<Shared>,
}

impl Drop for WorkTree {
    /// Not released (a panic): free the lock, leave the copy marked dirty.
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let _ = fs::remove_dir_all(&shared.lock);
        }
    }
}

struct Shared {
    lock: PathBuf,
    dirty: PathBuf,
}

impl WorkTree {
    /// The cache entry's working copy when free, else a private copy in `private_dir`.
    ///
    /// Every change to the shared copy happens between `work.dirty` being
    /// written and removed (after a complete restore), so a run killed at
    /// any moment leaves it marked, and the next run re-makes it. The old
    /// copy is first moved aside in one rename: a compiler a killed run
    /// started may still be writing there, never into the new copy.
    pub fn acquire(base: &BaseBuild, private_dir: &Path, log: &Log) -> Result<WorkTree, Error> {
        let entry = base.entry().to_path_buf();
        let lock = entry.join("work.lock");
        let why_private = match take_lock(&lock) {
            Lock::Taken => {
                let path = entry.join("work");
                let dirty = entry.join("work.dirty");
                crate::crash::crash_point("work-locked");
                if let Err(e) = make_shared_copy(&entry, &base.tree, &path, &dirty, log) {
                    let _ = fs::remove_dir_all(&lock);
                    return Err(e);
                }
                return Ok(WorkTree {
                    path,
                    pristine: base.tree.clone(),
                    shared: Some(Shared { lock, dirty }),
                });
            }
            Lock::Busy { owner } => format!(
                "the cache's working copy is in use by another run{}",
                owner.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            Lock::Unwritable(e) => format!(
                "the cache's working copy cannot be locked ({}: {e})",
                lock.display()
            ),
        };
        let path = private_dir.join("tree");
        log.line(&format!(
            "{why_private}: using a private copy, {}",
            path.display()
        ));
        if private_dir.exists() {
            fs::remove_dir_all(private_dir).map_err(|e| Error::io(private_dir, e))?;
        }
        fs::create_dir_all(private_dir).map_err(|e| Error::io(private_dir, e))?;
        tree::copy_tree(&base.tree, &path, log)?;
        Ok(WorkTree {
            path,
            pristine: base.tree.clone(),
            shared: None,
        })
    }

    /// True when this is the cache entry's shared copy.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Put the tree back to the base state (shared) or delete it (private,
    /// unless `keep`): only where `writes` says the build wrote, when it
    /// knows. Returns how many files were restored.
    pub fn release(mut self, keep: bool, writes: &Writes, log: &Log) -> Result<usize, Error> {
        let Some(shared) = self.shared.take() else {
            if !keep {
                let _ = fs::remove_dir_all(&self.path);
            }
            return Ok(0);
        };
        let restored = match writes.dirs() {
            Some(dirs) => restore_dirs(&self.pristine, &self.path, &dirs),
            None => restore(&self.pristine, &self.path),
        };
        if let Ok(n) = &restored {
            log.line(&format!("working copy restored ({n} file(s))"));
            crate::crash::crash_point("work-restored");
            // Only a complete restore makes the copy reusable.
            let _ = fs::remove_file(&shared.dirty);
            crate::crash::crash_point("work-clean");
        }
        let _ = fs::remove_dir_all(&shared.lock);
        restored
    }
}

/// Where a patched build wrote in its tree, recorded before each write so
/// that a build failing half-way is still restored in full.
#[derive(Debug, Default)]
pub struct Writes {
    /// A make ran: it may have written anywhere.
    anywhere: bool,
    /// Paths relative to the top of the tree.
    paths: BTreeSet<PathBuf>,
}

impl Writes {
    /// The build writes, creates or deletes `rel` (relative to the top),
    /// and files beside it (a command's temporaries and records).
    pub fn path(&mut self, rel: impl Into<PathBuf>) {
        self.paths.insert(rel.into());
    }

    /// The build runs something that may write anywhere in the tree.
    pub fn anywhere(&mut self) {
        self.anywhere = true;
    }

    /// The directories to compare with the pristine tree (each one level
    /// deep): those holding a written path and their parents, up to the
    /// top (a patch deleting a directory's last file deletes the
    /// directory); `None` when only the whole tree will do.
    fn dirs(&self) -> Option<BTreeSet<PathBuf>> {
        if self.anywhere {
            return None;
        }
        let mut dirs = BTreeSet::new();
        for p in &self.paths {
            // Names that leave the tree were refused before; stay safe.
            if p.is_absolute()
                || p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
            {
                return None;
            }
            dirs.extend(p.ancestors().skip(1).map(Path::to_path_buf));
        }
        Some(dirs)
    }
}

/// Mark `work` dirty, then make it a fresh copy of `pristine` unless it
/// is a clean one already (see [`WorkTree::acquire`]). The lock is held.
fn make_shared_copy(
    entry: &Path,
    pristine: &Path,
    work: &Path,
    dirty: &Path,
    log: &Log,
) -> Result<(), Error> {
    let usable = work.join("xen").is_dir() && !dirty.exists();
    // Marked before the first change; cleared only by a complete restore.
    fs::write(dirty, b"").map_err(|e| Error::io(dirty, e))?;
    crate::crash::crash_point("work-marked");
    if usable {
        log.line(&format!("reusing the working copy {}", work.display()));
        return Ok(());
    }
    // Copies moved aside by runs that were killed before removing them.
    for e in fs::read_dir(entry).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with(OLD_WORK) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    if fs::symlink_metadata(work).is_err() {
        log.line(&format!("making the working copy {}", work.display()));
    } else {
        log.line(&format!("re-making the working copy {}", work.display()));
        let aside = entry.join(format!("{OLD_WORK}{}", std::process::id()));
        fs::rename(work, &aside).map_err(|e| Error::io(work, e))?;
        crate::crash::crash_point("work-moved");
        fs::remove_dir_all(&aside).map_err(|e| Error::io(&aside, e))?;
    }
    tree::copy_tree(pristine, work, log)?;
    crate::crash::crash_point("work-copied");
    Ok(())
}

/// Prefix of a working copy moved aside to be removed (`work.old.PID`).
const OLD_WORK: &str = "work.old.";

/// What taking the working copy's lock found.
#[derive(Debug)]
enum Lock {
    Taken,
    /// Another live run holds it (its pid, once written).
    Busy {
        owner: Option<u32>,
    },
    /// The lock cannot be made there (a read-only cache, say).
    Unwritable(std::io::Error),
}

/// `mkdir` as an atomic lock holding the owner's pid; a lock whose owner
/// is gone (killed) is taken over.
fn take_lock(lock: &Path) -> Lock {
    let pid_file = lock.join("pid");
    for _ in 0..2 {
        match fs::create_dir(lock) {
            Ok(()) => {
                let _ = fs::write(&pid_file, std::process::id().to_string());
                return Lock::Taken;
            }
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Lock::Unwritable(e);
            }
            Err(_) => {}
        }
        let owner = fs::read_to_string(&pid_file).unwrap_or_default();
        let owner = owner.trim();
        let alive = !owner.is_empty() && Path::new("/proc").join(owner).exists();
        if alive || owner.is_empty() && lock_is_fresh(lock) {
            return Lock::Busy {
                owner: owner.parse().ok(),
            };
        }
        let _ = fs::remove_dir_all(lock);
    }
    Lock::Busy { owner: None }
}

/// A lock directory without a pid yet: its owner may be writing it.
fn lock_is_fresh(lock: &Path) -> bool {
    fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age.as_secs() < 5)
}

#[derive(PartialEq, Eq)]
enum Kind {
    File,
    Link,
    Dir,
}

/// What identifies a file for the restore: type, size and mtime.
#[derive(PartialEq, Eq)]
struct Stamp {
    kind: Kind,
    len: u64,
    mtime: Option<SystemTime>,
}

fn stamps(top: &Path) -> Result<BTreeMap<PathBuf, Stamp>, Error> {
    let mut out = BTreeMap::new();
    stamps_into(top, top, None, &mut out)?;
    Ok(out)
}

/// The stamps under `dir` (inside `top`, `max_depth` levels deep, or all),
/// keyed by path relative to `top`. A missing `dir` has none.
fn stamps_into(
    top: &Path,
    dir: &Path,
    max_depth: Option<usize>,
    out: &mut BTreeMap<PathBuf, Stamp>,
) -> Result<(), Error> {
    if max_depth.is_some() && !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let mut walk = walkdir::WalkDir::new(dir).follow_links(false).min_depth(1);
    if let Some(d) = max_depth {
        walk = walk.max_depth(d);
    }
    for e in walk {
        let e = e.map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?;
        let Ok(rel) = e.path().strip_prefix(top) else {
            continue;
        };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let meta = fs::symlink_metadata(e.path()).map_err(|err| Error::io(e.path(), err))?;
        let kind = if meta.file_type().is_symlink() {
            Kind::Link
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::File
        };
        let (len, mtime) = match kind {
            Kind::Dir => (0, None),
            _ => (meta.len(), meta.modified().ok()),
        };
        out.insert(rel.to_path_buf(), Stamp { kind, len, mtime });
    }
    Ok(())
}

/// Make `work` equal to `pristine` again (file contents, modes, mtimes).
fn restore(pristine: &Path, work: &Path) -> Result<usize, Error> {
    let want = stamps(pristine)?;
    let have = stamps(work)?;
    restore_entries(pristine, work, &want, &have)
}

/// Make the entries of `dirs` (relative, one level deep) in `work` equal
/// to those in `pristine` again; a directory the build removed or
/// replaced comes back whole.
fn restore_dirs(pristine: &Path, work: &Path, dirs: &BTreeSet<PathBuf>) -> Result<usize, Error> {
    let mut want = BTreeMap::new();
    let mut have = BTreeMap::new();
    for d in dirs {
        stamps_into(pristine, &pristine.join(d), Some(1), &mut want)?;
        stamps_into(work, &work.join(d), Some(1), &mut have)?;
    }
    let gone: Vec<PathBuf> = want
        .iter()
        .filter(|(rel, w)| {
            w.kind == Kind::Dir && have.get(*rel).is_none_or(|h| h.kind != Kind::Dir)
        })
        .map(|(rel, _)| rel.clone())
        .collect();
    for rel in gone {
        stamps_into(pristine, &pristine.join(&rel), None, &mut want)?;
    }
    restore_entries(pristine, work, &want, &have)
}

/// Remove what `have` holds that `want` does not (or holds otherwise),
/// then copy back from `pristine` what is missing.
fn restore_entries(
    pristine: &Path,
    work: &Path,
    want: &BTreeMap<PathBuf, Stamp>,
    have: &BTreeMap<PathBuf, Stamp>,
) -> Result<usize, Error> {
    let mut n = 0;
    // Files and links the build added or replaced: remove them (deepest first).
    for (rel, stamp) in have.iter().rev() {
        match want.get(rel) {
            Some(w) if w == stamp => {}
            Some(w) if w.kind == Kind::Dir && stamp.kind == Kind::Dir => {}
            _ => {
                let p = work.join(rel);
                let r = if stamp.kind == Kind::Dir {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                if let Err(e) = r {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        return Err(Error::io(&p, e));
                    }
                }
            }
        }
    }
    // Then put back what is missing, parents first.
    for (rel, stamp) in want {
        let dst = work.join(rel);
        if fs::symlink_metadata(&dst).is_ok() {
            continue;
        }
        let src = pristine.join(rel);
        match stamp.kind {
            Kind::Dir => fs::create_dir_all(&dst).map_err(|e| Error::io(&dst, e))?,
            Kind::Link => {
                let target = fs::read_link(&src).map_err(|e| Error::io(&src, e))?;
                std::os::unix::fs::symlink(&target, &dst).map_err(|e| Error::io(&dst, e))?;
            }
            Kind::File => {
                fs::copy(&src, &dst).map_err(|e| Error::io(&dst, e))?;
                if let Some(mtime) = stamp.mtime {
                    let f = fs::File::options()
                        .write(true)
                        .open(&dst)
                        .map_err(|e| Error::io(&dst, e))?;
                    f.set_modified(mtime).map_err(|e| Error::io(&dst, e))?;
                }
            }
        }
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cp -a`, then a pause so that later writes get other timestamps.
    fn copy_later(from: &Path, to: &Path) {
        assert!(std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .unwrap()
            .success());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    #[test]
    fn restore_undoes_edits_additions_and_deletions() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("p");
        fs::create_dir_all(pristine.join("a/b")).unwrap();
        fs::write(pristine.join("a/b/f.c"), "one").unwrap();
        fs::write(pristine.join("a/g.o"), "obj").unwrap();
        std::os::unix::fs::symlink("b/f.c", pristine.join("a/link.c")).unwrap();
        let work = dir.path().join("w");
        copy_later(&pristine, &work);
        fs::write(work.join("a/b/f.c"), "two").unwrap();
        fs::remove_file(work.join("a/g.o")).unwrap();
        fs::create_dir_all(work.join("new/dir")).unwrap();
        fs::write(work.join("new/dir/x.o"), "x").unwrap();
        fs::write(work.join("a/extra.o"), "x").unwrap();
        assert_eq!(restore(&pristine, &work).unwrap(), 2);
        assert_eq!(fs::read_to_string(work.join("a/b/f.c")).unwrap(), "one");
        assert_eq!(fs::read_to_string(work.join("a/g.o")).unwrap(), "obj");
        assert!(!work.join("new").exists());
        assert!(!work.join("a/extra.o").exists());
        let m = |p: &Path| fs::metadata(p).unwrap().modified().unwrap();
        assert_eq!(m(&work.join("a/b/f.c")), m(&pristine.join("a/b/f.c")));
        assert!(stamps(&pristine).unwrap() == stamps(&work).unwrap());
    }

    /// The restore limited to where a build wrote: an edited file, the
    /// objects and records written beside it, a new file in a new
    /// directory and a directory the patch emptied (and so deleted) are
    /// all put back, and the trees are equal again, as after a full restore.
    #[test]
    fn restore_of_the_written_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("p");
        fs::create_dir_all(pristine.join("xen/common/gone")).unwrap();
        fs::create_dir_all(pristine.join("xen/arch/x86")).unwrap();
        fs::write(pristine.join("xen/common/version.c"), "one").unwrap();
        fs::write(pristine.join("xen/common/version.o"), "obj").unwrap();
        fs::write(pristine.join("xen/common/.version.o.d"), "deps").unwrap();
        fs::write(pristine.join("xen/common/gone/last.c"), "last").unwrap();
        fs::write(pristine.join("xen/arch/x86/setup.o"), "setup").unwrap();
        let work = dir.path().join("w");
        copy_later(&pristine, &work);
        let mut writes = Writes::default();
        for p in [
            "xen/common/version.c",
            "xen/common/version.o",
            "xen/common/new/extra.c",
            "xen/common/gone/last.c",
        ] {
            writes.path(p);
        }
        // What a run wrote: a patched source, its object and records, a
        // temporary, a new file in a new directory, a deletion.
        fs::write(work.join("xen/common/version.c"), "two").unwrap();
        fs::write(work.join("xen/common/version.o"), "obj2").unwrap();
        fs::write(work.join("xen/common/.version.o.d"), "deps2").unwrap();
        fs::write(work.join("xen/common/.version.o.tmp"), "t").unwrap();
        fs::create_dir_all(work.join("xen/common/new")).unwrap();
        fs::write(work.join("xen/common/new/extra.c"), "x").unwrap();
        fs::remove_dir_all(work.join("xen/common/gone")).unwrap();
        let dirs = writes.dirs().unwrap();
        assert!(!dirs.contains(Path::new("xen/arch/x86")), "{dirs:?}");
        assert_eq!(restore_dirs(&pristine, &work, &dirs).unwrap(), 5);
        assert_eq!(
            fs::read_to_string(work.join("xen/common/version.c")).unwrap(),
            "one"
        );
        assert!(!work.join("xen/common/new").exists());
        assert!(!work.join("xen/common/.version.o.tmp").exists());
        assert!(stamps(&pristine).unwrap() == stamps(&work).unwrap());
        // After a make, only the whole tree will do.
        writes.anywhere();
        assert!(writes.dirs().is_none());
    }
}
