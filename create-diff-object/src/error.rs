//! The crate's one error type.

use std::fmt;
use std::path::PathBuf;

/// Why a change cannot be live-patched: names the symbol, its section, the
/// reason, and what the patch author can do about it. `kind` is the reason
/// as data, for programs; `reason` says it to a person, with the details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub symbol: String,
    pub section: String,
    pub reason: String,
    pub hint: String,
}

/// Each distinct reason the differ refuses a change. The snake_case names
/// (`as_str`) are stable: the JSON report carries them and pipelines match
/// on them (docs/refusals.md lists them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalKind {
    /// The initialiser of an existing writable variable changed.
    InitialiserChanged,
    /// An existing variable changed size.
    DataSizeChanged,
    /// Read-only data changed that unchanged code uses.
    ReadOnlyDataInUse,
    /// Global read-only data changed (code elsewhere may use it).
    GlobalReadOnlyDataChanged,
    /// Writable data without a symbol changed.
    UnnamedDataChanged,
    /// Patched code refers to writable data without a symbol.
    UnnamedDataReference,
    /// A new per-CPU variable.
    NewPercpuVariable,
    /// Patched code adds a reference to init code or data.
    InitReference,
    /// Code outside any function symbol changed.
    CodeOutsideFunction,
    /// A changed or new section of a type the differ does not understand.
    UnknownSection,
    /// A changed function is smaller than the jump that redirects it.
    FunctionTooSmall,
    /// An existing variable moved to another section (placement or permissions).
    VariableMoved,
    /// The layout of a type changed while code or data the payload does
    /// not replace still uses the old layout.
    LayoutChanged,
    /// Boot-time code or data the patch changes (run or read only before
    /// Xen freed its init region) sets up a symbol the payload's runtime
    /// part brings or uses: the running Xen never runs that set-up.
    BootSetupNotCarried,
    /// The original versions of patched functions use an existing variable
    /// their new versions do not, and use new variables of the payload
    /// instead: those start at their initialisers, and the value the
    /// running Xen holds (set at boot, by a quirk, by a sysctl) is dropped.
    StateNotCarried,
    /// A difference between the objects that no patched function, refusal
    /// or reason to ignore accounts for (a changed special-section entry
    /// that belongs to no function, changed code no patched function owns).
    UnaccountedChange,
}

impl RefusalKind {
    /// Every kind, in documentation order.
    pub const ALL: [RefusalKind; 16] = [
        RefusalKind::InitialiserChanged,
        RefusalKind::DataSizeChanged,
        RefusalKind::ReadOnlyDataInUse,
        RefusalKind::GlobalReadOnlyDataChanged,
        RefusalKind::UnnamedDataChanged,
        RefusalKind::UnnamedDataReference,
        RefusalKind::NewPercpuVariable,
        RefusalKind::InitReference,
        RefusalKind::CodeOutsideFunction,
        RefusalKind::UnknownSection,
        RefusalKind::FunctionTooSmall,
        RefusalKind::VariableMoved,
        RefusalKind::LayoutChanged,
        RefusalKind::BootSetupNotCarried,
        RefusalKind::StateNotCarried,
        RefusalKind::UnaccountedChange,
    ];

    /// The stable name (snake_case) used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::InitialiserChanged => "initialiser_changed",
            RefusalKind::DataSizeChanged => "data_size_changed",
            RefusalKind::ReadOnlyDataInUse => "read_only_data_in_use",
            RefusalKind::GlobalReadOnlyDataChanged => "global_read_only_data_changed",
            RefusalKind::UnnamedDataChanged => "unnamed_data_changed",
            RefusalKind::UnnamedDataReference => "unnamed_data_reference",
            RefusalKind::NewPercpuVariable => "new_percpu_variable",
            RefusalKind::InitReference => "init_reference",
            RefusalKind::CodeOutsideFunction => "code_outside_function",
            RefusalKind::UnknownSection => "unknown_section",
            RefusalKind::FunctionTooSmall => "function_too_small",
            RefusalKind::VariableMoved => "variable_moved",
            RefusalKind::LayoutChanged => "layout_changed",
            RefusalKind::BootSetupNotCarried => "boot_setup_not_carried",
            RefusalKind::StateNotCarried => "state_not_carried",
            RefusalKind::UnaccountedChange => "unaccounted_change",
        }
    }

    /// Whether a patch author may accept a refusal of this kind
    /// (`Accept`): the payload without the refused part is still well
    /// defined (the refused change is dropped, or the running Xen's
    /// symbol is used by name). Not so for a reference the payload cannot
    /// resolve (unnamed data, a new per-CPU variable, freed init code), a
    /// function the jump does not fit, or a section nobody can interpret.
    pub fn acceptable(self) -> bool {
        !matches!(
            self,
            RefusalKind::UnnamedDataReference
                | RefusalKind::NewPercpuVariable
                | RefusalKind::InitReference
                | RefusalKind::FunctionTooSmall
                | RefusalKind::UnknownSection
        )
    }

    /// The kind named `name` (`as_str`'s inverse).
    pub fn from_name(name: &str) -> Option<RefusalKind> {
        RefusalKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal a patch author checked and accepts (`--accept KIND:SUBJECT`):
/// it matches every refusal of exactly that kind whose `symbol` is exactly
/// `subject` (no patterns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept {
    pub kind: RefusalKind,
    pub subject: String,
}

