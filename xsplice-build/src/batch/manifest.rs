//! The batch manifest: bases × patches, read from TOML or JSON, checked as a
//! whole before anything is built (names unique, dependencies known and
//! acyclic, paths present), and expanded into the ordered list of pairs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::BatchError;

/// Build strings a base may pin (the hypervisor's banner; see `recipe::BuildRecipe::resolve`).
pub const BASE_ENV_KEYS: &[&str] = &[
    "XEN_BUILD_DATE",
    "XEN_BUILD_TIME",
    "XEN_BUILD_HOST",
    "XEN_WHOAMI",
    "XEN_DOMAIN",
];

/// A manifest is text a person or a script writes; anything larger is a mistake.
pub const MANIFEST_MAX: u64 = 16 << 20;

/// What a pair is expected to produce; the batch's exit status compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Built,
    NotPatchable,
    NoChange,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseEntry {
    /// Unique; names the output folder `OUT/<base>/`.
    pub name: String,
    /// Top of the Xen source tree.
    pub srcdir: PathBuf,
    /// The running hypervisor's .config (default: the tree's `xen/.config`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// The running hypervisor's xen-syms; the rebuilt base must reproduce it.
    #[serde(default)]
    pub xen_syms: Option<PathBuf>,
    /// Build with `debug=y`.
    #[serde(default)]
    pub xen_debug: bool,
    /// Build-string profile: values for `XEN_BUILD_DATE` and friends.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchEntry {
    pub path: PathBuf,
    /// Payload name (default: from the file name, as for a single build).
    #[serde(default)]
    pub name: Option<String>,
    /// Name of another patch of the manifest this payload stacks on.
    #[serde(default)]
    pub depends: Option<String>,
    /// A replace-all payload.
    #[serde(default)]
    pub replace: bool,
    #[serde(default = "expect_built")]
    pub expect: Expect,
    /// Bases to build it for (default: every base).
    #[serde(default)]
    pub bases: Option<Vec<String>>,
    /// Refusals the author checked and accepts, `KIND:SUBJECT` exactly as
    /// `--accept` takes them; checked when the manifest is read.
    #[serde(default)]
    pub accept: Vec<String>,
    /// Why (and by whom): required with `accept`, as `--accept-reason`.
    #[serde(default)]
    pub accept_reason: Option<String>,
}

fn expect_built() -> Expect {
    Expect::Built
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default, rename = "base")]
    bases: Vec<BaseEntry>,
    #[serde(default, rename = "patch")]
    patches: Vec<PatchEntry>,
}

/// One base × one patch, with its position in the unsharded order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub index: usize,
    pub base: usize,
    pub patch: usize,
    /// The pair this one stacks on (same base), by index.
    pub depends_on: Option<usize>,
    /// Length of the dependency chain below it (0: stacks on Xen).
    pub depth: usize,
    /// Index of the first pair of its chain: chains are never split across shards.
    pub chain: usize,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub path: PathBuf,
    /// SHA-256 of the manifest's bytes: shards of different manifests never merge.
    pub digest: String,
    pub bases: Vec<BaseEntry>,
    pub patches: Vec<PatchEntry>,
    /// Patch names after the payload-name rule.
    pub names: Vec<String>,
    pub pairs: Vec<Pair>,
}

fn invalid(path: &Path, what: impl std::fmt::Display) -> BatchError {
    BatchError::Manifest {
        path: path.to_path_buf(),
        what: what.to_string(),
    }
}

impl Manifest {
    /// Read and check a manifest; relative paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Manifest, BatchError> {
        let meta = fs::metadata(path).map_err(|e| invalid(path, e))?;
        if !meta.is_file() {
            return Err(invalid(path, "not a regular file"));
        }
        if meta.len() > MANIFEST_MAX {
            return Err(invalid(
                path,
                format!("larger than {MANIFEST_MAX} bytes; split it"),
            ));
        }
        let bytes = fs::read(path).map_err(|e| invalid(path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| invalid(path, "not UTF-8 text"))?;
        let raw: RawManifest = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| invalid(path, e))?
        } else {
            toml::from_str(&text).map_err(|e| invalid(path, e))?
        };
        let digest = super::sha256_hex(text.as_bytes());
        let dir = path.parent().unwrap_or(Path::new("."));
        Manifest::check(path, dir, digest, raw)
    }

    fn check(
        path: &Path,
        dir: &Path,
        digest: String,
        mut raw: RawManifest,
    ) -> Result<Manifest, BatchError> {
        if raw.bases.is_empty() || raw.patches.is_empty() {
            return Err(invalid(
                path,
                "needs at least one [[base]] and one [[patch]]",
            ));
        }
        let base_names = check_bases(path, dir, &mut raw.bases)?;
        let names = check_patches(path, dir, &mut raw.patches, &base_names)?;
        check_dependencies(path, &raw, &names)?;
        let pairs = pairs(&raw, &names);
        Ok(Manifest {
            path: path.to_path_buf(),
            digest,
            bases: raw.bases,
            patches: raw.patches,
            names,
            pairs,
        })
    }
}

