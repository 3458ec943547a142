//! How the hypervisor a payload targets was built: its build recipe.
//!
//! A payload is only right for a hypervisor if the base rebuilt here is
//! that hypervisor bit for bit, so the base must be built the way the
//! running binary was: same make arguments, same build strings. Upstream
//! Xen built by hand needs nothing but its build strings; a distro's
//! package adds its own (Debian: the compiler named `x86_64-linux-gnu-gcc`,
//! file-prefix maps, the package version and maintainer in `compile.h`).
//!
//! The recipe is detected from the tree (`debian/` → Debian), never passed
//! by the user. Its build strings come from the target `xen-syms` when
//! given (what the binary was really built with), else from the tree
//! (`debian/changelog`, `debian/control`) or fixed defaults. Adding another
//! distro is one more variant: its detection, make arguments, build
//! strings and consistency checks (see docs/distro-builds.md).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Error;
use crate::error::Problem;
use crate::target::{self, TargetFacts};
use xsplice_target::arch::Arch;

/// Placeholder for the top of the tree being built in make arguments;
/// the private copy's path replaces it when make runs.
pub const TOP: &str = "@TOP@";

/// Directory (in the output directory) for the helper programs a recipe
/// puts on PATH while building; removed afterwards unless `--debug`.
pub const HELPERS_DIR: &str = "recipe-bin";

/// Which recipe built the tree's hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildRecipe {
    /// Xen's own build system as is (`make -C xen`).
    Upstream,
    /// Debian's source package (`debian/rules`).
    Debian(DebianSource),
}

/// What Debian's packaging says about the build (`debian/changelog`,
/// `debian/control`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianSource {
    /// Package version, `4.17.5+72-g01140da4e8-1` (`DEB_VERSION`).
    pub version: String,
    /// `Maintainer:` of debian/control (`DEB_MAINTAINER`).
    pub maintainer: String,
    /// Date of the latest changelog entry (`SOURCE_DATE_EPOCH`).
    pub date: String,
}

/// The build strings Xen's own make reads, with the values used when
/// neither the target xen-syms nor the environment gives them (as
/// ci/xen-tree builds). `xen_compile_*` accessor → make variable.
const UPSTREAM_STRINGS: [(&str, &str, &str); 5] = [
    (
        "XEN_BUILD_DATE",
        "xen_compile_date",
        "Thu Jan  1 00:00:00 UTC 2026",
    ),
    ("XEN_BUILD_TIME", "xen_compile_time", "00:00:00"),
    ("XEN_BUILD_HOST", "xen_compile_host", "xsplice-build"),
    ("XEN_WHOAMI", "xen_compile_by", "xsplice"),
    ("XEN_DOMAIN", "xen_compile_domain", "example.org"),
];

/// Debian's architecture names for the only target its recipe builds (x86-64).
const DEBIAN_GNU_TYPE: &str = "x86_64-linux-gnu";
const DEBIAN_XEN_ARCH: &str = "x86_64";

impl BuildRecipe {
    /// The recipe of the tree at `srcdir`.
    pub fn detect(srcdir: &Path) -> Result<BuildRecipe, Error> {
        let deb = srcdir.join("debian");
        if deb.join("rules").is_file() && deb.join("changelog").is_file() {
            return DebianSource::read(&deb).map(BuildRecipe::Debian);
        }
        Ok(BuildRecipe::Upstream)
    }

