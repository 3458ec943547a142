//! The hypervisor loader's checks, offline: a crate of its own so that
//! the driver (its `verify` stage, `xsplice-build verify`, `samples`,
//! `batch`) and outside users (a distro's QA checking payloads built
//! elsewhere) call the same [`Verifier`]. It depends on `xsplice-target`
//! alone.
//!
//! Reads a payload the way Xen's loader does (`livepatch_elf.c`,
//! `livepatch.c`, `arch/x86/livepatch.c`) and reports every check it would
//! fail, one line each, naming the section or symbol: ELF header, section
//! bounds and alignment, the symbol table, relocations, symbol resolution
//! against xen-syms and the payloads it stacks on, the mandatory build-id
//! notes and their targets, the function table, hooks and special
//! sections. What only the running hypervisor can know (hook return
//! values, code rewritten at boot) is out of reach; expectations are
//! checked against xen-syms's bytes, and NOP-out entries against its
//! instruction boundaries (`xsplice_target::Arch`), which the loader
//! trusts blindly.

mod checks;
mod elf;
mod payload;
mod report;

use std::path::{Path, PathBuf};

use xsplice_target::abi::target::{self, LoaderRules, XenVersion};
use xsplice_target::abi::{self, Abi, SpecialSizes, MAX_PAYLOAD_SIZE};
use xsplice_target::limits::{self, Role};
use xsplice_target::notes::to_hex;
use xsplice_target::XenSyms;

use checks::{Area, Context, Dependency, XenImage};
use report::Failures;
pub use report::{Check, Failure, VerifyError, VerifyErrorKind, VerifyReport};

/// What to check.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub payload: PathBuf,
    pub xen_syms: PathBuf,
    /// Payloads loaded before this one, oldest first; this one stacks on the last.
    pub depends_on: Vec<PathBuf>,
}

/// Read an input after the file-type and size rules (`limits`).
fn read(path: &Path, role: Role) -> Result<Vec<u8>, VerifyError> {
    limits::read_input(path, role).map_err(|e| {
        VerifyError::unreadable(
            path,
            match e {
                xsplice_target::Error::Io { source, .. } => source.to_string(),
                xsplice_target::Error::Refused { problem, .. } => problem.to_string(),
                other => other.to_string(),
            },
        )
    })
}

/// The function-table format a payload declares, for targets that cannot tell theirs.
fn infer_abi(p: &payload::Payload<'_>) -> Abi {
    let xen_depends = Abi::LivepatchV2.xen_depends_section();
    if p.section(Abi::Xsplice.entry_format().section).is_some()
        || p.section(Abi::Xsplice.depends_section()).is_some()
    {
        Abi::Xsplice
    } else if xen_depends.is_some_and(|s| p.section(s).is_some()) || funcs_version(p) == Some(2) {
        Abi::LivepatchV2
    } else if funcs_version(p) == Some(1) {
        Abi::LivepatchV1
    } else {
        Abi::LivepatchV2
    }
}

fn funcs_version(p: &payload::Payload<'_>) -> Option<u8> {
    let format = Abi::LivepatchV2.entry_format();
    let s = p.section(format.section)?;
    let off = format.version_off as usize;
    s.data(p.data)?.get(off).copied()
}

/// Special-section entry sizes: from the target when it could tell, else
/// Xen 4.17's for the livepatch-v2 ABI (they have not changed since).
fn choose_sizes(
    known: &Result<SpecialSizes, String>,
    abi: Abi,
    arch: xsplice_target::Arch,
    f: &mut Failures,
) -> Option<SpecialSizes> {
    match known {
        Ok(s) => Some(*s),
        Err(e) if abi == Abi::LivepatchV2 => {
            let s = SpecialSizes::assumed_v2(arch);
            f.note(format!(
                "special-section entry sizes assumed from Xen 4.17 ({}/{}/{}): {e}",
                s.bug_frame, s.ex_table, s.alt_instr
            ));
            Some(s)
        }
        Err(e) => {
            f.note(format!("special-section entry sizes unknown: {e}"));
            None
        }
    }
}

