//! What each input is for, the size bound that sets, and why an input is
//! refused before it is read: plain data, below the error type that
//! carries it (`limits` does the checking and reading, docs/limits.md).

use std::fmt;
use std::path::PathBuf;

const MIB: u64 = 1024 * 1024;

/// The loader refuses payloads larger than this (`LIVEPATCH_MAX_SIZE`).
/// Kept here, on the ground floor, because it is also a payload's input
/// bound; `abi::facts` hands it on.
pub const MAX_PAYLOAD_SIZE: u64 = 2 * MIB;

/// What an input is for, which sets its size bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A compiled object (`.o`) to diff.
    Object,
    /// The hypervisor's `xen-syms`.
    XenSyms,
    /// A live-patch payload (`.livepatch`).
    Payload,
    /// A patch or a `.config`.
    Text,
}

impl Role {
    /// The largest file accepted in this role.
    pub const fn limit(self) -> u64 {
        match self {
            Role::Object => 256 * MIB,
            Role::XenSyms => 512 * MIB,
            Role::Payload => MAX_PAYLOAD_SIZE,
            Role::Text => 64 * MIB,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Role::Object => "an object file",
            Role::XenSyms => "xen-syms",
            Role::Payload => "a payload (the loader's limit)",
            Role::Text => "a patch or .config",
        }
    }
}

/// Why an input was refused before being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputProblem {
    /// Not a regular file: `kind` says what it is.
    NotRegular { kind: &'static str },
    /// Larger than its role allows (`size` is at least this much).
    TooLarge { size: u64, role: Role },
    /// An output path that is one of the inputs (same file, maybe through a link).
    OutputIsInput { input: PathBuf },
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputProblem::NotRegular { kind } => {
                write!(f, "not a regular file ({kind}); inputs must be regular files")
            }
            InputProblem::TooLarge { size, role } => write!(
                f,
                "{size} bytes is more than the {} accepted for {} (docs/limits.md)",
                human(role.limit()),
                role.what()
            ),
            InputProblem::OutputIsInput { input } => write!(
                f,
                "is the same file as the input {}; choose another output path (the input would be overwritten)",
                input.display()
            ),
        }
    }
}

fn human(bytes: u64) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}