    pub fn name(&self) -> &'static str {
        match self {
            BuildRecipe::Upstream => "upstream",
            BuildRecipe::Debian(_) => "debian",
        }
    }

    /// The concrete recipe for an x86-64 tree (see [`Self::resolve_for`]).
    pub fn resolve(&self, target: Option<&TargetFacts>) -> Result<Recipe, Error> {
        self.resolve_for(target, Arch::X86_64)
    }

    /// The concrete recipe for a tree configured for `arch`: make
    /// arguments and build strings, taken from `target` when given. A tree
    /// for another architecture than the host's is cross-built as Xen's
    /// own build does it: `XEN_TARGET_ARCH` and `CROSS_COMPILE` (the
    /// environment's, else the architecture's Debian cross prefix).
    pub fn resolve_for(&self, target: Option<&TargetFacts>, arch: Arch) -> Result<Recipe, Error> {
        let from_target = |accessor: &str| target.and_then(|t| t.string(accessor));
        match self {
            BuildRecipe::Upstream => {
                // Target first: the environment (a user's reproducible-build
                // values) cannot know better what the binary was built with.
                let env = UPSTREAM_STRINGS
                    .iter()
                    .map(|(var, accessor, default)| {
                        let v = from_target(accessor)
                            .map(str::to_string)
                            .or_else(|| std::env::var(var).ok())
                            .unwrap_or_else(|| (*default).to_string());
                        (var.to_string(), v)
                    })
                    .collect();
                let cross =
                    std::env::var("CROSS_COMPILE").unwrap_or_else(|_| arch.default_cross_prefix());
                // A host build keeps make's own defaults (and its cache keys).
                let args = if arch.is_host() {
                    Vec::new()
                } else {
                    vec![
                        format!("XEN_TARGET_ARCH={}", arch.xen_target_arch()),
                        format!("CROSS_COMPILE={cross}"),
                    ]
                };
                Ok(Recipe {
                    name: self.name(),
                    cc: std::env::var("CC").unwrap_or_else(|_| format!("{cross}gcc")),
                    ld: std::env::var("LD").unwrap_or_else(|_| format!("{cross}ld")),
                    cross,
                    args,
                    env,
                    lsb_distributor: None,
                })
            }
            BuildRecipe::Debian(_) if arch != Arch::X86_64 => {
                Err(Error::Input(Problem::RecipeArch {
                    recipe: self.name(),
                    arch: arch.name(),
                }))
            }
            BuildRecipe::Debian(src) => {
                let date = match from_target("xen_compile_date") {
                    Some(d) => d.to_string(),
                    None => utc_date(&src.date, "%a %b %e %T UTC %Y")?,
                };
                let time = match from_target("xen_compile_time") {
                    Some(t) => t.to_string(),
                    None => utc_date(&src.date, "%T")?,
                };
                // A binNMU's version (`-1+b1`) is only in the binary.
                let version = from_target("xen_compile_system_version")
                    .unwrap_or(&src.version)
                    .to_string();
                let distributor = match from_target("xen_compile_system_distribution") {
                    Some(d) => d.to_string(),
                    None => host_distributor(),
                };
                // compile.h names the compiler by `$(CC) --version`: the
                // binary says which name Debian's build used.
                let cc = from_target("xen_compiler")
                    .and_then(|c| c.split_whitespace().next())
                    .filter(|c| c.ends_with("gcc"))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{DEBIAN_GNU_TYPE}-gcc"));
                let ld = format!("{}ld", cc.strip_suffix("gcc").unwrap_or_default());
                let args = vec![
                    format!("CC={cc}"),
                    format!("LD={ld}"),
                    format!("XEN_COMPILE_ARCH={DEBIAN_XEN_ARCH}"),
                    format!("XEN_TARGET_ARCH={DEBIAN_XEN_ARCH}"),
                    // debian/rules maps the top of its build tree to `.`.
                    format!("EXTRA_CFLAGS_XEN_CORE=-ffile-prefix-map={TOP}=. -fdebug-prefix-map={TOP}=."),
                ];
                Ok(Recipe {
                    name: self.name(),
                    cross: std::env::var("CROSS_COMPILE").unwrap_or_default(),
                    cc,
                    ld,
                    args,
                    env: vec![
                        ("XEN_BUILD_DATE".into(), date),
                        ("XEN_BUILD_TIME".into(), time),
                        ("DEB_VERSION".into(), version),
                        ("DEB_MAINTAINER".into(), src.maintainer.clone()),
                    ],
                    lsb_distributor: Some(distributor),
                })
            }
        }
    }

    /// Refuse, before any build, a tree and .config that cannot have
    /// produced `target`, naming the first thing that differs.
    pub fn check_target(
        &self,
        srcdir: &Path,
        config: &[u8],
        recipe: &Recipe,
        target: &TargetFacts,
    ) -> Result<(), Error> {
        let refuse = |what: String| {
            Err(Error::Mismatch(crate::error::Mismatch::NotFromTree {
                xen_syms: target.path.clone(),
                what,
            }))
        };
        // The tree's version.
        if let (Some(ours), Some(theirs)) = (tree_version(srcdir), target.full_version()) {
            if ours != theirs {
                return refuse(format!("it is Xen {theirs}, the tree is Xen {ours}"));
            }
        }
        // Distro patches rename or add build-string accessors in version.c.
        if let Some(ours) = tree_accessors(srcdir) {
            let theirs: BTreeSet<&str> = target.accessors.iter().map(String::as_str).collect();
            if !theirs.is_empty() {
                if let Some(f) = ours.iter().find(|f| !theirs.contains(f.as_str())) {
                    return refuse(format!(
                        "the tree's xen/common/version.c defines {f}(), which xen-syms lacks \
                         (the tree is built by the {} recipe)",
                        self.name()
                    ));
                }
                if let Some(f) = theirs
                    .iter()
                    .find(|f| target::is_string_accessor(f) && !ours.contains(**f))
                {
                    return refuse(format!(
                        "xen-syms has {f}(), which the tree's xen/common/version.c does not define \
                         (the tree is built by the {} recipe)",
                        self.name()
                    ));
                }
            }
        }
        // The .config, when the binary embeds its own.
        if let Some(theirs) = &target.config {
            if let Some(d) = target::first_config_difference(config, theirs) {
                return refuse(d);
            }
        }
        // Debian's package version and maintainer.
        if let BuildRecipe::Debian(src) = self {
            if let Some(v) = target.string("xen_compile_system_version") {
                let binnmu = v
                    .strip_prefix(src.version.as_str())
                    .is_some_and(|rest| rest.starts_with("+b"));
                if v != src.version && !binnmu {
                    return refuse(format!(
                        "it is Debian package version {v}, debian/changelog says {}",
                        src.version
                    ));
                }
            }
            let (local, domain) = split_address(&src.maintainer);
            for (accessor, ours) in [
                ("xen_compile_system_maintainer_local", local),
                ("xen_compile_system_maintainer_domain", domain),
            ] {
                if let Some(theirs) = target.string(accessor) {
                    if theirs != ours {
                        return refuse(format!(
                            "{accessor}() says {theirs:?}, debian/control's Maintainer gives {ours:?}"
                        ));
                    }
                }
            }
        }
        // The compiler: compile.h holds the first line of `$(CC) --version`.
        if let Some(theirs) = target.string("xen_compiler") {
            let ours = first_line_of_version(&recipe.cc);
            if ours != theirs {
                return refuse(format!(
                    "it was compiled by {theirs:?}, and {} here is {ours:?}",
                    recipe.cc
                ));
            }
        }
        Ok(())
    }
}