impl Accept {
    pub fn matches(&self, r: &Refusal) -> bool {
        r.kind == self.kind && r.symbol == self.subject
    }
}

/// Something a payload is built with that a person should know: part of
/// the patch takes effect only after a reboot, or a hook is trusted to do
/// what boot code did. `kind` is the reason as data (stable names, as for
/// refusals; docs/json-report.md lists them), `message` says it to a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    /// The symbols concerned: boot-time functions and data, or the type
    /// whose layout changed.
    pub symbols: Vec<String>,
    pub message: String,
    /// The rule that let the build go on where a stricter one refused
    /// (layout warnings); `None` for a plain notice.
    pub rule: Option<String>,
}

/// Each distinct reason for a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// Boot-time code or data changed and nothing in the payload depends
    /// on it: that part of the patch takes effect after a reboot.
    BootTimeChange,
    /// Boot-time code the patch changes sets up a symbol the payload uses,
    /// and a load or apply hook of the payload refers to that symbol: the
    /// hook is taken to do that set-up (not proven).
    BootSetupInHook,
    /// A type's layout changed, but a new member lies over bytes the old
    /// members cover: no byte changes meaning.
    LayoutSameBytes,
    /// Only a type's alignment grew; the instances that could be checked
    /// are aligned.
    LayoutAlignmentOnly,
    /// A type defined outside the unit that nothing in the changed units
    /// holds, points to or uses: no instance of the running Xen to meet.
    LayoutNoInstance,
    /// Every instance is an automatic variable of functions the payload
    /// replaces: none survives the loader's switch.
    LayoutAutomaticOnly,
    /// File-local read-only data changed size, and every reference to it
    /// comes from functions the payload replaces or adds: the payload
    /// carries the new contents as a new object (`copies`).
    ReadOnlyDataGrown,
    /// An existing variable moved section, and nothing the payload
    /// includes refers to it: the move takes effect after a reboot.
    VariableMovedUnreferenced,
    /// Patched functions dropped an existing variable for new ones, and a
    /// load or apply hook refers to the old variable: the hook is taken to
    /// carry its running value over (not proven).
    StateCarriedInHook,
}

impl WarningKind {
    /// Every kind, in documentation order.
    pub const ALL: [WarningKind; 9] = [
        WarningKind::BootTimeChange,
        WarningKind::BootSetupInHook,
        WarningKind::LayoutSameBytes,
        WarningKind::LayoutAlignmentOnly,
        WarningKind::LayoutNoInstance,
        WarningKind::LayoutAutomaticOnly,
        WarningKind::ReadOnlyDataGrown,
        WarningKind::VariableMovedUnreferenced,
        WarningKind::StateCarriedInHook,
    ];

    /// The stable name (snake_case) used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::BootTimeChange => "boot_time_change",
            WarningKind::BootSetupInHook => "boot_setup_in_hook",
            WarningKind::LayoutSameBytes => "layout_same_bytes",
            WarningKind::LayoutAlignmentOnly => "layout_alignment_only",
            WarningKind::LayoutNoInstance => "layout_no_instance",
            WarningKind::LayoutAutomaticOnly => "layout_automatic_only",
            WarningKind::ReadOnlyDataGrown => "read_only_data_grown",
            WarningKind::VariableMovedUnreferenced => "variable_moved_unreferenced",
            WarningKind::StateCarriedInHook => "state_carried_in_hook",
        }
    }
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (section {}): {}",
            self.symbol, self.section, self.reason
        )?;
        if !self.hint.is_empty() {
            write!(f, "; hint: {}", self.hint)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Error {
    /// Reading, parsing or resolving against xen-syms failed, or an input
    /// was refused before reading: the target crate's error, text unchanged.
    Target(xsplice_target::Error),
    /// The change cannot be live-patched (exit 2).
    NotPatchable {
        object: PathBuf,
        refusals: Vec<Refusal>,
    },
}

impl Error {
    /// The process exit code this error maps to (2 = not live-patchable, 1 = anything else).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotPatchable { .. } => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Target(e) => e.fmt(f),
            Error::NotPatchable { object, refusals } => {
                write!(f, "{}: cannot be live-patched:", object.display())?;
                for r in refusals {
                    write!(f, "\n  {r}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Target(e) => e.source(),
            Error::NotPatchable { .. } => None,
        }
    }
}

impl From<xsplice_target::Error> for Error {
    fn from(e: xsplice_target::Error) -> Error {
        Error::Target(e)
    }
}
