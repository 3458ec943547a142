//! Bad input, as data: each kind of problem the driver finds in what it
//! was given (tree, patch, options, output places, `--xen-syms`, a
//! previous run for `--skip`, the samples), with the path, option or name
//! it is about. `Display` is the one-line message a person acts on;
//! programs match on the variant. All of them exit 1 (`Error::Input`),
//! and `main` points to no build log for them: the message says all
//! there is (most are found before any work).

use std::fmt;
use std::path::PathBuf;

/// Something wrong with the driver's input.
#[derive(Debug)]
pub enum Problem {
    /// A directory option names nothing (`--srcdir`).
    NoSuchDirectory { path: PathBuf, option: &'static str },
    /// `--srcdir` is not the top of a Xen tree.
    NotXenTree { path: PathBuf },
    /// The tree or `--xen-syms` is a Xen release whose loader rules the
    /// tool does not know (outside 4.17..=4.22).
    UnsupportedRelease(xsplice_target::abi::target::UnsupportedRelease),
    /// A file option names nothing (`--config`, `--xen-syms`).
    NoSuchFile { path: PathBuf, option: &'static str },
    /// No `--config` and the tree has no `xen/.config`.
    NoConfig { expected: PathBuf },
    /// An input file could not be read.
    Unreadable {
        path: PathBuf,
        option: &'static str,
        source: std::io::Error,
    },
    /// An input file refused before reading (not a regular file, too
    /// large) or not the kind of file expected (`--xen-syms`).
    Refused {
        option: &'static str,
        source: xsplice_target::Error,
    },
    /// The `.config` does not enable live patching.
    LivepatchDisabled { config: PathBuf },
    /// `CONFIG_LIVEPATCH=y` is dropped by `make olddefconfig`.
    LivepatchDropped,
    /// The patch's file list is unusable.
    BadPatch {
        patch: PathBuf,
        problem: PatchProblem,
    },
    /// The patch does not apply (to a scratch copy of the files it
    /// touches, after the patches before it); `why` is patch's own explanation.
    PatchDoesNotApply {
        patch: PathBuf,
        tree: PathBuf,
        why: String,
    },
    /// A program the driver needs could not be started.
    CannotRun {
        program: &'static str,
        source: std::io::Error,
    },
    /// The payload name is empty after cleaning.
    EmptyName,
    /// The payload name is over the loader's limit.
    NameTooLong { name: String, max: usize },
    /// `--replace` with `--depends`.
    ReplaceWithDepends,
    /// An `--accept` the driver cannot honour (a kind that cannot be
    /// accepted, a subject that is not one exact name).
    BadAccept { accept: String, why: String },
    /// `--accept` without a usable `--accept-reason`, or the reverse.
    AcceptReason { why: String },
    /// `--accept`s that matched no refusal of the run.
    AcceptUnmatched { accepts: Vec<String> },
    /// `--depends` / `--xen-depends` is not a usable build-id.
    BadBuildId {
        option: &'static str,
        problem: BuildIdProblem,
    },
    /// `--ccache` without ccache.
    NoCcache,
    /// The cross compiler a tree of another architecture needs is not in
    /// PATH: `compiler`, Debian's `package` holds it.
    NoCrossCompiler {
        compiler: String,
        arch: &'static str,
        package: &'static str,
    },
    /// A distro recipe that builds no tree of this architecture.
    RecipeArch {
        recipe: &'static str,
        arch: &'static str,
    },
    /// No `--cache-dir` and nothing in the environment to derive one from.
    NoCacheDir,
    /// A place the driver writes is inside the source tree.
    InsideSourceTree {
        what: Written,
        path: PathBuf,
        srcdir: PathBuf,
    },
    /// An output is one of the inputs.
    ClobbersInput { output: PathBuf, input: PathBuf },
    /// A directory the tree is copied into and built in has a character
    /// Xen's build refuses (whitespace or `:`); `set_by` is the option or
    /// environment variable it came from.
    UnbuildablePath {
        what: Written,
        path: PathBuf,
        found: char,
        set_by: &'static str,
    },
    /// The output directory cannot be created.
    OutputDirUncreatable {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// The output directory cannot be written to.
    OutputDirNotWritable {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// Another run holds the output directory's lock.
    OutputDirBusy { dir: PathBuf },
    /// The output directory's lock could not be taken (not a busy lock:
    /// the file system refused it).
    OutputDirLock {
        lock: PathBuf,
        source: std::io::Error,
    },
    /// `--xen-syms` has no build-id note.
    XenSymsNoBuildId { path: PathBuf },
    /// `--xen-syms`'s build-id could not be read.
    XenSymsBuildId { source: xsplice_target::Error },
    /// `--xen-syms` is not a readable ELF file (`what` says where it broke).
    XenSymsMalformed { path: PathBuf, what: String },
    /// `--skip`: the output directory holds no previous run.
    NoPreviousRun {
        record: PathBuf,
        source: std::io::Error,
    },
    /// `--skip`: the previous run's base build left the cache.
    PreviousBaseGone { xen_syms: PathBuf },
    /// `--skip diff`: no previous diff in the output directory.
    NoPreviousDiff {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A Debian source package's `debian/` file lacks what the build
    /// strings are derived from.
    DebianSource { file: PathBuf, what: &'static str },
    /// `debian/changelog`'s date could not be converted.
    DebianDate { date: String },
    /// An object could not be read as ELF to rename its locals.
    MalformedObject { path: PathBuf, what: String },
    /// The diff produced nothing to link.
    NothingToLink,
    /// The build log's lock was poisoned by a thread that panicked.
    LogPoisoned,
    /// `samples.list` does not parse.
    SamplesList { dir: PathBuf, what: String },
    /// A listed sample has no patch.
    SampleMissing {
        list: PathBuf,
        name: String,
        diff: PathBuf,
    },
    /// A patch in the samples directory is not listed.
    SampleUnlisted {
        dir: PathBuf,
        /// The list it is missing from.
        list: PathBuf,
        file: String,
    },
    /// `--only` names samples that cannot be selected.
    SampleSelection(String),
    /// A sample is not built because the one it stacks on failed.
    SampleDependencyFailed { sample: String, dependency: String },
}

/// Where a patch's file names go wrong (after `-p1`).
#[derive(Debug)]
pub enum PatchProblem {
    /// No `---`/`+++` headers at all.
    NoFileHeaders,
    /// A file name is absolute.
    AbsoluteName(String),
    /// A file name uses `..`.
    EscapingName(String),
    /// A file name has no leading directory to strip.
    NoPrefix(String),
    /// A file name cannot be resolved in the tree (dangling or looping link).
    Unresolvable {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file name leads outside the tree through a symbolic link.
    LeadsOutside {
        path: PathBuf,
        srcdir: PathBuf,
        real: PathBuf,
    },
    /// A file name is the top of the tree.
    TopOfTree { path: PathBuf },
    /// The tree's top could not be resolved to check the names against.
    TreeUnreadable {
        srcdir: PathBuf,
        source: std::io::Error,
    },
}

/// Why a build-id given on the command line is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildIdProblem {
    NotHex(char),
    OddDigits(usize),
    /// Whole bytes, but outside `xsplice_target::notes::BUILD_ID_LEN`.
    Length(usize),
    /// The digits did not decode (the reason as the decoder gives it).
    Decode(String),
}

/// The places the driver writes to, as named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    OutputDirectory,
    CacheDirectory,
    JsonReport,
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Written::OutputDirectory => "output directory",
            Written::CacheDirectory => "cache directory",
            Written::JsonReport => "JSON report",
        })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            NoSuchDirectory { path, option } => {
                write!(f, "{}: no such directory ({option})", path.display())
            }
            NotXenTree { path } => write!(
                f,
                "{}: not a Xen source tree (no xen/Makefile); pass the top of the tree with -s",
                path.display()
            ),
            UnsupportedRelease(u) => write!(f, "{u}"),
            NoSuchFile { path, option } => {
                write!(f, "{}: no such file ({option})", path.display())
            }
            NoConfig { expected } => write!(
                f,
                "no .config: {} does not exist; pass the running hypervisor's .config with -c/--config",
                expected.display()
            ),
            Unreadable {
                path,
                option,
                source,
            } => write!(f, "{}: cannot read ({option}): {source}", path.display()),
            Refused { option, source } => write!(f, "{source} ({option})"),
            LivepatchDisabled { config } => write!(
                f,
                "{}: CONFIG_LIVEPATCH=y is not set; the hypervisor must be built with live patching",
                config.display()
            ),
            LivepatchDropped => write!(
                f,
                "CONFIG_LIVEPATCH=y does not survive `make olddefconfig` (a dependency is missing from the .config)"
            ),
            BadPatch { patch, problem } => write!(f, "{}: {problem}", patch.display()),
            PatchDoesNotApply { patch, tree, why } => write!(
                f,
                "{}: does not apply to {} (patch -p1 --fuzz=0): {why}",
                patch.display(),
                tree.display()
            ),
            CannotRun { program, source } => write!(f, "cannot run {program}: {source}"),
            EmptyName => write!(f, "payload name is empty; pass --name"),
            NameTooLong { name, max } => write!(
                f,
                "payload name {name:?} is longer than {max} characters (the loader's limit); pass a shorter --name"
            ),
            BadAccept { accept, why } => write!(f, "--accept {accept}: {why}"),
            AcceptReason { why } => write!(f, "{why}"),
            AcceptUnmatched { accepts } => write!(
                f,
                "--accept {} matched no refusal of this patch (remove it: an accept is for \
                 exactly one kind and subject, as the report's `refusals` name them)",
                accepts.join(", --accept ")
            ),
            ReplaceWithDepends => write!(
                f,
                "--replace and --depends conflict: a replace payload depends on the hypervisor itself"
            ),
            BadBuildId {
                option,
                problem: BuildIdProblem::Decode(e),
            } => write!(f, "{option}: {e}"),
            BadBuildId { option, problem } => {
                let range = xsplice_target::notes::BUILD_ID_LEN;
                write!(
                    f,
                    "{option}: {problem}; give {} to {} bytes as hex digits (2 per byte), as `readelf -n` and xen-livepatch print them: the loader compares the note byte for byte with the target's build-id (20 bytes when ld made it with sha1)",
                    range.start(),
                    range.end()
                )
            }
            NoCcache => write!(
                f,
                "--ccache: no ccache in PATH (Debian: apt-get install ccache)"
            ),
            NoCrossCompiler {
                compiler,
                arch,
                package,
            } => write!(
                f,
                "the tree is configured for {arch}, and its compiler {compiler} is not in PATH: \
                 install it (Debian: apt-get install {package}) or set CROSS_COMPILE to the \
                 prefix of another (as for Xen's own build)"
            ),
            RecipeArch { recipe, arch } => write!(
                f,
                "the {recipe} recipe builds x86-64 hypervisors only; this tree is configured \
                 for {arch}: build it from an upstream tree"
            ),
            NoCacheDir => write!(
                f,
                "no cache directory: set --cache-dir, XSPLICE_CACHE_DIR or HOME"
            ),
            // Where the run writes, and what it reads back later.
            _ => self.fmt_places_and_records(f),
        }
    }
}

impl Problem {
    /// The messages of the problems with the places a run writes, the
    /// target, earlier runs' records, a distro source and the samples.
    fn fmt_places_and_records(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            InsideSourceTree { what, path, srcdir } => write!(
                f,
                "the {what} {} is inside the source tree {}; choose one outside it (the tree is never written to)",
                path.display(),
                srcdir.display()
            ),
            ClobbersInput { output, input } => write!(
                f,
                "{}: is the same file as the input {}; choose another output (the input would be overwritten)",
                output.display(),
                input.display()
            ),
            UnbuildablePath {
                what,
                path,
                found,
                set_by,
            } => write!(
                f,
                "the {what} {} contains {found:?}, and Xen's build refuses a directory with \
                 spaces or colons (\"source directory cannot contain spaces or colons\"); \
                 the tree is copied and built there: choose another with {set_by}",
                path.display()
            ),
            OutputDirUncreatable { dir, source } => write!(
                f,
                "{}: cannot create the output directory: {source}",
                dir.display()
            ),
            OutputDirNotWritable { dir, source } => write!(
                f,
                "{}: output directory is not writable: {source}",
                dir.display()
            ),
            OutputDirBusy { dir } => write!(
                f,
                "another run is using {}: wait for it to end or choose another --output",
                dir.display()
            ),
            OutputDirLock { lock, source } => write!(
                f,
                "{}: cannot lock the output directory: {source}",
                lock.display()
            ),
            XenSymsNoBuildId { path } => write!(
                f,
                "{}: has no build-id (.note.gnu.build-id); the payload's dependency notes need it (--xen-syms)",
                path.display()
            ),
            XenSymsBuildId { source } => write!(f, "--xen-syms: {source}"),
            XenSymsMalformed { path, what } => write!(f, "{}: {what}", path.display()),
            NoPreviousRun { record, source } => write!(
                f,
                "--skip: no previous run in this output directory ({}: {source})",
                record.display()
            ),
            PreviousBaseGone { xen_syms } => write!(
                f,
                "--skip: the previous run's base build ({}) is no longer in the cache; run without --skip",
                xen_syms.display()
            ),
            NoPreviousDiff { dir, source } => write!(
                f,
                "--skip diff: no previous diff in {} ({source})",
                dir.display()
            ),
            DebianSource { file, what } => write!(f, "{}: {what}", file.display()),
            DebianDate { date } => {
                write!(f, "debian/changelog: cannot read the date {date:?}")
            }
            MalformedObject { path, what } => write!(f, "{}: {what}", path.display()),
            NothingToLink => write!(f, "nothing to link"),
            LogPoisoned => write!(f, "build log lock poisoned"),
            SamplesList { dir, what } => write!(f, "{}: {what}", dir.display()),
            SampleMissing { list, name, diff } => write!(
                f,
                "{}: {name} is listed but {} is missing",
                list.display(),
                diff.display()
            ),
            SampleUnlisted { dir, list, file } => write!(
                f,
                "{}: {file} is not listed in {}",
                dir.display(),
                list.file_name().unwrap_or(list.as_os_str()).to_string_lossy()
            ),
            SampleSelection(what) => write!(f, "{what}"),
            SampleDependencyFailed { sample, dependency } => write!(
                f,
                "{sample}: not built because {dependency}, which it stacks on, failed"
            ),
            // The inputs and options are written by `fmt`, which never
            // sends them here; a message, not a panic, if that changes.
            other => write!(f, "{other:?}"),
        }
    }
}