impl DebianSource {
    fn read(deb: &Path) -> Result<DebianSource, Error> {
        let read = |name: &str| {
            fs::read_to_string(deb.join(name)).map_err(|e| Error::io(deb.join(name), e))
        };
        let changelog = read("changelog")?;
        let bad = |what| {
            Error::Input(Problem::DebianSource {
                file: deb.join("changelog"),
                what,
            })
        };
        let first = changelog
            .lines()
            .next()
            .ok_or_else(|| bad("empty changelog"))?;
        let version = first
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(v, _)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("no version in its first line"))?;
        // The entry's trailer: " -- Name <address>  Date".
        let date = changelog
            .lines()
            .find_map(|l| l.strip_prefix(" -- "))
            .and_then(|l| l.split_once(">  "))
            .map(|(_, d)| d.trim().to_string())
            .ok_or_else(|| bad("no trailer line (` -- NAME <ADDRESS>  DATE`)"))?;
        let control = read("control")?;
        let maintainer = control
            .lines()
            .find_map(|l| l.strip_prefix("Maintainer:"))
            .map(|m| m.trim().to_string())
            .ok_or_else(|| {
                Error::Input(Problem::DebianSource {
                    file: deb.join("control"),
                    what: "no Maintainer field",
                })
            })?;
        Ok(DebianSource {
            version,
            maintainer,
            date,
        })
    }
}