/// A manifest's relative path, from its directory.
fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// The bases: well named, once each, only build strings in `env`; their
/// paths resolved. Returns their names.
fn check_bases(
    path: &Path,
    dir: &Path,
    bases: &mut [BaseEntry],
) -> Result<BTreeSet<String>, BatchError> {
    let resolve = |p: &Path| resolve(dir, p);
    let mut base_names = BTreeSet::new();
    for b in bases.iter_mut() {
        if !is_base_name(&b.name) {
            return Err(invalid(
                path,
                format!(
                    "base name {:?}: use letters, digits, '.', '-' and '_' only, not \
                         starting with '.'",
                    b.name
                ),
            ));
        }
        if !base_names.insert(b.name.clone()) {
            return Err(invalid(path, format!("base {:?} is named twice", b.name)));
        }
        if let Some(k) = b.env.keys().find(|k| !BASE_ENV_KEYS.contains(&k.as_str())) {
            return Err(invalid(
                path,
                format!(
                    "base {:?}: env key {k:?} is not a build string ({})",
                    b.name,
                    BASE_ENV_KEYS.join(", ")
                ),
            ));
        }
        b.srcdir = resolve(&b.srcdir);
        b.config = b.config.as_deref().map(resolve);
        b.xen_syms = b.xen_syms.as_deref().map(resolve);
    }
    Ok(base_names)
}

/// The patches: files that exist, one payload name each, known bases;
/// their paths resolved. Returns their payload names, in order.
fn check_patches(
    path: &Path,
    dir: &Path,
    patches: &mut [PatchEntry],
    base_names: &BTreeSet<String>,
) -> Result<Vec<String>, BatchError> {
    let resolve = |p: &Path| resolve(dir, p);
    let mut names = Vec::new();
    for p in patches.iter_mut() {
        p.path = resolve(&p.path);
        if !p.path.is_file() {
            return Err(invalid(
                path,
                format!("patch {}: no such file", p.path.display()),
            ));
        }
        let name = crate::tree::payload_name(&p.path, p.name.as_deref())
            .map_err(|e| invalid(path, format!("patch {}: {e}", p.path.display())))?;
        if names.contains(&name) {
            return Err(invalid(
                path,
                format!("two patches are named {name:?}; give one a `name`"),
            ));
        }
        check_accepts(path, &name, p)?;
        names.push(name);
        if let Some(bs) = &p.bases {
            if let Some(b) = bs.iter().find(|b| !base_names.contains(*b)) {
                return Err(invalid(
                    path,
                    format!("patch {}: unknown base {b:?}", p.path.display()),
                ));
            }
        }
    }
    Ok(names)
}

/// A patch's `accept` and `accept_reason`: the same checks as `--accept`
/// and `--accept-reason`, worded with the manifest's keys.
fn check_accepts(path: &Path, name: &str, p: &PatchEntry) -> Result<(), BatchError> {
    let accepts = p
        .accept
        .iter()
        .map(|a| crate::accept::parse(a))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("patch {name:?}: accept {e}")))?;
    crate::accept::validate(&accepts, p.accept_reason.as_deref(), false).map_err(|e| {
        invalid(
            path,
            format!(
                "patch {name:?}: {}",
                e.to_string()
                    .replace("--accept-reason", "accept_reason")
                    .replace("--accept", "accept")
            ),
        )
    })
}

/// Whether patch `p` is built on base `b`.
fn applies(p: &PatchEntry, b: &BaseEntry) -> bool {
    match &p.bases {
        None => true,
        Some(bs) => bs.contains(&b.name),
    }
}

