//! The driver's one error type; each variant maps to an exit code.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Bad input found before any work (tree, patch, config, output dir).
    Input(String),
    /// Reading or writing a file failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An external command (make, patch, ld, objcopy) failed; `log` has its output.
    Command { what: String, log: Option<PathBuf> },
    /// The change cannot be live-patched: every refusal, per object.
    NotPatchable {
        refusals: Vec<(String, create_diff_object::Refusal)>,
        log: Option<PathBuf>,
    },
    /// No functional change; `init_only` names init functions that did change.
    NoChange { init_only: Vec<String> },
    /// create-diff-object failed on one object.
    Diff {
        object: String,
        source: create_diff_object::Error,
    },
    /// The rebuilt base does not reproduce the given xen-syms.
    Mismatch(String),
    /// The payload fails the loader's checks.
    Verify(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The process exit code (see `crate::exit`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotPatchable { .. } => crate::exit::NOT_PATCHABLE,
            Error::Diff { source, .. } if source.exit_code() == 2 => crate::exit::NOT_PATCHABLE,
            Error::NoChange { .. } => crate::exit::NO_CHANGE,
            _ => crate::exit::ERROR,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(what) => write!(f, "{what}"),
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Command { what, log } => {
                write!(f, "{what}")?;
                if let Some(log) = log {
                    write!(f, " (see {})", log.display())?;
                }
                Ok(())
            }
            Error::NotPatchable { refusals, log } => {
                write!(f, "the patch cannot be live-patched ({} refusal(s)):", refusals.len())?;
                for (object, r) in refusals {
                    write!(f, "\n  {object}: {r}")?;
                }
                if let Some(log) = log {
                    write!(f, "\n(log: {})", log.display())?;
                }
                Ok(())
            }
            Error::NoChange { init_only } if init_only.is_empty() => {
                write!(f, "no functional changes found")
            }
            Error::NoChange { init_only } => write!(
                f,
                "no functional changes found: only init code changed ({}), which runs at boot and cannot be live-patched",
                init_only.join(", ")
            ),
            Error::Diff { object, source } => write!(f, "{object}: {source}"),
            Error::Mismatch(what) => write!(f, "{what}"),
            Error::Verify(what) => write!(f, "payload fails the loader's checks: {what}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Diff { source, .. } => Some(source),
            _ => None,
        }
    }
}