impl fmt::Display for PatchProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatchProblem::NoFileHeaders => {
                write!(f, "patch: no file headers found (is it a unified diff?)")
            }
            PatchProblem::AbsoluteName(name) => write!(
                f,
                "patch: file name {name:?} is absolute; patches name files relative to the top of the tree (a/xen/...)"
            ),
            PatchProblem::EscapingName(name) => write!(
                f,
                "patch: file name {name:?} uses \"..\" and would reach outside the source tree; refusing it"
            ),
            PatchProblem::NoPrefix(name) => write!(
                f,
                "patch: file name {name:?} has no leading directory to strip (the patch must apply with -p1)"
            ),
            PatchProblem::Unresolvable { path, source } => write!(
                f,
                "patch: {} cannot be resolved in the source tree (a dangling or looping symbolic link?): {source}",
                path.display()
            ),
            PatchProblem::LeadsOutside { path, srcdir, real } => write!(
                f,
                "patch: {} leads outside the source tree {} (to {}, through a symbolic link); refusing it",
                path.display(),
                srcdir.display(),
                real.display()
            ),
            PatchProblem::TreeUnreadable { srcdir, source } => {
                write!(f, "{}: {source}", srcdir.display())
            }
            PatchProblem::TopOfTree { path } => write!(
                f,
                "patch: {} is the top of the source tree, not a file",
                path.display()
            ),
        }
    }
}

impl fmt::Display for BuildIdProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildIdProblem::NotHex(c) => write!(f, "{c:?} is not a hex digit"),
            BuildIdProblem::OddDigits(n) => {
                write!(f, "{n} hex digits is not a whole number of bytes")
            }
            BuildIdProblem::Length(n) => write!(f, "{n} bytes"),
            BuildIdProblem::Decode(e) => write!(f, "{e}"),
        }
    }
}
