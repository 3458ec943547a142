//! The target hypervisor as a whole: which Xen release it is and the
//! loader rules that differ between the releases the tool supports (4.17
//! to 4.22; docs/xen-versions.md lists the differences release by release
//! and where they are in Xen's sources).
//!
//! Everything is detected, never passed by the user: the release from
//! xen-syms itself (the constants its `xen_major_version()` /
//! `xen_minor_version()` return and the string `xen_extra_version()`
//! returns), else from the tree's `xen/Makefile`. A release outside
//! [`RELEASES`] is refused ([`UnsupportedRelease`]): its loader has not
//! been read, so its rules would be a guess.

use std::fmt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use super::facts::{default_tree, xen_dir, Abi, ENDBR64};
use crate::xensyms::XenSyms;

/// A Xen release, as `XEN_VERSION.XEN_SUBVERSION` plus the extra version
/// (`.4`, `.5-pre`, ...) when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct XenVersion {
    pub major: u32,
    pub minor: u32,
    /// `XEN_EXTRAVERSION` (e.g. `.4`); `None` when it could not be read.
    pub extra: Option<String>,
}

impl XenVersion {
    /// `4.20` (without the extra version): the release series.
    pub fn series(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// Whether this is release `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// The supported release this is, if it is one.
    pub fn release(&self) -> Option<&'static Release> {
        RELEASES
            .iter()
            .find(|r| (r.major, r.minor) == (self.major, self.minor))
    }
}

impl fmt::Display for XenVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}{}",
            self.major,
            self.minor,
            self.extra.as_deref().unwrap_or("")
        )
    }
}

/// Where the version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// The code of xen-syms's version functions.
    XenSyms,
    /// The tree's `xen/Makefile`.
    Tree,
}

/// The loader rules that differ between supported releases, as each
/// release's `common/livepatch.c` has them. Rules common to all of them
/// live in the checks themselves (docs/xen-versions.md: a payload's
/// duplicate sections, for one, are read first-wins by every supported
/// loader).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderRules {
    /// `.livepatch.xen_depends` is compared with the running hypervisor's
    /// build-id right after the ELF is parsed, before the payload is
    /// allocated and relocated (`load_payload_data` calls
    /// `check_xen_buildid` first). Otherwise it is compared after the
    /// payload's sections are checked. Either way a mismatch refuses the
    /// upload; the order decides which error a user sees first.
    pub xen_depends_checked_first: bool,
    /// The loader applies `.alt_call_sites` (4-byte entries, each the
    /// 32-bit offset of a `call *disp32(%rip)` in the payload's text) and
    /// refuses entries outside the text (`prepare_payload`). Older loaders
    /// ignore the section (their altcalls are `.altinstructions` entries).
    pub alt_call_sites: bool,
    /// A malformed `.altinstructions` entry (replacement longer than the
    /// original code and its padding, or longer than the patch buffer)
    /// fails the upload: `_apply_alternatives` returns `-ENOSPC` and
    /// `prepare_payload` passes it on. Otherwise (Xen 4.17) the same
    /// entry hits a `BUG_ON` there: the hypervisor crashes while loading.
    pub bad_alternative_refused: bool,
}

/// A release whose loader the tool has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub major: u32,
    pub minor: u32,
    pub rules: LoaderRules,
}

