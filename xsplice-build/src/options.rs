//! What a build is asked to do: the library's options (the command line
//! maps onto them, `cli`) and the checks of single option values. The
//! ground floor with `error`: nothing here imports from the stages.

use std::path::PathBuf;

use crate::build_id::BuildId;

/// Which stages `--skip` leaves out, reusing the previous run's results
/// in the output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Reuse the objects of the previous run (`DIR/objects/`): diff and link only.
    Build,
    /// Reuse the diff outputs of the previous run (`DIR/diff/`): link only.
    Diff,
}

/// Everything one payload build needs (the CLI's flags, one for one).
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Top of the Xen source tree (the directory holding `xen/`).
    pub srcdir: PathBuf,
    /// The patch (`patch -p1` from `srcdir`).
    pub patch: PathBuf,
    /// Further patches (`-p` given again), applied after `patch` in this
    /// order, into the same payload (an XSA's `-1.patch`, `-2.patch`).
    pub more_patches: Vec<PathBuf>,
    /// The `.config` to build with; `None`: `srcdir/xen/.config`.
    pub config: Option<PathBuf>,
    /// Where the payload, `build.log` and intermediate files go.
    pub output: PathBuf,
    /// Parallel make jobs (and diff threads); 0 means the number of CPUs.
    pub jobs: usize,
    pub skip: Option<Skip>,
    /// Verbose diff (per-symbol reasons in build.log) and keep work files.
    pub debug: bool,
    /// Build Xen with `debug=y`.
    pub xen_debug: bool,
    /// The hypervisor the payload targets; must match the rebuilt base.
    pub xen_syms: Option<PathBuf>,
    /// Build-id for `.livepatch.depends` (default: the base xen-syms').
    pub depends: Option<BuildId>,
    /// Build-id for `.livepatch.xen_depends` (default: the base xen-syms').
    pub xen_depends: Option<BuildId>,
    /// Fill `old_addr` from xen-syms instead of leaving it to the loader.
    pub prelink: bool,
    /// `strip --strip-unneeded` the payload.
    pub strip: bool,
    /// Payload name; default: the patch's basename.
    pub name: Option<String>,
    /// Build a payload meant for the hypervisor's REPLACE action.
    pub replace: bool,
    /// Write a JSON report here.
    pub json: Option<PathBuf>,
    /// Base-build cache; `None`: `$XSPLICE_CACHE_DIR`, `$XDG_CACHE_HOME/xsplice-build`
    /// or `~/.cache/xsplice-build`.
    pub cache_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    pub quiet: bool,
    /// Compile through ccache (its remote storage, `CCACHE_PREFIX=distcc`
    /// and the rest are set in its environment); output bytes unchanged.
    pub ccache: bool,
    /// Refusals the patch author checked and accepts, by exact kind and
    /// subject (`--accept KIND:SUBJECT`); each must match a refusal.
    pub accept: Vec<create_diff_object::Accept>,
    /// Why (and by whom) they are accepted; required with `accept`, and
    /// carried in the payload's `.xsplice.accepted` section.
    pub accept_reason: Option<String>,
}

impl BuildOptions {
    /// The options of `xsplice-build -s SRCDIR -p PATCH -o OUTPUT` with
    /// nothing else given (the CLI's defaults); set the rest with struct
    /// update syntax.
    pub fn new(srcdir: PathBuf, patch: PathBuf, output: PathBuf) -> BuildOptions {
        BuildOptions {
            srcdir,
            patch,
            more_patches: Vec::new(),
            config: None,
            output,
            jobs: 0,
            skip: None,
            debug: false,
            xen_debug: false,
            xen_syms: None,
            depends: None,
            xen_depends: None,
            prelink: false,
            strip: false,
            name: None,
            replace: false,
            json: None,
            cache_dir: None,
            quiet: false,
            ccache: false,
            accept: Vec::new(),
            accept_reason: None,
        }
    }
}

impl BuildOptions {
    /// Every patch, in the order they are applied.
    pub fn patches(&self) -> Vec<&std::path::Path> {
        std::iter::once(&self.patch)
            .chain(&self.more_patches)
            .map(PathBuf::as_path)
            .collect()
    }
}

/// `-j N`: 0 jobs would build nothing.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => {
            Err("0 jobs cannot build anything; give 1 or more (default: the number of CPUs)".into())
        }
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?} is not a number of jobs: {e}")),
    }
}