/// A recipe with its values filled in: what make is run with.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub name: &'static str,
    /// The compiler and linker make uses (their versions are part of the cache key).
    pub cc: String,
    pub ld: String,
    /// The prefix of the binutils run beside make (`ld`, `objcopy`):
    /// `CROSS_COMPILE`'s value for a cross build, else empty.
    pub cross: String,
    /// Make arguments; `TOP` stands for the top of the tree being built.
    pub args: Vec<String>,
    /// Environment for make: the build strings.
    pub env: Vec<(String, String)>,
    /// What `lsb_release -is` must print during the build (Debian's patch
    /// runs it to fill `compile.h`); the host's may differ or be missing.
    pub lsb_distributor: Option<String>,
}

impl Recipe {
    /// The make arguments for a build whose top is `top`.
    pub fn args_for(&self, top: &Path) -> Vec<String> {
        let top = top.to_string_lossy();
        self.args.iter().map(|a| a.replace(TOP, &top)).collect()
    }

    /// Everything that makes the build differ, for the cache key (the
    /// build's own path left out).
    pub fn key_material(&self) -> Vec<String> {
        let mut out = vec![format!("recipe {}", self.name)];
        out.extend(self.args.iter().cloned());
        out.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        out.extend(self.lsb_distributor.iter().map(|d| format!("lsb {d}")));
        out
    }

    /// A directory holding the helper programs the recipe needs on PATH
    /// (`lsb_release`), made under `dir`.
    pub fn write_helpers(&self, dir: &Path) -> Result<Option<PathBuf>, Error> {
        let Some(d) = &self.lsb_distributor else {
            return Ok(None);
        };
        let bin = dir.join(HELPERS_DIR);
        fs::create_dir_all(&bin).map_err(|e| Error::io(&bin, e))?;
        let script = bin.join("lsb_release");
        let quoted = d.replace('\'', r"'\''");
        fs::write(
            &script,
            format!("#!/bin/sh\n# The distributor the target hypervisor was built on.\necho '{quoted}'\n"),
        )
        .map_err(|e| Error::io(&script, e))?;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io(&script, e))?;
        Ok(Some(bin))
    }
}

/// `LC_ALL=C date -u -d DATE +FORMAT`, as debian/rules derives the build
/// strings from `SOURCE_DATE_EPOCH`.
fn utc_date(date: &str, format: &str) -> Result<String, Error> {
    let out = Command::new("date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", date, &format!("+{format}")])
        .output()
        .map_err(|source| {
            Error::Input(Problem::CannotRun {
                program: "date",
                source,
            })
        })?;
    if !out.status.success() {
        return Err(Error::Input(Problem::DebianDate {
            date: date.to_string(),
        }));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn host_distributor() -> String {
    Command::new("lsb_release")
        .arg("-is")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Debian".into())
}

/// `Name <local@domain>` → (`local`, `domain`), as Debian's patch splits it.
fn split_address(maintainer: &str) -> (&str, &str) {
    let addr = maintainer
        .split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(a, _)| a)
        .unwrap_or("");
    addr.split_once('@').unwrap_or((addr, ""))
}

fn first_line_of_version(cc: &str) -> String {
    match Command::new(cc).arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
        Err(e) => format!("not runnable ({e})"),
    }
}