impl Release {
    /// `4.20`.
    pub fn series(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// Xen 4.17's loader (Debian's 4.17.5+72, whose backports are in).
const RULES_417: LoaderRules = LoaderRules {
    xen_depends_checked_first: false,
    alt_call_sites: false,
    bad_alternative_refused: false,
};
/// 4.18 (read in 4.18.6) checks the Xen build-id first and refuses bad
/// alternatives; 4.19 and 4.20 change nothing a payload sees.
const RULES_418: LoaderRules = LoaderRules {
    xen_depends_checked_first: true,
    bad_alternative_refused: true,
    ..RULES_417
};
/// 4.21 applies `.alt_call_sites`; 4.22 changes nothing a payload sees.
const RULES_421: LoaderRules = LoaderRules {
    alt_call_sites: true,
    ..RULES_418
};

const fn release(minor: u32, rules: LoaderRules) -> Release {
    Release {
        major: 4,
        minor,
        rules,
    }
}

/// Every supported release, oldest first: the one table of per-release
/// loader rules (references: docs/xen-versions.md, one row each).
pub const RELEASES: [Release; 6] = [
    release(17, RULES_417),
    release(18, RULES_418),
    release(19, RULES_418),
    release(20, RULES_418),
    release(21, RULES_421),
    release(22, RULES_421),
];

/// The supported releases as a list for messages: `4.17, 4.18, ..., 4.22`.
pub fn supported_releases() -> String {
    RELEASES
        .iter()
        .map(Release::series)
        .collect::<Vec<_>>()
        .join(", ")
}

impl LoaderRules {
    /// The rules of a supported release.
    pub fn of(v: &XenVersion) -> Option<LoaderRules> {
        v.release().map(|r| r.rules)
    }

    /// The rules when the release is unknown: the oldest supported
    /// release's, with `.alt_call_sites` as xen-syms says (its linker
    /// script defines `__alt_call_sites_start` exactly when the loader
    /// applies the table).
    pub fn unknown_release(alt_call_sites: bool) -> LoaderRules {
        LoaderRules {
            alt_call_sites,
            ..RELEASES[0].rules
        }
    }
}

/// A tree or xen-syms of a release outside [`RELEASES`]: refused, since
/// the loader rules a payload must pass are those of its release. A newer
/// release is refused too: each release so far has changed the loader
/// (docs/xen-versions.md), so its rules cannot be assumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedRelease {
    pub found: XenVersion,
    pub source: VersionSource,
    /// The file the release was read from (xen-syms or `xen/Makefile`).
    pub path: PathBuf,
}

impl UnsupportedRelease {
    /// Newer than the newest supported release (else older than the oldest).
    pub fn is_newer(&self) -> bool {
        let newest = &RELEASES[RELEASES.len() - 1];
        self.found.at_least(newest.major, newest.minor)
    }
}

impl fmt::Display for UnsupportedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = match self.source {
            VersionSource::XenSyms => "read from its version functions",
            VersionSource::Tree => "XEN_VERSION.XEN_SUBVERSION",
        };
        let why = if self.is_newer() {
            "newer than any release whose live-patch loader xsplice-build knows; its loader \
             rules cannot be assumed (docs/xen-versions.md says how a release is added)"
        } else {
            "older than the oldest supported release"
        };
        write!(
            f,
            "{}: Xen {} ({from}) is not supported: {why}; supported releases: {}",
            self.path.display(),
            self.found,
            supported_releases()
        )
    }
}

impl std::error::Error for UnsupportedRelease {}

/// Refuse a release outside [`RELEASES`]; `path` is where it was read.
pub fn check_supported(
    v: &XenVersion,
    source: VersionSource,
    path: &Path,
) -> Result<&'static Release, UnsupportedRelease> {
    v.release().ok_or_else(|| UnsupportedRelease {
        found: v.clone(),
        source,
        path: path.to_path_buf(),
    })
}

/// The release of a source tree (its `xen/Makefile`), refused when
/// unsupported; `Ok(None)` when the Makefile does not say (a synthetic tree).
pub fn check_tree_release(tree: &Path) -> Result<Option<XenVersion>, UnsupportedRelease> {
    let makefile = tree.join("xen/Makefile");
    let Some(v) = version_from_makefile(&makefile) else {
        return Ok(None);
    };
    check_supported(&v, VersionSource::Tree, &makefile)?;
    Ok(Some(v))
}

/// What the tool knows about the hypervisor a payload is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `None` when neither xen-syms nor a tree could tell (then the rules
    /// are Xen 4.17's, the oldest supported).
    pub version: Option<XenVersion>,
    pub version_source: Option<VersionSource>,
    pub abi: Abi,
    pub rules: LoaderRules,
}

