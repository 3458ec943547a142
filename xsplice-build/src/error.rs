//! The driver's one error type; each variant maps to an exit code.

use std::fmt;
use std::path::PathBuf;

use crate::build_id::BuildId;

pub use crate::problem::{BuildIdProblem, PatchProblem, Problem, Written};

#[derive(Debug)]
pub enum Error {
    /// Bad input found before any work (tree, patch, config, output dir).
    Input(Problem),
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
    /// The rebuilt base does not reproduce the given xen-syms, or the
    /// tree and .config cannot have built it.
    Mismatch(Mismatch),
    /// The payload fails the loader's checks.
    Verify(VerifyFailure),
    /// A cached base file is not what the entry's manifest recorded when
    /// it was completed (the driver then rebuilds the base once).
    /// A file system the run writes to is full (ENOSPC): `what` failed,
    /// `evidence` quotes the cause (a command's output line, or the
    /// file system found full).
    DiskFull {
        what: String,
        evidence: String,
        log: Option<PathBuf>,
    },
    CacheCorrupt {
        /// The cache entry (`KEY/`).
        entry: PathBuf,
        mismatch: Box<DigestMismatch>,
    },
}

/// Why the payload would not be for the hypervisor given as `--xen-syms`.
#[derive(Debug)]
pub enum Mismatch {
    /// The rebuilt base's own build-id could not be read.
    BaseBuildId(xsplice_target::Error),
    /// The rebuilt base is not `xen_syms` (nor loads its bytes). After the
    /// base stage, `recipe` and `first_difference` say what was built
    /// and where it first differs.
    NotReproduced {
        xen_syms: PathBuf,
        /// Its build-id and the rebuilt base's.
        build_id: BuildId,
        rebuilt: BuildId,
        context: Option<MismatchContext>,
    },
    /// Refused before any build: `xen_syms` says something the tree or
    /// .config contradict (`what` names the first such thing).
    NotFromTree { xen_syms: PathBuf, what: String },
}

/// What the base stage knows about a base that does not reproduce `--xen-syms`.
#[derive(Debug)]
pub struct MismatchContext {
    /// The build recipe the base was built with.
    pub recipe: String,
    /// The first symbol or loaded byte that differs, if one does.
    pub first_difference: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::BaseBuildId(e) => write!(f, "base build: {e}"),
            Mismatch::NotReproduced {
                xen_syms,
                build_id,
                rebuilt,
                context,
            } => {
                write!(
                    f,
                    "{}: the rebuilt base does not reproduce it (build-id {build_id} vs rebuilt \
                     {rebuilt}); build with the same sources, .config, compiler and build recipe \
                     as the running hypervisor",
                    xen_syms.display()
                )?;
                if let Some(c) = context {
                    write!(
                        f,
                        "; recipe {}; {}",
                        c.recipe,
                        c.first_difference
                            .as_deref()
                            .unwrap_or("no symbol or loaded byte differs")
                    )?;
                }
                Ok(())
            }
            Mismatch::NotFromTree { xen_syms, what } => write!(
                f,
                "{} was not built from this tree and .config: {what}; pass the source tree, \
                 .config and xen-syms of the same hypervisor build",
                xen_syms.display()
            ),
        }
    }
}

/// A file whose contents are not what its manifest (`hash::FileDigests`) recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMismatch {
    pub file: PathBuf,
    /// The recorded digest (`None`: the manifest does not list the file).
    pub expected: Option<String>,
    /// The digest found (`Err`: the file could not be read, and why).
    pub actual: Result<String, String>,
}

impl std::fmt::Display for DigestMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected BLAKE3 {}, found {}",
            self.file.display(),
            self.expected.as_deref().unwrap_or("(none recorded)"),
            match &self.actual {
                Ok(d) => d.clone(),
                Err(e) => format!("no readable file ({e})"),
            }
        )
    }
}

