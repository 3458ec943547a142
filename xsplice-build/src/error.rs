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
    /// The patched sources do not compile: the build's first compiler error.
    Compile {
        what: String,
        error: CompilerError,
        log: Option<PathBuf>,
    },
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

/// One compiler diagnostic (`file:line[:column]: error: message`), the
/// file relative to the top of the source tree (`xen/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompilerError {
    pub file: String,
    pub line: u32,
    pub column: Option<u32>,
    pub message: String,
}

impl fmt::Display for CompilerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        write!(f, ": error: {}", self.message)
    }
}

impl CompilerError {
    /// The first error GCC or Clang reports in `output` (a build's
    /// output, compiled from `xen/`); paths under `xen_dir` or relative
    /// to it are given from the top of the tree.
    pub fn first_in(output: &str, xen_dir: &std::path::Path) -> Option<CompilerError> {
        output.lines().find_map(|l| Self::parse(l, xen_dir))
    }

    fn parse(line: &str, xen_dir: &std::path::Path) -> Option<CompilerError> {
        let (place, message) = [": error: ", ": fatal error: "]
            .iter()
            .find_map(|sep| line.split_once(sep))?;
        let mut parts = place.rsplitn(3, ':');
        let (a, b, c) = (parts.next()?, parts.next(), parts.next());
        let (file, line_no, column) = match (a.parse::<u32>(), b.map(str::parse::<u32>), c) {
            (Ok(col), Some(Ok(line)), Some(file)) => (file, line, Some(col)),
            (Ok(line), Some(Err(_)), _) => (place.rsplit_once(':')?.0, line, None),
            _ => return None,
        };
        let file = file.trim();
        if file.is_empty() || file.contains(' ') {
            return None;
        }
        let top = xen_dir.parent().unwrap_or(xen_dir);
        let path = std::path::Path::new(file);
        let file = match path.strip_prefix(top) {
            Ok(rel) => rel.display().to_string(),
            Err(_) if path.is_absolute() => file.to_string(),
            Err(_) => format!("xen/{}", file.trim_start_matches("./")),
        }
        .replace("/./", "/");
        Some(CompilerError {
            file,
            line: line_no,
            column,
            message: message.trim().to_string(),
        })
    }
}

impl Error {
    /// The compiler's first error, when the build failed to compile.
    pub fn compiler_error(&self) -> Option<&CompilerError> {
        match self {
            Error::Compile { error, .. } => Some(error),
            _ => None,
        }
    }

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
            Error::Compile { what, error, log } => {
                write!(f, "{what}: the patched sources do not compile: {error}")?;
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

#[cfg(test)]
mod tests {
    use super::CompilerError;
    use std::path::Path;

    #[test]
    fn first_compiler_error_is_found() {
        let xen = Path::new("/cache/k/work/xen");
        let out = "make -f ./Rules.mk obj=arch/x86\n  CC      arch/x86/time.o\n\
            In file included from arch/x86/time.c:12:\n\
            arch/x86/time.c: In function 'update_secondary_system_time':\n\
            arch/x86/time.c:1481:9: error: 'polcy' undeclared (first use in this function)\n\
            arch/x86/time.c:1490:1: error: second\n\
            make[2]: *** [Rules.mk:246: arch/x86/time.o] Error 1\n";
        let e = CompilerError::first_in(out, xen).unwrap();
        assert_eq!(e.file, "xen/arch/x86/time.c");
        assert_eq!((e.line, e.column), (1481, Some(9)));
        assert_eq!(e.message, "'polcy' undeclared (first use in this function)");
        assert_eq!(
            e.to_string(),
            "xen/arch/x86/time.c:1481:9: error: 'polcy' undeclared (first use in this function)"
        );
        let e = CompilerError::first_in(
            "/cache/k/work/xen/./include/xen/x.h:7: fatal error: y.h: No such file or directory",
            xen,
        )
        .unwrap();
        assert_eq!(
            (e.file.as_str(), e.line, e.column),
            ("xen/include/xen/x.h", 7, None)
        );
        assert!(
            CompilerError::first_in("make: *** [Makefile:1: all] Error 2\nld: error: x", xen)
                .is_none()
        );
    }
}
