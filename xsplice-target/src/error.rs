//! The crate's error type: what can go wrong reading a target's files
//! and telling its facts. The differ maps each variant to its own error
//! of the same name.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file failed.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The input is not a well-formed file of the kind expected.
    Malformed { path: PathBuf, what: String },
    /// A symbol could not be resolved against xen-syms (missing or ambiguous).
    Lookup {
        symbol: String,
        file: Option<String>,
        what: String,
    },
    /// Something the tools do not handle (unknown ABI, layout, release).
    Unsupported(String),
    /// A file refused before reading or writing it: not a regular file,
    /// over its size bound, or an output that is one of the inputs.
    Refused {
        path: PathBuf,
        problem: crate::bounds::InputProblem,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {}", path.display(), source),
            Error::Malformed { path, what } => write!(f, "{}: {}", path.display(), what),
            Error::Lookup { symbol, file, what } => match file {
                Some(file) => write!(f, "xen-syms: {file}#{symbol}: {what}"),
                None => write!(f, "xen-syms: {symbol}: {what}"),
            },
            Error::Unsupported(what) => write!(f, "{what}"),
            Error::Refused { path, problem } => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