/// Read one payload this one stacks on: its build-id and exported symbols.
fn dependency(
    path: &Path,
    t: &Verifier,
    earlier: &[Dependency],
    f: &mut Failures,
) -> Result<Dependency, VerifyError> {
    let data = read(path, Role::Payload)?;
    let label = path.display().to_string();
    let mut own = Failures::default();
    let p = payload::parse(&data, t.xen.arch(), &mut own);
    f.check();
    if p.fatal {
        // The loader would not have loaded it: nothing of it can be used.
        for line in &own.lines {
            f.fail(
                Check::Dependency,
                format!("dependency {label}"),
                format!("not loadable: {line}"),
            );
        }
        return Ok(Dependency {
            label,
            build_id: None,
            exported: Default::default(),
        });
    }
    let abi = t.abi.unwrap_or_else(|| infer_abi(&p));
    let mut cx = Context {
        p: &p,
        xen: &t.xen,
        image: &t.image,
        deps: earlier,
        abi,
        rules: t.rules,
        version: t.version.as_ref(),
        sizes: None,
        area: t.area,
        values: Vec::new(),
    };
    checks::resolve_symbols(&mut cx, &mut own);
    for line in &own.lines {
        f.fail(
            Check::Dependency,
            format!("dependency {label}"),
            line.to_string(),
        );
    }
    let build_id = p
        .section(xsplice_target::notes::BUILD_ID_SECTION)
        .and_then(|s| checks::parse_build_id_note(s, p.data).ok());
    f.check();
    if build_id.is_none() {
        f.fail(
            Check::Dependency,
            format!("dependency {label}"),
            "no readable .note.gnu.build-id",
        );
    }
    let exported = checks::payload_symbols(&cx)
        .into_iter()
        .filter(|(_, new)| *new)
        .map(|(n, _)| n)
        .collect();
    Ok(Dependency {
        label,
        build_id,
        exported,
    })
}

/// A target loaded once (xen-syms and the payloads already loaded), to
/// check any number of payloads against.
pub struct Verifier {
    xen: std::sync::Arc<XenSyms>,
    image: XenImage,
    area: Area,
    /// From xen-syms's DWARF or the tree beside it; `None`: infer per payload.
    abi: Option<Abi>,
    abi_error: Option<String>,
    /// The release xen-syms (else the tree beside it) says it is.
    version: Option<XenVersion>,
    /// The loader rules of that release.
    rules: LoaderRules,
    sizes: Result<SpecialSizes, String>,
    deps: Vec<Dependency>,
    /// Problems with the dependencies, reported with every payload.
    dep_failures: Failures,
    /// Build-ids the notes must name instead of the defaults (the last
    /// `--depends-on` payload, xen-syms), with what to call them.
    depends_override: Option<(Vec<u8>, String)>,
    xen_depends_override: Option<(Vec<u8>, String)>,
    /// The payloads are for the REPLACE action (`Verifier::for_replace`).
    replace: bool,
}

impl Verifier {
    /// Load xen-syms and the payloads loaded before the ones to check (oldest first).
    pub fn new(xen_syms: &Path, depends_on: &[PathBuf]) -> Result<Verifier, VerifyError> {
        Self::with_tree(xen_syms, depends_on, None)
    }

    /// As `new`, with the Xen source tree xen-syms was built from: a
    /// xen-syms without DWARF (a distro's) takes the ABI and the entry
    /// sizes from it (default: the directory holding xen-syms).
    pub fn with_tree(
        xen_syms: &Path,
        depends_on: &[PathBuf],
        tree: Option<&Path>,
    ) -> Result<Verifier, VerifyError> {
        let xen = XenSyms::load(xen_syms).map_err(|e| {
            VerifyError::unreadable(
                xen_syms,
                match e {
                    xsplice_target::Error::Io { source, .. } => source.to_string(),
                    xsplice_target::Error::Malformed { what, .. } => what,
                    xsplice_target::Error::Refused { problem, .. } => problem.to_string(),
                    other => other.to_string(),
                },
            )
        })?;
        Self::with_loaded(std::sync::Arc::new(xen), depends_on, tree)
    }