/// `4.17.5` from xen/Makefile (`XEN_VERSION`, `XEN_SUBVERSION`, `XEN_EXTRAVERSION`).
pub fn tree_version(srcdir: &Path) -> Option<String> {
    let text = fs::read_to_string(srcdir.join("xen/Makefile")).ok()?;
    let var = |name: &str| {
        text.lines().find_map(|l| {
            let l = l.trim().strip_prefix("export ").unwrap_or(l.trim());
            let (k, v) = l.split_once('=')?;
            let k = k.trim_end_matches(['?', ':', ' ', '\t']);
            (k == name).then(|| v.trim().replace("$(XEN_VENDORVERSION)", ""))
        })
    };
    Some(format!(
        "{}.{}{}",
        var("XEN_VERSION")?,
        var("XEN_SUBVERSION")?,
        var("XEN_EXTRAVERSION")?
    ))
}

/// The build-string accessors xen/common/version.c defines
/// (`const char *xen_compile_date(void)` ...).
pub fn tree_accessors(srcdir: &Path) -> Option<BTreeSet<String>> {
    let text = fs::read_to_string(srcdir.join("xen/common/version.c")).ok()?;
    let out: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("const char *"))
        .filter_map(|l| l.split_once("(void)").map(|(n, _)| n.trim().to_string()))
        .filter(|n| target::is_string_accessor(n))
        .collect();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_address_is_split_like_debians_patch() {
        assert_eq!(
            split_address("Debian Xen Team <pkg-xen-devel@lists.alioth.debian.org>"),
            ("pkg-xen-devel", "lists.alioth.debian.org")
        );
    }

    /// A tree with just what the checks read.
    fn mini_tree(dir: &Path, extra: &str, accessors: &[&str]) {
        fs::create_dir_all(dir.join("xen/common")).unwrap();
        fs::write(
            dir.join("xen/Makefile"),
            format!("export XEN_VERSION       = 4\nexport XEN_SUBVERSION    = 17\nexport XEN_EXTRAVERSION ?= {extra}$(XEN_VENDORVERSION)\n"),
        )
        .unwrap();
        let body: String = accessors
            .iter()
            .map(|a| format!("const char *{a}(void)\n{{\n    return \"\";\n}}\n"))
            .collect();
        fs::write(dir.join("xen/common/version.c"), body).unwrap();
    }

    #[test]
    fn target_checks_name_the_first_difference() {
        let dir = tempfile::tempdir().unwrap();
        mini_tree(dir.path(), ".5", &["xen_compile_date", "xen_compile_by"]);
        assert_eq!(tree_version(dir.path()).as_deref(), Some("4.17.5"));
        let recipe = BuildRecipe::Upstream.resolve(None).unwrap();
        let mut t = TargetFacts {
            path: "xen-syms".into(),
            version: Some((4, 17)),
            accessors: ["xen_compile_date", "xen_compile_by"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            strings: [("xen_extra_version".to_string(), ".5".to_string())]
                .into_iter()
                .collect(),
            config: Some(b"CONFIG_LIVEPATCH=y\nCONFIG_XEN_IBT=y\n".to_vec()),
            ..TargetFacts::default()
        };
        let config = b"CONFIG_XEN_IBT=y\nCONFIG_LIVEPATCH=y\n";
        let check = |t: &TargetFacts, config: &[u8]| {
            BuildRecipe::Upstream
                .check_target(dir.path(), config, &recipe, t)
                .map_err(|e| e.to_string())
        };
        check(&t, config).unwrap();
        let e = check(&t, b"CONFIG_LIVEPATCH=y\n").unwrap_err();
        assert!(
            e.contains("CONFIG_XEN_IBT is not set in the .config but y"),
            "{e}"
        );
        t.strings.insert("xen_extra_version".into(), ".4".into());
        let e = check(&t, config).unwrap_err();
        assert!(
            e.contains("it is Xen 4.17.4, the tree is Xen 4.17.5"),
            "{e}"
        );
        t.strings.insert("xen_extra_version".into(), ".5".into());
        // A distro's binary (its accessors renamed) with the upstream tree.
        t.accessors = ["xen_compile_date", "xen_compile_system_version"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let e = check(&t, config).unwrap_err();
        assert!(
            e.contains("defines xen_compile_by(), which xen-syms lacks"),
            "{e}"
        );
    }

    #[test]
    fn debian_tree_is_detected_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("debian");
        fs::create_dir_all(&deb).unwrap();
        assert_eq!(
            BuildRecipe::detect(dir.path()).unwrap(),
            BuildRecipe::Upstream
        );
        fs::write(deb.join("rules"), "#!/usr/bin/make -f\n").unwrap();
        fs::write(
            deb.join("changelog"),
            "xen (4.17.5-1) bookworm; urgency=medium\n\n  * x\n\n -- A B <a@b.org>  Sat, 29 Nov 2025 14:52:25 +0100\n\nxen (4.17.4-1) x\n",
        )
        .unwrap();
        fs::write(
            deb.join("control"),
            "Source: xen\nMaintainer: T <l@d.org>\n",
        )
        .unwrap();
        let r = BuildRecipe::detect(dir.path()).unwrap();
        let BuildRecipe::Debian(src) = &r else {
            panic!("{r:?}")
        };
        assert_eq!(src.version, "4.17.5-1");
        assert_eq!(src.maintainer, "T <l@d.org>");
        // Debian's recipe builds x86-64 only.
        let e = r.resolve_for(None, Arch::Aarch64).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::Input(Problem::RecipeArch {
                    recipe: "debian",
                    arch: "AArch64"
                })
            ),
            "{e:?}"
        );
        let resolved = r.resolve(None).unwrap();
        let env: std::collections::BTreeMap<_, _> = resolved.env.iter().cloned().collect();
        // SOURCE_DATE_EPOCH is the latest entry's date, printed in UTC.
        assert_eq!(env["XEN_BUILD_DATE"], "Sat Nov 29 13:52:25 UTC 2025");
        assert_eq!(env["XEN_BUILD_TIME"], "13:52:25");
        assert_eq!(env["DEB_VERSION"], "4.17.5-1");
        assert!(resolved.args_for(Path::new("/b/x")).contains(
            &"EXTRA_CFLAGS_XEN_CORE=-ffile-prefix-map=/b/x=. -fdebug-prefix-map=/b/x=.".to_string()
        ));
        // The target's strings win over the tree's.
        let facts = TargetFacts {
            strings: [
                ("xen_compile_date".to_string(), "D".to_string()),
                (
                    "xen_compile_system_version".to_string(),
                    "4.17.5-1+b1".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            ..TargetFacts::default()
        };
        let resolved = r.resolve(Some(&facts)).unwrap();
        let env: std::collections::BTreeMap<_, _> = resolved.env.iter().cloned().collect();
        assert_eq!(env["XEN_BUILD_DATE"], "D");
        assert_eq!(env["DEB_VERSION"], "4.17.5-1+b1");
    }
    /// A tree of another architecture than the host's gets Xen's cross-build
    /// arguments and the cross tools; the host's own gets none (its make
    /// command and cache key are as before).
    #[test]
    fn upstream_cross_build() {
        let prefix_of = |arch: Arch| {
            std::env::var("CROSS_COMPILE").unwrap_or_else(|_| arch.default_cross_prefix())
        };
        for arch in Arch::ALL {
            let r = BuildRecipe::Upstream.resolve_for(None, arch).unwrap();
            let prefix = prefix_of(arch);
            assert_eq!(r.cross, prefix, "{arch:?}");
            if arch.is_host() {
                assert!(r.args.is_empty(), "{arch:?}: {:?}", r.args);
            } else {
                assert_eq!(
                    r.args,
                    [
                        format!("XEN_TARGET_ARCH={}", arch.xen_target_arch()),
                        format!("CROSS_COMPILE={prefix}")
                    ],
                    "{arch:?}"
                );
                if std::env::var_os("CC").is_none() {
                    assert_eq!(r.cc, format!("{prefix}gcc"));
                }
            }
        }
    }
}