impl Target {
    /// "Xen 4.20.4" or "Xen (version unknown)": how reports name the target.
    pub fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("Xen {v}"),
            None => "Xen (version unknown)".to_string(),
        }
    }
}

/// The target as xen-syms (its bytes in `data`) and, failing that, the
/// tree say; a release outside [`RELEASES`] is refused.
pub fn detect(
    xen: &XenSyms,
    data: &[u8],
    tree: Option<&Path>,
    abi: Abi,
) -> Result<Target, UnsupportedRelease> {
    let from_syms = version_from_xen_syms(xen, data);
    let tree = tree
        .map(Path::to_path_buf)
        .or_else(|| default_tree(xen.path()));
    let found = match from_syms {
        Some(v) => Some((v, VersionSource::XenSyms, xen.path().to_path_buf())),
        None => tree.as_deref().and_then(xen_dir).and_then(|x| {
            let makefile = x.join("Makefile");
            version_from_makefile(&makefile).map(|v| (v, VersionSource::Tree, makefile))
        }),
    };
    let Some((version, source, path)) = found else {
        let alt_call_sites = xen
            .symbols()
            .iter()
            .any(|s| s.name == "__alt_call_sites_start");
        return Ok(Target {
            version: None,
            version_source: None,
            abi,
            rules: LoaderRules::unknown_release(alt_call_sites),
        });
    };
    let release = check_supported(&version, source, &path)?;
    Ok(Target {
        rules: release.rules,
        version: Some(version),
        version_source: Some(source),
        abi,
    })
}

/// `XEN_VERSION`, `XEN_SUBVERSION` and `XEN_EXTRAVERSION` of the tree's
/// `xen/Makefile` (without the vendor suffix, which is not in the tree).
pub fn version_from_tree(tree: &Path) -> Option<XenVersion> {
    version_from_makefile(&xen_dir(tree)?.join("Makefile"))
}

/// The version a Xen `xen/Makefile` sets.
pub fn version_from_makefile(makefile: &Path) -> Option<XenVersion> {
    let text = std::fs::read_to_string(makefile).ok()?;
    let var = |name: &str| -> Option<String> {
        text.lines().find_map(|l| {
            let l = l.trim_start().strip_prefix("export")?.trim_start();
            let rest = l.strip_prefix(name)?.trim_start();
            let rest = rest
                .strip_prefix("?=")
                .or_else(|| rest.strip_prefix(":="))
                .or_else(|| rest.strip_prefix('='))?;
            Some(rest.trim().to_string())
        })
    };
    let major = var("XEN_VERSION")?.parse().ok()?;
    let minor = var("XEN_SUBVERSION")?.parse().ok()?;
    let extra = var("XEN_EXTRAVERSION").map(|e| e.replace("$(XEN_VENDORVERSION)", ""));
    Some(XenVersion {
        major,
        minor,
        extra,
    })
}

/// The bytes of xen-syms at a virtual address (up to `len`), from the
/// section that contains it.
fn bytes_at(file: &object::File<'_>, addr: u64, len: u64) -> Option<Vec<u8>> {
    file.sections().find_map(|s| {
        let start = s.address();
        let end = start.checked_add(s.size())?;
        if addr < start || addr >= end {
            return None;
        }
        let data = s.data().ok()?;
        let from = usize::try_from(addr - start).ok()?;
        let to = from
            .saturating_add(usize::try_from(len).ok()?)
            .min(data.len());
        data.get(from..to).map(<[u8]>::to_vec)
    })
}

