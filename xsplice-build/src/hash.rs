//! Hashing for the base-build cache key: BLAKE3 (SIMD, from the `blake3`
//! crate), files hashed in parallel, and a stat cache so that a warm run
//! re-reads only the files whose size, mtime, ctime or inode changed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::DigestMismatch;
use crate::error::Error;

/// Incremental hash with length-prefixed fields.
#[derive(Clone, Default)]
pub struct Hasher(blake3::Hasher);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Hash a length-prefixed field, so that ("ab","c") and ("a","bc") differ.
    pub fn field(&mut self, data: &[u8]) {
        self.update(&(data.len() as u64).to_le_bytes());
        self.update(data);
    }

    pub fn finish_hex(&self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// What the file system says about a file; a file whose stamp is unchanged
/// is taken to have unchanged contents (as git's index and make do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: u64,
}

impl Stamp {
    pub fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// Digest of a file's contents.
pub type Digest = [u8; 32];

/// Remembered digests of one tree's files, by path relative to the tree.
pub struct StatCache {
    path: Option<PathBuf>,
    entries: HashMap<String, (Stamp, Digest)>,
    dirty: bool,
}

/// The stat cache's `format`: a file of another format (or none) starts empty.
const STAT_CACHE_FORMAT: &str = "xsplice-build stat cache v2";

/// A stat cache on disk: the tree it is about, and each file's stamp and
/// digest (hex).
#[derive(serde::Serialize, serde::Deserialize)]
struct StatCacheFile {
    format: String,
    top: PathBuf,
    entries: BTreeMap<String, (Stamp, String)>,
}

/// A file changed this recently may change again within the timestamp
/// granularity without its stamp changing: such entries are not kept.
const RACY_SECONDS: i64 = 2;

impl StatCache {
    /// A cache that remembers nothing (no cache directory).
    pub fn none() -> StatCache {
        StatCache {
            path: None,
            entries: HashMap::new(),
            dirty: false,
        }
    }

    /// The stat cache of tree `top`, kept under `dir` (a missing or
    /// unreadable one starts empty: it is only an accelerator).
    pub fn load(dir: &Path, top: &Path) -> StatCache {
        let top = fs::canonicalize(top).unwrap_or_else(|_| top.to_path_buf());
        let id = blake3::hash(top.as_os_str().as_encoded_bytes()).to_hex();
        let path = dir.join(&id[..32]);
        let mut entries = HashMap::new();
        let file = fs::read(&path)
            .ok()
            .and_then(|data| serde_json::from_slice::<StatCacheFile>(&data).ok())
            .filter(|f| f.format == STAT_CACHE_FORMAT && f.top == top);
        for (rel, (stamp, hexd)) in file.map(|f| f.entries).unwrap_or_default() {
            if let Some(d) = digest_from_hex(&hexd) {
                entries.insert(rel, (stamp, d));
            }
        }
        StatCache {
            path: Some(path),
            entries,
            dirty: false,
        }
    }

    /// Digests of `files` (paths relative to `top`, with their stamps), in
    /// order: remembered ones where the stamp is unchanged, the rest read
    /// and hashed in parallel.
    pub fn digests(&mut self, top: &Path, files: &[(String, Stamp)]) -> Result<Vec<Digest>, Error> {
        let computed: Vec<Result<Option<Digest>, Error>> = files
            .par_iter()
            .map(|(rel, stamp)| {
                if let Some((s, _)) = self.entries.get(rel) {
                    if s == stamp {
                        return Ok(None);
                    }
                }
                let path = top.join(rel);
                let data = fs::read(&path).map_err(|e| Error::io(&path, e))?;
                Ok(Some(*blake3::hash(&data).as_bytes()))
            })
            .collect();
        let mut out = Vec::with_capacity(files.len());
        for ((rel, stamp), c) in files.iter().zip(computed) {
            match c? {
                Some(d) => {
                    self.entries.insert(rel.clone(), (*stamp, d));
                    self.dirty = true;
                    out.push(d);
                }
                None => out.push(self.entries[rel].1),
            }
        }
        Ok(out)
    }