    /// As `new`, for a xen-syms the caller has loaded already.
    pub fn with_xen_syms(
        xen: std::sync::Arc<XenSyms>,
        depends_on: &[PathBuf],
        tree: Option<&Path>,
    ) -> Result<Verifier, VerifyError> {
        Self::with_loaded(xen, depends_on, tree)
    }

    fn with_loaded(
        xen: std::sync::Arc<XenSyms>,
        depends_on: &[PathBuf],
        tree: Option<&Path>,
    ) -> Result<Verifier, VerifyError> {
        let xen_syms = xen.path().to_path_buf();
        let xen_syms = xen_syms.as_path();
        let xen_data = read(xen_syms, Role::XenSyms)?;
        let (abi, abi_error) = match abi::detect(&xen, tree) {
            Ok(abi) => (Some(abi), None),
            Err(e) => (None, Some(e.to_string())),
        };
        // Asked once: without DWARF this compiles a probe in the tree.
        let sizes = abi::special_sizes(&xen, tree).map_err(|e| e.to_string());
        let image = XenImage::load(&xen_data, sizes.as_ref().ok().map(|s| s.alt_instr));
        let area = Area::of(&xen);
        // A release whose loader has not been read is refused, not guessed.
        let t = target::detect(&xen, &xen_data, tree, abi.unwrap_or(Abi::LivepatchV2)).map_err(
            |u| VerifyError {
                path: u.path.clone(),
                what: u.to_string(),
                kind: VerifyErrorKind::UnsupportedRelease(u),
            },
        )?;
        let mut v = Verifier {
            xen,
            image,
            area,
            abi,
            abi_error,
            version: t.version,
            rules: t.rules,
            sizes,
            deps: Vec::new(),
            dep_failures: Failures::default(),
            depends_override: None,
            xen_depends_override: None,
            replace: false,
        };
        let mut f = Failures::default();
        for path in depends_on {
            let d = dependency(path, &v, &v.deps, &mut f)?;
            v.deps.push(d);
        }
        v.dep_failures = f;
        Ok(v)
    }

    /// `.livepatch.depends` must name `id` (called `what` in messages)
    /// instead of the last dependency's or xen-syms's build-id: a payload
    /// built with an explicit `--depends`.
    pub fn expect_depends(mut self, id: Vec<u8>, what: &str) -> Verifier {
        self.depends_override = Some((id, what.to_string()));
        self
    }

    /// `.livepatch.xen_depends` must name `id` instead of xen-syms's build-id.
    pub fn expect_xen_depends(mut self, id: Vec<u8>, what: &str) -> Verifier {
        self.xen_depends_override = Some((id, what.to_string()));
        self
    }

    /// The payloads will be loaded with the REPLACE action, which refuses
    /// hooks that can veto it.
    pub fn for_replace(mut self, replace: bool) -> Verifier {
        self.replace = replace;
        self
    }

    /// Check a payload file: the file-type and size rules, then [`Verifier::check`].
    /// The one entry point of `xsplice-build verify` and the driver's verify stage.
    pub fn check_file(&self, payload: &Path) -> Result<VerifyReport, VerifyError> {
        let data = read(payload, Role::Payload)?;
        Ok(self.check(&data))
    }