/// The code of a function that returns a constant, after an optional
/// `endbr64`: `mov $imm32, %eax`.
fn returned_constant(file: &object::File<'_>, xen: &XenSyms, name: &str) -> Option<u32> {
    let sym = xen.lookup(name, None).ok()?;
    let code = bytes_at(file, sym.addr, 16)?;
    let code = code.strip_prefix(&ENDBR64[..]).unwrap_or(&code);
    match code {
        [0xb8, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

/// The string a function returns, after an optional `endbr64`:
/// `lea disp32(%rip), %rax`.
fn returned_string(file: &object::File<'_>, xen: &XenSyms, name: &str) -> Option<String> {
    let sym = xen.lookup(name, None).ok()?;
    let code = bytes_at(file, sym.addr, 16)?;
    let (skip, code) = match code.strip_prefix(&ENDBR64[..]) {
        Some(rest) => (4u64, rest),
        None => (0, &code[..]),
    };
    let [0x48, 0x8d, 0x05, a, b, c, d, ..] = code else {
        return None;
    };
    let disp = i32::from_le_bytes([*a, *b, *c, *d]);
    let target = sym
        .addr
        .checked_add(skip + 7)?
        .checked_add_signed(disp.into())?;
    let bytes = bytes_at(file, target, 64)?;
    let end = bytes.iter().position(|&b| b == 0)?;
    String::from_utf8(bytes[..end].to_vec()).ok()
}

/// The release xen-syms was built from, read from the code of its version
/// functions (they return the build's constants).
pub fn version_from_xen_syms(xen: &XenSyms, data: &[u8]) -> Option<XenVersion> {
    let file = object::File::parse(data).ok()?;
    let major = returned_constant(&file, xen, "xen_major_version")?;
    let minor = returned_constant(&file, xen, "xen_minor_version")?;
    let extra = returned_string(&file, xen, "xen_extra_version");
    Some(XenVersion {
        major,
        minor,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_a_makefile() {
        let dir = tempfile::tempdir().unwrap();
        let xen = dir.path().join("xen");
        std::fs::create_dir_all(xen.join("include/public")).unwrap();
        std::fs::write(xen.join("include/public/sysctl.h"), "").unwrap();
        std::fs::write(
            xen.join("Makefile"),
            "# comment\nexport XEN_VERSION       = 4\nexport XEN_SUBVERSION    = 20\n\
             export XEN_EXTRAVERSION ?= .4$(XEN_VENDORVERSION)\n",
        )
        .unwrap();
        let v = version_from_tree(dir.path()).unwrap();
        assert_eq!((v.major, v.minor), (4, 20));
        assert_eq!(v.to_string(), "4.20.4");
        assert_eq!(v.series(), "4.20");
        std::fs::write(xen.join("Makefile"), "export XEN_VERSION = 4\n").unwrap();
        assert_eq!(version_from_tree(dir.path()), None);
    }

    fn v(minor: u32) -> XenVersion {
        XenVersion {
            major: 4,
            minor,
            extra: None,
        }
    }

    #[test]
    fn rules_per_release() {
        let rules = |minor| LoaderRules::of(&v(minor)).unwrap();
        assert!(!rules(17).xen_depends_checked_first && !rules(17).bad_alternative_refused);
        for minor in [18, 19, 20] {
            let r = rules(minor);
            assert!(r.xen_depends_checked_first && r.bad_alternative_refused && !r.alt_call_sites);
        }
        for minor in [21, 22] {
            assert!(rules(minor).alt_call_sites, "4.{minor}");
        }
        // Unknown: the oldest supported release's, altcalls as xen-syms says.
        assert_eq!(LoaderRules::unknown_release(false), rules(17));
        assert!(LoaderRules::unknown_release(true).alt_call_sites);
        assert!(v(21).at_least(4, 20) && !v(17).at_least(4, 20));
        assert_eq!(supported_releases(), "4.17, 4.18, 4.19, 4.20, 4.21, 4.22");
    }

    /// Releases outside 4.17..=4.22 are refused, naming the release found,
    /// where it was read and the supported ones; older and newer are told apart.
    #[test]
    fn unsupported_releases_are_refused_by_name() {
        for minor in [17, 18, 19, 20, 21, 22] {
            assert!(v(minor).release().is_some(), "4.{minor}");
        }
        let path = Path::new("/src/xen/Makefile");
        for (found, newer) in [(v(16), false), (v(2), false), (v(23), true)] {
            let e = check_supported(&found, VersionSource::Tree, path).unwrap_err();
            assert_eq!(e.is_newer(), newer, "{found}");
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("/src/xen/Makefile: Xen {found} ")),
                "{msg}"
            );
            assert!(
                msg.ends_with("supported releases: 4.17, 4.18, 4.19, 4.20, 4.21, 4.22"),
                "{msg}"
            );
            assert_eq!(msg.contains("newer than any release"), newer, "{msg}");
        }
        let five = XenVersion {
            major: 5,
            minor: 0,
            extra: Some("-rc".into()),
        };
        let e = check_supported(&five, VersionSource::XenSyms, Path::new("xen-syms")).unwrap_err();
        assert!(e.is_newer());
        assert!(e
            .to_string()
            .contains("Xen 5.0-rc (read from its version functions)"));
    }

    /// A tree's release from its `xen/Makefile`: supported, unsupported,
    /// or not said at all (a synthetic tree passes).
    #[test]
    fn tree_release_checked_from_its_makefile() {
        let dir = tempfile::tempdir().unwrap();
        let xen = dir.path().join("xen");
        std::fs::create_dir_all(&xen).unwrap();
        assert_eq!(check_tree_release(dir.path()), Ok(None));
        std::fs::write(xen.join("Makefile"), "all:\n").unwrap();
        assert_eq!(check_tree_release(dir.path()), Ok(None));
        let makefile = |minor: u32| {
            format!(
                "export XEN_VERSION       = 4\nexport XEN_SUBVERSION    = {minor}\n\
                 export XEN_EXTRAVERSION ?= -unstable$(XEN_VENDORVERSION)\n"
            )
        };
        std::fs::write(xen.join("Makefile"), makefile(22)).unwrap();
        assert_eq!(
            check_tree_release(dir.path()).unwrap().unwrap().to_string(),
            "4.22-unstable"
        );
        std::fs::write(xen.join("Makefile"), makefile(23)).unwrap();
        let e = check_tree_release(dir.path()).unwrap_err();
        assert_eq!(e.path, xen.join("Makefile"));
        assert_eq!(e.source, VersionSource::Tree);
        assert_eq!(e.found.to_string(), "4.23-unstable");
    }

    /// Each supported release's xen-syms says which release it is, the same
    /// as its tree's Makefile, and gets that release's rules.
    #[test]
    #[ignore = "real-Xen tier: needs XSPLICE_XEN_TREE, XSPLICE_XEN_TREE_418, _419, _420, _421 and _422 (ci/test runs it)"]
    fn real_releases_detected_from_xen_syms() {
        for (var, series) in [
            ("XSPLICE_XEN_TREE", "4.17"),
            ("XSPLICE_XEN_TREE_418", "4.18"),
            ("XSPLICE_XEN_TREE_419", "4.19"),
            ("XSPLICE_XEN_TREE_420", "4.20"),
            ("XSPLICE_XEN_TREE_421", "4.21"),
            ("XSPLICE_XEN_TREE_422", "4.22"),
        ] {
            let tree = std::path::PathBuf::from(std::env::var_os(var).unwrap_or_else(|| {
                panic!("{var} is not set: the real-Xen tier needs a built Xen tree")
            }));
            let path = tree.join("xen/xen-syms");
            let data = std::fs::read(&path).unwrap();
            let xen = XenSyms::load(&path).unwrap();
            let from_syms = version_from_xen_syms(&xen, &data).expect("version from xen-syms");
            assert_eq!(from_syms.series(), series, "{var}");
            assert_eq!(Some(&from_syms), version_from_tree(&tree).as_ref(), "{var}");
            // Without a tree beside it, xen-syms alone decides.
            let t = detect(&xen, &data, None, Abi::LivepatchV2).unwrap();
            assert_eq!(t.version_source, Some(VersionSource::XenSyms));
            assert_eq!(Some(t.rules), LoaderRules::of(&from_syms), "{var}");
            // The linker script defines the altcall table's bounds exactly
            // on the releases whose loader applies it.
            let has_table = xen
                .symbols()
                .iter()
                .any(|s| s.name == "__alt_call_sites_start");
            assert_eq!(t.rules.alt_call_sites, has_table, "{var}");
        }
    }
}