    /// Forget files no longer in the tree.
    pub fn retain(&mut self, files: &[(String, Stamp)]) {
        if self.entries.len() != files.len() {
            let keep: std::collections::HashSet<&str> =
                files.iter().map(|(r, _)| r.as_str()).collect();
            self.entries.retain(|r, _| keep.contains(r.as_str()));
            self.dirty = true;
        }
    }

    /// Write the cache back (atomically; failures are ignored, the cache
    /// only saves time).
    pub fn save(&self, top: &Path) {
        let (Some(path), true) = (&self.path, self.dirty) else {
            return;
        };
        let top = fs::canonicalize(top).unwrap_or_else(|_| top.to_path_buf());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(i64::MAX);
        let entries = self
            .entries
            .iter()
            .filter(|(_, (s, _))| s.mtime.0 < now - RACY_SECONDS && s.ctime.0 < now - RACY_SECONDS)
            .map(|(rel, (s, d))| (rel.clone(), (*s, hex(d))))
            .collect();
        let file = StatCacheFile {
            format: STAT_CACHE_FORMAT.to_string(),
            top,
            entries,
        };
        let Ok(text) = serde_json::to_vec(&file) else {
            return;
        };
        let Some(dir) = path.parent() else { return };
        if fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(format!(
            ".tmp.{}.{}",
            std::process::id(),
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(&text));
        if written.is_err() || fs::rename(&tmp, path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// BLAKE3 of a file's contents, read in one pass.
pub fn file_digest(path: &Path) -> std::io::Result<Digest> {
    let mut h = blake3::Hasher::new();
    h.update_reader(fs::File::open(path)?)?;
    Ok(*h.finalize().as_bytes())
}

/// What a cache entry held when it was completed: the BLAKE3 digest of
/// every file a run reads from it, by path relative to the entry. Checked
/// before a run uses one of those files, so a file changed on disk since
/// (a flipped bit, a truncation) is found instead of being built on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigests {
    /// [`FILE_DIGESTS_FORMAT`].
    pub format: String,
    /// Relative path → lower-case hex BLAKE3 of its contents.
    pub files: std::collections::BTreeMap<String, String>,
}

pub const FILE_DIGESTS_FORMAT: &str = "xsplice-build file digests v1";

impl FileDigests {
    /// Hash `files` (relative to `root`) in parallel.
    pub fn record(root: &Path, files: &[String]) -> Result<FileDigests, Error> {
        let digests: Result<Vec<(String, String)>, Error> = files
            .par_iter()
            .map(|rel| {
                let path = root.join(rel);
                let d = file_digest(&path).map_err(|e| Error::io(&path, e))?;
                Ok((rel.clone(), hex(&d)))
            })
            .collect();
        Ok(FileDigests {
            format: FILE_DIGESTS_FORMAT.into(),
            files: digests?.into_iter().collect(),
        })
    }

    /// The manifest at `path`; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> Result<Option<FileDigests>, Error> {
        let data = match fs::read(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        match serde_json::from_slice::<FileDigests>(&data) {
            Ok(m) if m.format == FILE_DIGESTS_FORMAT => Ok(Some(m)),
            Ok(m) => Err(Error::io(
                path,
                std::io::Error::other(format!("unknown format {:?}", m.format)),
            )),
            Err(e) => Err(Error::io(path, std::io::Error::other(e.to_string()))),
        }
    }

    /// Write the manifest atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let data = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
        xsplice_target::limits::write_atomic(path, &data).map_err(|e| match e {
            xsplice_target::Error::Io { source, .. } => Error::io(path, source),
            other => Error::io(path, std::io::Error::other(other.to_string())),
        })
    }

    /// Whether `rel` (under `root`) still has its recorded contents.
    pub fn check(&self, root: &Path, rel: &str) -> Result<(), DigestMismatch> {
        let file = root.join(rel);
        let actual = file_digest(&file)
            .map(|d| hex(&d))
            .map_err(|e| e.to_string());
        let expected = self.files.get(rel).cloned();
        if expected.is_some() && actual.as_ref().ok() == expected.as_ref() {
            return Ok(());
        }
        Err(DigestMismatch {
            file,
            expected,
            actual,
        })
    }
}

/// A digest written by [`hex`].
fn digest_from_hex(hexd: &str) -> Option<Digest> {
    if hexd.len() != 64 {
        return None;
    }
    let mut d = [0u8; 32];
    for (i, b) in d.iter_mut().enumerate() {
        *b = u8::from_str_radix(hexd.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed() {
        let mut a = Hasher::new();
        a.field(b"ab");
        a.field(b"c");
        let mut b = Hasher::new();
        b.field(b"a");
        b.field(b"bc");
        assert_ne!(a.finish_hex(), b.finish_hex());
        assert_eq!(a.finish_hex().len(), 64);
    }

    /// A remembered digest is used only while the stamp is unchanged; the
    /// cache survives a save/load round trip.
    #[test]
    fn stat_cache_rehashes_changed_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("tree");
        fs::create_dir_all(&top).unwrap();
        fs::write(top.join("a.c"), b"one").unwrap();
        let stamp = |p: &str| Stamp::of(&fs::metadata(top.join(p)).unwrap());
        let cache_dir = dir.path().join("stat");
        let mut c = StatCache::load(&cache_dir, &top);
        let files = vec![("a.c".to_string(), stamp("a.c"))];
        let d1 = c.digests(&top, &files).unwrap();
        assert_eq!(d1[0], *blake3::hash(b"one").as_bytes());
        // Same stamp, different recorded digest: the cache answers.
        let fake = [7u8; 32];
        c.entries.insert("a.c".into(), (files[0].1, fake));
        assert_eq!(c.digests(&top, &files).unwrap()[0], fake);
        // A changed stamp re-reads the file.
        fs::write(top.join("a.c"), b"two!").unwrap();
        let files2 = vec![("a.c".to_string(), stamp("a.c"))];
        assert_eq!(
            c.digests(&top, &files2).unwrap()[0],
            *blake3::hash(b"two!").as_bytes()
        );
        // Round trip (entries are old enough not to be racy).
        let old = Stamp {
            mtime: (1_000_000, 5),
            ctime: (1_000_000, 6),
            ..files2[0].1
        };
        c.entries.insert("a b.c".into(), (old, fake));
        c.save(&top);
        let c2 = StatCache::load(&cache_dir, &top);
        assert_eq!(c2.entries.get("a b.c"), Some(&(old, fake)));
        // Just-modified files are not remembered (racy).
        assert!(!c2.entries.contains_key("a.c"));
    }

    /// A manifest round-trips; a changed byte, a missing file and an
    /// unrecorded one are each reported with both sides.
    #[test]
    fn file_digests_find_changed_missing_and_unrecorded_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("t")).unwrap();
        fs::write(root.join("t/a.o"), b"object").unwrap();
        fs::write(root.join("b"), b"records").unwrap();
        let m = FileDigests::record(root, &["t/a.o".into(), "b".into()]).unwrap();
        assert_eq!(m.files["b"], hex(blake3::hash(b"records").as_bytes()));
        let path = root.join("digests.json");
        m.save(&path).unwrap();
        assert_eq!(FileDigests::load(&path).unwrap(), Some(m.clone()));
        assert_eq!(FileDigests::load(&root.join("none")).unwrap(), None);
        assert!(m.check(root, "t/a.o").is_ok());
        fs::write(root.join("t/a.o"), b"objecT").unwrap();
        let bad = m.check(root, "t/a.o").unwrap_err();
        assert_eq!(bad.expected.as_deref(), Some(m.files["t/a.o"].as_str()));
        assert_eq!(bad.actual, Ok(hex(blake3::hash(b"objecT").as_bytes())));
        assert!(bad.to_string().contains("t/a.o: expected BLAKE3 "), "{bad}");
        fs::remove_file(root.join("b")).unwrap();
        assert!(m.check(root, "b").unwrap_err().actual.is_err());
        fs::write(root.join("c"), b"x").unwrap();
        assert_eq!(m.check(root, "c").unwrap_err().expected, None);
    }
}