/// Dependencies: known, not with replace, acyclic, built for the same bases.
fn check_dependencies(path: &Path, raw: &RawManifest, names: &[String]) -> Result<(), BatchError> {
    let index_of = |n: &str| names.iter().position(|m| m == n);
    for (i, p) in raw.patches.iter().enumerate() {
        let Some(dep) = &p.depends else { continue };
        let Some(d) = index_of(dep) else {
            return Err(invalid(
                path,
                format!("patch {:?} depends on unknown patch {dep:?}", names[i]),
            ));
        };
        if p.replace {
            return Err(invalid(
                    path,
                    format!(
                        "patch {:?}: replace and depends conflict (a replace payload stacks on the hypervisor)",
                        names[i]
                    ),
                ));
        }
        let mut seen = BTreeSet::from([i]);
        let mut cur = d;
        loop {
            if !seen.insert(cur) {
                return Err(invalid(
                    path,
                    format!("patch {:?}: dependency cycle", names[i]),
                ));
            }
            match raw.patches[cur].depends.as_deref().and_then(index_of) {
                Some(next) => cur = next,
                None => break,
            }
        }
    }
    for (i, p) in raw.patches.iter().enumerate() {
        if let Some(d) = p.depends.as_deref().and_then(index_of) {
            for b in raw.bases.iter().filter(|b| applies(p, b)) {
                if !applies(&raw.patches[d], b) {
                    return Err(invalid(
                            path,
                            format!(
                                "patch {:?} is built for base {:?} but the patch it depends on, {:?}, is not",
                                names[i], b.name, names[d]
                            ),
                        ));
                }
            }
        }
    }
    Ok(())
}

/// Every (base, patch) pair in manifest order, base by base, with what
/// each stacks on, its depth and its chain's root.
fn pairs(raw: &RawManifest, names: &[String]) -> Vec<Pair> {
    let index_of = |n: &str| names.iter().position(|m| m == n);
    let mut pairs: Vec<Pair> = Vec::new();
    for (bi, b) in raw.bases.iter().enumerate() {
        let first = pairs.len();
        for (pi, p) in raw.patches.iter().enumerate() {
            if applies(p, b) {
                pairs.push(Pair {
                    index: pairs.len(),
                    base: bi,
                    patch: pi,
                    depends_on: None,
                    depth: 0,
                    chain: pairs.len(),
                });
            }
        }
        for k in first..pairs.len() {
            let dep = raw.patches[pairs[k].patch]
                .depends
                .as_deref()
                .and_then(index_of)
                .and_then(|d| pairs[first..].iter().find(|q| q.patch == d))
                .map(|q| q.index);
            pairs[k].depends_on = dep;
        }
        // Depth and chain root, following the (acyclic) dependencies.
        for k in first..pairs.len() {
            let (mut depth, mut cur) = (0, k);
            while let Some(d) = pairs[cur].depends_on {
                depth += 1;
                cur = d;
            }
            pairs[k].depth = depth;
            pairs[k].chain = cur;
        }
    }
    pairs
}

/// `--shard K/N`: this machine builds the chains whose rank is K-1 modulo N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub n: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (k, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected K/N, e.g. 1/4"))?;
        let k: usize = k.parse().map_err(|_| format!("{s:?}: K is not a number"))?;
        let n: usize = n.parse().map_err(|_| format!("{s:?}: N is not a number"))?;
        if n == 0 || k == 0 || k > n {
            return Err(format!("{s:?}: need 1 <= K <= N"));
        }
        Ok(Shard { k, n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl Shard {
    /// The pairs of this shard; a chain (a patch and what stacks on it) stays whole.
    pub fn select<'a>(&self, pairs: &'a [Pair]) -> Vec<&'a Pair> {
        let roots: Vec<usize> = pairs
            .iter()
            .filter(|p| p.chain == p.index)
            .map(|p| p.index)
            .collect();
        pairs
            .iter()
            .filter(|p| {
                let rank = roots.iter().position(|r| *r == p.chain).unwrap_or(0);
                rank % self.n == self.k - 1
            })
            .collect()
    }
}