    /// Check one payload's bytes.
    pub fn check(&self, data: &[u8]) -> VerifyReport {
        let mut f = Failures {
            lines: self.dep_failures.lines.clone(),
            notes: self.dep_failures.notes.clone(),
            checks: self.dep_failures.checks,
        };
        f.check();
        if data.is_empty() {
            f.fail(Check::PayloadSize, "file", "empty");
        } else if data.len() as u64 > MAX_PAYLOAD_SIZE {
            f.fail(
                Check::PayloadSize,
                "file",
                format!("{} bytes is more than the loader's 2 MiB limit", data.len()),
            );
        }
        let p = payload::parse(data, self.xen.arch(), &mut f);
        let abi = match self.abi {
            Some(abi) => abi,
            None => {
                let abi = infer_abi(&p);
                f.note(format!(
                    "checked as {} (inferred from the payload): {}",
                    abi.name(),
                    self.abi_error.as_deref().unwrap_or("")
                ));
                abi
            }
        };
        let sizes = choose_sizes(&self.sizes, abi, self.xen.arch(), &mut f);
        if self.xen.build_id().is_none() {
            f.note("xen-syms has no build-id: .livepatch.xen_depends not compared");
        }
        if self.version.is_none() {
            f.note("the target's Xen version is unknown (xen-syms's version functions unreadable, no tree beside it): Xen 4.17's loader rules applied");
        }
        let mut report = VerifyReport {
            abi: Some(abi),
            xen_version: self.version.clone(),
            rules: Some(self.rules),
            ..VerifyReport::default()
        };
        if !p.fatal {
            let mut cx = Context {
                p: &p,
                xen: &self.xen,
                image: &self.image,
                deps: &self.deps,
                abi,
                rules: self.rules,
                version: self.version.as_ref(),
                sizes,
                area: self.area,
                values: Vec::new(),
            };
            checks::resolve_symbols(&mut cx, &mut f);
            checks::check_relocations(&cx, &mut f);
            let expected = match (&self.depends_override, self.deps.last()) {
                (Some((id, what)), _) => Some((id.as_slice(), what.as_str())),
                (None, Some(d)) => d.build_id.as_deref().map(|id| (id, d.label.as_str())),
                (None, None) => self.xen.build_id().map(|id| (id, "xen-syms")),
            };
            let expected_xen = match &self.xen_depends_override {
                Some((id, what)) => Some((id.as_slice(), what.as_str())),
                None => self.xen.build_id().map(|id| (id, "xen-syms")),
            };
            let own = checks::check_notes(&cx, expected, expected_xen, &mut f);
            report.build_id = own.map(|id| to_hex(&id));
            checks::check_patching_sections(&cx, &mut f);
            checks::check_funcs(&cx, &mut f);
            checks::check_hooks(&cx, &mut f);
            if self.replace {
                checks::check_replace_hooks(&cx, &mut f);
            }
            checks::check_special_sections(&cx, &mut f);
            checks::check_new_symbols(&cx, &mut f);
            report.accepted = accepted_record(&p, &mut f);
        }
        report.failures = f.lines;
        report.notes = f.notes;
        report.checks_run = f.checks;
        report
    }
}

/// Run every check. `Err` only when an input cannot be read.
pub fn verify(opts: &VerifyOptions) -> Result<VerifyReport, VerifyError> {
    Verifier::new(&opts.xen_syms, &opts.depends_on)?.check_file(&opts.payload)
}

/// The payload's record of accepted refusals, if it has one. The loader
/// never reads it, so a malformed or loaded one is a note, not a failure.
fn accepted_record(
    p: &payload::Payload<'_>,
    f: &mut Failures,
) -> Vec<xsplice_target::accepted::Accepted> {
    use xsplice_target::accepted;
    let Some(sec) = p.section(accepted::SECTION) else {
        return Vec::new();
    };
    if sec.is_alloc() {
        f.note(format!(
            "section {}: has SHF_ALLOC, so the loader loads it (harmless, but not what xsplice-build writes)",
            accepted::SECTION
        ));
    }
    match sec.data(p.data).map(accepted::decode) {
        Some(Ok(records)) => records,
        Some(Err(why)) => {
            f.note(format!("section {}: unreadable: {why}", accepted::SECTION));
            Vec::new()
        }
        None => Vec::new(),
    }
}