/// Why a payload fails the loader's checks (or could not be checked).
#[derive(Debug)]
pub enum VerifyFailure {
    /// `verify` ran and found failures: its whole report.
    Failed {
        payload: PathBuf,
        report: Box<crate::verify::VerifyReport>,
    },
    /// An input of the check could not be read.
    Unreadable(crate::verify::VerifyError),
    /// The payload (or a file it is made from) could not be read.
    Input(Problem),
    /// A file that must be ELF is not (`what` says where it broke).
    Malformed { path: PathBuf, what: String },
    /// A REPLACE payload with a hook that can veto: `verify`'s
    /// `replace_hooks` failure (its subject is the hook's section).
    ReplaceVeto {
        payload: PathBuf,
        failure: crate::verify::Failure,
    },
    /// The diff found code to ship (`objects`), but the linked payload
    /// patches no function and has no hook: nothing would run it. Never
    /// "no change": something did change and the payload cannot carry it.
    NothingToPatch {
        payload: PathBuf,
        objects: Vec<String>,
    },
    /// A build-id could not be read from `source`'s file.
    BuildId(xsplice_target::Error),
    /// `samples`: the payloads' dependency notes do not chain (the break).
    Chain(String),
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyFailure::Failed { payload, report } => write!(
                f,
                "{} (checked against {}): {}",
                payload.display(),
                report.checked_against(),
                report.failure_lines().join("; ")
            ),
            VerifyFailure::Unreadable(e) => write!(f, "{e}"),
            VerifyFailure::Input(p) => write!(f, "{p}"),
            VerifyFailure::Malformed { path, what } => write!(f, "{}: {what}", path.display()),
            VerifyFailure::ReplaceVeto { payload, failure } => {
                write!(f, "{}: {failure}", payload.display())
            }
            VerifyFailure::NothingToPatch { payload, objects } => write!(
                f,
                "{}: it patches no function and has no hook, yet the diff found changes to \
                 ship from {}: nothing in the running hypervisor would reach them (is a changed \
                 function's code moved to another object or piece?)",
                payload.display(),
                objects.join(", ")
            ),
            VerifyFailure::BuildId(e) => write!(f, "{e}"),
            VerifyFailure::Chain(what) => write!(f, "{what}"),
        }
    }
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

    /// Every refusal, when the change cannot be live-patched.
    pub fn refusals(&self) -> &[(String, create_diff_object::Refusal)] {
        match self {
            Error::NotPatchable { refusals, .. } => refusals,
            _ => &[],
        }
    }

    /// Whether a file system the run writes to was full: a command
    /// failed for it ([`Error::DiskFull`]) or a write failed with ENOSPC.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::DiskFull { .. } => true,
            Error::Io { source, .. } => source.raw_os_error() == Some(libc::ENOSPC),
            _ => false,
        }
    }

    /// Whether the error is bad input, found before any work (so there
    /// is no build log to point to).
    pub fn is_input(&self) -> bool {
        matches!(self, Error::Input(_))
    }

    /// Whether the message names `path` already: the log it points to,
    /// or the file that could not be read or written.
    pub fn names_file(&self, path: &std::path::Path) -> bool {
        match self {
            Error::Io { path: p, .. } => p == path,
            Error::Command { log, .. }
            | Error::DiskFull { log, .. }
            | Error::Compile { log, .. }
            | Error::NotPatchable { log, .. } => log.as_deref() == Some(path),
            _ => false,
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
            Error::Input(p) => write!(f, "{p}"),
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
            Error::Mismatch(m) => write!(f, "{m}"),
            Error::Verify(v) => write!(f, "payload fails the loader's checks: {v}"),
            Error::DiskFull {
                what,
                evidence,
                log,
            } => {
                write!(f, "{what}: no space left on device: {evidence}")?;
                if let Some(log) = log {
                    write!(f, " (see {})", log.display())?;
                }
                Ok(())
            }
            Error::CacheCorrupt { mismatch, .. } => write!(
                f,
                "the cached base build changed on disk since it was completed: {mismatch}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Diff { source, .. } => Some(source),
            Error::Input(
                Problem::Unreadable { source, .. }
                | Problem::CannotRun { source, .. }
                | Problem::OutputDirUncreatable { source, .. }
                | Problem::OutputDirNotWritable { source, .. }
                | Problem::OutputDirLock { source, .. }
                | Problem::NoPreviousRun { source, .. }
                | Problem::NoPreviousDiff { source, .. },
            ) => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The typed problems read as the messages users and scripts know.
    #[test]
    fn typed_errors_keep_their_messages() {
        let cases: Vec<(Error, &str)> = vec![
            (
                Error::Input(Problem::NoSuchFile {
                    path: "/x/.config".into(),
                    option: "--config",
                }),
                "/x/.config: no such file (--config)",
            ),
            (
                Error::Input(Problem::BadPatch {
                    patch: "fix.patch".into(),
                    problem: PatchProblem::NoFileHeaders,
                }),
                "fix.patch: patch: no file headers found (is it a unified diff?)",
            ),
            (
                Error::Input(Problem::BadBuildId {
                    option: "--depends",
                    problem: BuildIdProblem::OddDigits(3),
                }),
                "--depends: 3 hex digits is not a whole number of bytes; give 1 to 64 bytes as hex \
                 digits (2 per byte), as `readelf -n` and xen-livepatch print them: the loader \
                 compares the note byte for byte with the target's build-id (20 bytes when ld \
                 made it with sha1)",
            ),
            (
                Error::Input(Problem::InsideSourceTree {
                    what: Written::JsonReport,
                    path: "/src/r.json".into(),
                    srcdir: "/src".into(),
                }),
                "the JSON report /src/r.json is inside the source tree /src; choose one outside it \
                 (the tree is never written to)",
            ),
            (
                Error::Mismatch(Mismatch::NotReproduced {
                    xen_syms: "/boot/xen-syms".into(),
                    build_id: BuildId::from_bytes(vec![0xaa]),
                    rebuilt: BuildId::from_bytes(vec![0xbb]),
                    context: Some(MismatchContext {
                        recipe: "upstream".into(),
                        first_difference: None,
                    }),
                }),
                "/boot/xen-syms: the rebuilt base does not reproduce it (build-id aa vs rebuilt \
                 bb); build with the same sources, .config, compiler and build recipe as the \
                 running hypervisor; recipe upstream; no symbol or loaded byte differs",
            ),
            (
                Error::Verify(VerifyFailure::ReplaceVeto {
                    payload: "p.livepatch".into(),
                    failure: crate::verify::Failure {
                        check: crate::verify::Check::ReplaceHooks,
                        subject: ".livepatch.hooks.preapply".into(),
                        message: "the REPLACE action refuses payloads with vetoing hooks".into(),
                    },
                }),
                "payload fails the loader's checks: p.livepatch: .livepatch.hooks.preapply: the \
                 REPLACE action refuses payloads with vetoing hooks",
            ),
        ];
        for (e, message) in cases {
            assert_eq!(e.to_string(), message);
            assert_eq!(e.exit_code(), crate::exit::ERROR, "{e}");
        }
    }

    /// What `main` decides from fields, not from the message's text.
    #[test]
    fn input_and_named_log_are_fields() {
        let log = Path::new("/out/build.log");
        let input = Error::Input(Problem::EmptyName);
        assert!(input.is_input() && !input.names_file(log));
        let command = |log: Option<&Path>| Error::Command {
            what: "make failed".into(),
            log: log.map(Path::to_path_buf),
        };
        assert!(command(Some(log)).names_file(log));
        assert!(!command(Some(Path::new("/out/other.log"))).names_file(log));
        assert!(!command(None).names_file(log) && !command(None).is_input());
        let io = Error::io(log, std::io::Error::other("disk full"));
        assert!(io.names_file(log));
    }

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