/// A base name is one folder name under OUT (`bookworm-4.17`): letters,
/// digits, `.`, `-`, `_`; never `.`/`..` nor hidden, so it cannot leave OUT
/// or hide there.
pub fn is_base_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Read a file's bytes once, for fingerprints.
pub fn file_bytes(path: &Path) -> Result<Vec<u8>, BatchError> {
    fs::read(path).map_err(|e| BatchError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Result<Manifest, BatchError> {
        let dir = tempfile::tempdir().unwrap();
        for f in ["a.diff", "b.diff", "c.diff"] {
            fs::write(dir.path().join(f), "").unwrap();
        }
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(Path::new("m"), e))?;
        Manifest::check(Path::new("m.toml"), dir.path(), String::new(), raw)
    }

    #[test]
    fn pairs_follow_manifest_order_and_chains() {
        let m = manifest(
            r#"
            [[base]]
            name = "one"
            srcdir = "/x"
            [[base]]
            name = "two"
            srcdir = "/y"
            [[patch]]
            path = "a.diff"
            [[patch]]
            path = "b.diff"
            depends = "a"
            [[patch]]
            path = "c.diff"
            bases = ["two"]
            expect = "no-change"
            "#,
        )
        .unwrap();
        let got: Vec<(usize, usize, Option<usize>, usize, usize)> = m
            .pairs
            .iter()
            .map(|p| (p.base, p.patch, p.depends_on, p.depth, p.chain))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, None, 0, 0),
                (0, 1, Some(0), 1, 0),
                (1, 0, None, 0, 2),
                (1, 1, Some(2), 1, 2),
                (1, 2, None, 0, 4),
            ]
        );
        assert_eq!(m.patches[2].expect, Expect::NoChange);
        // Chains stay whole and every pair lands in exactly one shard.
        let s1: Vec<usize> = Shard { k: 1, n: 2 }
            .select(&m.pairs)
            .iter()
            .map(|p| p.index)
            .collect();
        let s2: Vec<usize> = Shard { k: 2, n: 2 }
            .select(&m.pairs)
            .iter()
            .map(|p| p.index)
            .collect();
        assert_eq!(s1, vec![0, 1, 4]);
        assert_eq!(s2, vec![2, 3]);
    }

    #[test]
    fn bad_manifests_name_the_problem() {
        let base = "[[base]]\nname = \"b\"\nsrcdir = \"/x\"\n";
        let cases = [
            (format!("{base}[[patch]]\npath = \"a.diff\"\ndepends = \"zz\"\n"), "unknown patch"),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\ndepends = \"b\"\n[[patch]]\npath = \"b.diff\"\ndepends = \"a\"\n"),
                "cycle",
            ),
            (format!("{base}[[patch]]\npath = \"a.diff\"\n[[patch]]\npath = \"a.diff\"\n"), "named"),
            (format!("{base}[[patch]]\npath = \"nope.diff\"\n"), "no such file"),
            (format!("{base}{base}[[patch]]\npath = \"a.diff\"\n"), "named twice"),
            (format!("{base}[[patch]]\npath = \"a.diff\"\nbases = [\"q\"]\n"), "unknown base"),
            (format!("{base}[[patch]]\npath = \"a.diff\"\nfoo = 1\n"), "unknown field"),
            (
                "[[base]]\nname = \"b\"\nsrcdir = \"/x\"\nenv = { CC = \"clang\" }\n[[patch]]\npath = \"a.diff\"\n".to_string(),
                "not a build string",
            ),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\n[[patch]]\npath = \"b.diff\"\ndepends = \"a\"\nreplace = true\n"),
                "conflict",
            ),
            (base.to_string(), "at least one"),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\naccept = [\"initialiser_changed:counter\"]\n"),
                "accept needs accept_reason",
            ),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\naccept_reason = \"checked\"\n"),
                "accept_reason without accept",
            ),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\naccept = [\"no_such_kind:x\"]\naccept_reason = \"r\"\n"),
                "not a refusal kind",
            ),
            (
                format!("{base}[[patch]]\npath = \"a.diff\"\naccept = [\"layout_changed:struct*\"]\naccept_reason = \"r\"\n"),
                "accept",
            ),
        ];
        for (text, want) in cases {
            let err = manifest(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}\n=> {err}\n(wanted {want:?})");
        }
    }

    #[test]
    fn base_names_may_hold_dots_but_not_leave_out() {
        for good in ["bookworm-4.17", "trixie_4.20.4", "b"] {
            assert!(is_base_name(good), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "x\u{e9}"] {
            assert!(!is_base_name(bad), "{bad:?}");
        }
        let err =
            manifest("[[base]]\nname = \"..\"\nsrcdir = \"/x\"\n[[patch]]\npath = \"a.diff\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("'.'"), "{err}");
    }

    /// The TOML block of a Markdown text.
    fn toml_block(text: &str) -> String {
        let start = text.find("```toml\n").expect("a ```toml block") + "```toml\n".len();
        let len = text[start..].find("```").expect("the block's end");
        text[start..start + len].to_string()
    }

    /// The manifests shown to users (docs/fleet.md, `batch --help`) are
    /// loaded as written, with the files they name.
    #[test]
    fn documented_manifests_load_as_written() {
        let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/fleet.md"));
        let help: String = super::super::AFTER_HELP
            .lines()
            .skip(1)
            .take_while(|l| !l.is_empty())
            .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
            .collect();
        for (what, text) in [("docs/fleet.md", toml_block(doc)), ("batch --help", help)] {
            let raw: RawManifest =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            let dir = tempfile::tempdir().unwrap();
            for p in &raw.patches {
                fs::write(dir.path().join(&p.path), "").unwrap();
            }
            let m = Manifest::check(Path::new("fleet.toml"), dir.path(), String::new(), raw)
                .unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
            assert_eq!(m.bases[0].name, "bookworm-4.17", "{what}");
            assert!(!m.pairs.is_empty(), "{what}");
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { k: 2, n: 3 }));
        for bad in ["0/3", "4/3", "1/0", "x", "1/x"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
