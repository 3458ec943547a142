//! What `verify` reports: the loader rules it applies ([`Check`]), each
//! failure, the whole report and its JSON, and why an input could not be
//! checked at all. Plain data below the checks that fill it.

use std::fmt;
use std::path::{Path, PathBuf};

use xsplice_target::abi::target::{self, LoaderRules, XenVersion};
use xsplice_target::Abi;

/// A loader rule `verify` applies: what a [`Failure`] broke. The names
/// (`Check::name`, the JSON `check` field) are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The file is empty or larger than the loader's 2 MiB limit.
    PayloadSize,
    /// The ELF header: magic, class, machine, type, header sizes.
    ElfHeader,
    /// Section headers: bounds, names, alignment, string tables.
    SectionHeaders,
    /// The symbol table and its string table.
    SymbolTable,
    /// Where the loader places sections: no W+X, no alignment 0.
    SectionPlacement,
    /// Relocation sections: SHT_RELA, linked to the symbol table.
    RelocationSections,
    /// Every symbol resolves (payload, xen-syms, payloads stacked on).
    SymbolResolution,
    /// Every relocation is one the loader applies, in bounds and in range.
    Relocations,
    /// The build-id notes: present, well-formed, naming the right targets.
    BuildIdNotes,
    /// Something to patch: the function table or hook sections, once each.
    PatchingSections,
    /// The function table's entries.
    FunctionTable,
    /// A function-table entry's expected old code.
    Expectation,
    /// Hook sections: sizes and pointers.
    Hooks,
    /// The REPLACE action refuses payloads with hooks that can veto.
    ReplaceHooks,
    /// Special-section tables' sizes and `.modinfo`.
    SpecialSections,
    /// `.altinstructions` entries.
    Alternatives,
    /// `.alt_call_sites` entries.
    AltCalls,
    /// New symbols clash with xen-syms or the payloads stacked on.
    DuplicateSymbols,
    /// A payload this one stacks on (`--depends-on`) is not loadable.
    Dependency,
}

impl Check {
    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Check::PayloadSize => "payload_size",
            Check::ElfHeader => "elf_header",
            Check::SectionHeaders => "section_headers",
            Check::SymbolTable => "symbol_table",
            Check::SectionPlacement => "section_placement",
            Check::RelocationSections => "relocation_sections",
            Check::SymbolResolution => "symbol_resolution",
            Check::Relocations => "relocations",
            Check::BuildIdNotes => "build_id_notes",
            Check::PatchingSections => "patching_sections",
            Check::FunctionTable => "function_table",
            Check::Expectation => "expectation",
            Check::Hooks => "hooks",
            Check::ReplaceHooks => "replace_hooks",
            Check::SpecialSections => "special_sections",
            Check::Alternatives => "alternatives",
            Check::AltCalls => "alt_calls",
            Check::DuplicateSymbols => "duplicate_symbols",
            Check::Dependency => "dependency",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One failed check: which rule, what it is about (the section, symbol,
/// relocation or function-table entry, as the line names it; empty when
/// the failure is about the payload as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub check: Check,
    pub subject: String,
    pub message: String,
}

/// The report line: `SUBJECT: MESSAGE`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.subject, self.message)
        }
    }
}

