//! Source trees in the tests: private copies of `tests/xenlike`, and
//! snapshots that prove a build never wrote the user's tree.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cp -a src dst` (modes and mtimes kept, as a user's copy would).
pub fn copy_tree(src: &Path, dst: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap();
    assert!(status.success(), "copying {}", src.display());
}

/// A copy of `tests/xenlike` at `dir/name`.
pub fn copy_xenlike(dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    copy_tree(&super::project().join("tests/xenlike"), &dst);
    dst
}

/// Which files' bytes a snapshot keeps (every entry's metadata is kept).
#[derive(Debug, Clone)]
pub enum Contents {
    /// Every file: for small trees.
    All,
    /// Only these paths: a real Xen tree is too big to read whole.
    Only(BTreeSet<PathBuf>),
}

impl Contents {
    fn wants(&self, path: &Path) -> bool {
        match self {
            Contents::All => true,
            Contents::Only(set) => set.contains(path),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    size: u64,
    mode: u32,
    mtime: (i64, i64),
    data: Option<Vec<u8>>,
}

/// Every entry under a root (size, mode, mtime; contents as chosen).
#[derive(Debug)]
pub struct Snapshot {
    root: PathBuf,
    contents: Contents,
    entries: BTreeMap<PathBuf, Entry>,
}

impl Snapshot {
    pub fn take(root: &Path, contents: Contents) -> Snapshot {
        let mut entries = BTreeMap::new();
        for e in walkdir::WalkDir::new(root) {
            let e = e.unwrap_or_else(|e| panic!("walking {}: {e}", root.display()));
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let data =
                (meta.is_file() && contents.wants(e.path())).then(|| fs::read(e.path()).unwrap());
            entries.insert(
                e.path().to_path_buf(),
                Entry {
                    size: meta.size(),
                    mode: meta.permissions().mode(),
                    mtime: (meta.mtime(), meta.mtime_nsec()),
                    data,
                },
            );
        }
        Snapshot {
            root: root.to_path_buf(),
            contents,
            entries,
        }
    }

    /// Every file's bytes too.
    pub fn full(root: &Path) -> Snapshot {
        Snapshot::take(root, Contents::All)
    }

    /// The paths that differ now (changed, removed or added), relative to the root.
    pub fn changed(&self) -> Vec<PathBuf> {
        let after = Snapshot::take(&self.root, self.contents.clone());
        let keys: BTreeSet<&PathBuf> = self.entries.keys().chain(after.entries.keys()).collect();
        keys.into_iter()
            .filter(|k| self.entries.get(*k) != after.entries.get(*k))
            .map(|k| k.strip_prefix(&self.root).unwrap_or(k).to_path_buf())
            .collect()
    }

    /// Assert the tree is as it was, naming the paths that differ.
    pub fn assert_unchanged(&self) {
        let differ = self.changed();
        assert!(
            differ.is_empty(),
            "the source tree {} changed: {differ:?}",
            self.root.display()
        );
    }
}