/// The outcome of a verification that could read its inputs.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One line per failed check, naming the section or symbol; empty = PASS.
    pub failures: Vec<Failure>,
    pub checks_run: usize,
    /// The function-table ABI checked against.
    pub abi: Option<Abi>,
    /// The Xen release whose loader rules were applied (`None`: xen-syms
    /// and the tree beside it could not tell; Xen 4.17's rules were used).
    pub xen_version: Option<XenVersion>,
    /// The version-dependent loader rules applied.
    pub rules: Option<LoaderRules>,
    /// The payload's own build-id (hex).
    pub build_id: Option<String>,
    /// Things that could not be checked offline, and why.
    pub notes: Vec<String>,
    /// Refusals the payload's author accepted (its `.xsplice.accepted`
    /// record; the loader never loads it).
    pub accepted: Vec<xsplice_target::accepted::Accepted>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failures as report lines.
    pub fn failure_lines(&self) -> Vec<String> {
        self.failures.iter().map(ToString::to_string).collect()
    }

    /// The failures of one check.
    pub fn failed(&self, check: Check) -> impl Iterator<Item = &Failure> {
        self.failures.iter().filter(move |f| f.check == check)
    }

    /// "Xen 4.20.4 loader rules" or "Xen 4.17 loader rules (version unknown)".
    pub fn checked_against(&self) -> String {
        match &self.xen_version {
            Some(v) => format!("Xen {v} loader rules"),
            None => "Xen 4.17 loader rules (target version unknown)".to_string(),
        }
    }

    /// The report as JSON (`xsplice-build verify --json`).
    pub fn to_json(&self, payload: &Path) -> String {
        /// Field order is the JSON order.
        #[derive(serde::Serialize)]
        struct Document<'a> {
            payload: String,
            passed: bool,
            xen_version: Option<String>,
            checked_against: String,
            abi: Option<&'static str>,
            build_id: &'a Option<String>,
            checks: usize,
            failures: Vec<String>,
            notes: &'a [String],
            /// `failures`, item by item, as data.
            failed_checks: Vec<FailedCheck<'a>>,
            /// The payload's `.xsplice.accepted` record.
            accepted: Vec<AcceptedJson<'a>>,
        }
        #[derive(serde::Serialize)]
        struct AcceptedJson<'a> {
            kind: &'a str,
            subject: &'a str,
            object: &'a str,
            section: &'a str,
            reason: &'a str,
        }
        #[derive(serde::Serialize)]
        struct FailedCheck<'a> {
            check: Check,
            subject: &'a str,
            message: &'a str,
        }
        let doc = Document {
            payload: payload.display().to_string(),
            passed: self.passed(),
            xen_version: self.xen_version.as_ref().map(ToString::to_string),
            checked_against: self.checked_against(),
            abi: self.abi.map(|a| a.name()),
            build_id: &self.build_id,
            checks: self.checks_run,
            failures: self.failure_lines(),
            notes: &self.notes,
            failed_checks: self
                .failures
                .iter()
                .map(|f| FailedCheck {
                    check: f.check,
                    subject: &f.subject,
                    message: &f.message,
                })
                .collect(),
            accepted: self
                .accepted
                .iter()
                .map(|a| AcceptedJson {
                    kind: &a.kind,
                    subject: &a.subject,
                    object: &a.object,
                    section: &a.section,
                    reason: &a.reason,
                })
                .collect(),
        };
        let mut json =
            serde_json::to_string_pretty(&doc).expect("the report holds only strings and numbers");
        json.push('\n');
        json
    }
}

/// An input could not be read at all, or names a hypervisor whose
/// loader rules the tool does not know.
#[derive(Debug)]
pub struct VerifyError {
    pub path: PathBuf,
    pub what: String,
    pub kind: VerifyErrorKind,
}

/// What kind of [`VerifyError`] it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyErrorKind {
    /// The file could not be read or parsed (`what` says why).
    Unreadable,
    /// xen-syms (or the tree beside it) is a release outside 4.17..=4.22.
    UnsupportedRelease(target::UnsupportedRelease),
}

impl VerifyError {
    pub(crate) fn unreadable(path: &Path, what: String) -> VerifyError {
        VerifyError {
            path: path.to_path_buf(),
            what,
            kind: VerifyErrorKind::Unreadable,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            VerifyErrorKind::UnsupportedRelease(u) => write!(f, "{u}"),
            VerifyErrorKind::Unreadable => write!(f, "{}: {}", self.path.display(), self.what),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Failures and a count of checks made.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    pub(crate) lines: Vec<Failure>,
    pub(crate) notes: Vec<String>,
    pub(crate) checks: usize,
}

impl Failures {
    pub(crate) fn check(&mut self) {
        self.checks += 1;
    }

    pub(crate) fn fail(
        &mut self,
        check: Check,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.lines.push(Failure {
            check,
            subject: subject.into(),
            message: message.into(),
        });
    }

    pub(crate) fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }
}
