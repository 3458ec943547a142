//! Command-line interface: flags of the C lineage's `livepatch-build`,
//! plus the `verify` and `samples` subcommands. Parsing only; the work is
//! in `pipeline`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::build_id::BuildId;
use crate::options::{BuildOptions, Skip};

const AFTER_HELP: &str = "\
Exit codes:
  0  the payload was built (DIR/NAME.livepatch)
  1  error: bad input, another run using DIR, build failure, tool failure, a
     payload that fails the loader's checks (details in DIR/build.log)
  2  the patch changes something that cannot be live-patched (every refusal is listed)
  3  the patch makes no functional change to the hypervisor

--accept KIND:SUBJECT (with --accept-reason) builds despite that one refusal;
the payload records it in its .xsplice.accepted section (verify prints it).

DIR/NAME.livepatch exists only after a run that built it: a run that ends
otherwise removes the previous run's payload (and --json report) first.
Progress: one line per stage on stderr; during a first base build a bar on a
terminal, a line every 5 s otherwise; at the end each patched and new
function. -q prints none of it.

The user's source tree is never modified: builds run in a private copy. The
base build (unpatched tree + .config + compiler) is cached, so the next patch
against the same base only compiles what the patch touches.
Cache: --cache-dir, else $XSPLICE_CACHE_DIR, $XDG_CACHE_HOME/xsplice-build,
~/.cache/xsplice-build.

Architecture: read from the tree's .config (CONFIG_X86_64=y or
CONFIG_ARM_64=y; 32-bit Arm is refused) and checked against --xen-syms' ELF
machine, never passed. A tree of another architecture than this machine's is
cross-built as Xen's own build does it: every make gets
XEN_TARGET_ARCH=arm64 and CROSS_COMPILE=$CROSS_COMPILE when set, else
aarch64-linux-gnu- (Debian's gcc-aarch64-linux-gnu); ld and objcopy take the
same prefix. A missing cross compiler stops the run before any build (exit 1).

Inputs are checked before any work: every file must be a regular file (not
a FIFO, device or directory) within its bound: --patch and --config 64 MiB,
--xen-syms 512 MiB (an x86-64 or AArch64 ELF executable with a build-id). Patch file
names must stay inside the tree (no \"..\", no link leading out of it).
--depends/--xen-depends take 1 to 64 bytes of hex; -j takes 1 or more.
Outputs are written atomically (temporary file + rename). See docs/limits.md.";

#[derive(Debug, Parser)]
#[command(
    name = "xsplice-build",
    version,
    about = "Build a Xen live-patch payload from a Xen source tree and a patch",
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub build: BuildArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check payloads the way the hypervisor's loader does, offline.
    Verify(crate::verify::VerifyArgs),
    /// Build every sample patch in sample-patches/ and check the results.
    Samples(crate::samples::SamplesArgs),
    /// Build every base × patch of a manifest (a fleet's matrix) on this machine.
    Batch(crate::batch::BatchArgs),
    /// Join the summaries of a sharded batch (`batch --shard K/N`) into one.
    BatchMerge(crate::batch::MergeArgs),
    /// Write man pages (one per command) into a directory.
    Man(ManArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory for xsplice-build.1, xsplice-build-verify.1, ...
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    #[arg(value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

/// `xsplice-build man DIR`: pages generated from these definitions, so the
/// man pages and `--help` never disagree.
pub fn write_man_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    let mut written = Vec::new();
    let mut page = |cmd: clap::Command, name: String| -> std::io::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.name(name.clone())).render(&mut out)?;
        std::fs::write(&path, out)?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands() {
        let name = format!("xsplice-build-{}", sub.get_name());
        page(sub.clone(), name)?;
    }
    page(cmd, "xsplice-build".into())?;
    Ok(written)
}

/// `xsplice-build completions SHELL`.
pub fn print_completions(shell: clap_complete::Shell) {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "xsplice-build", &mut std::io::stdout());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SkipArg {
    /// Reuse the previous run's objects in DIR: diff and link only.
    Build,
    /// Reuse the previous run's diff outputs in DIR: link only.
    Diff,
}

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Top of the Xen source tree (the directory holding xen/); never modified.
    #[arg(short = 's', long, value_name = "XEN", required = true)]
    pub srcdir: Option<PathBuf>,
    /// The patch to build (applied with `patch -p1` from the top of the tree).
    /// Given more than once (an XSA's several files), the patches are
    /// applied in that order into one payload, named after the first.
    #[arg(short = 'p', long, value_name = "PATCH", required = true, action = clap::ArgAction::Append)]
    pub patch: Vec<PathBuf>,
    /// The .config the running hypervisor was built with (default: XEN/xen/.config).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Output directory (payload, build.log, intermediate objects).
    #[arg(short = 'o', long, value_name = "DIR", default_value = "livepatch-out")]
    pub output: PathBuf,
    /// Parallel jobs for make and diffing (default: number of CPUs).
    #[arg(short = 'j', long = "cpus", value_name = "N", value_parser = crate::options::at_least_one)]
    pub cpus: Option<usize>,
    /// Skip stages, reusing the previous run's results in DIR.
    #[arg(short = 'k', long, value_enum, value_name = "STAGE")]
    pub skip: Option<SkipArg>,
    /// Verbose diffing (per-symbol reasons in build.log); keep work files.
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Build Xen with debug=y (when the .config does not set the debug options).
    #[arg(long)]
    pub xen_debug: bool,
    /// The xen-syms of the running hypervisor; the rebuilt base must reproduce it.
    #[arg(long, value_name = "FILE")]
    pub xen_syms: Option<PathBuf>,
    /// Build-id (hex) this payload stacks on (default: the hypervisor's).
    #[arg(long, value_name = "BUILDID", value_parser = BuildIdArg("--depends"))]
    pub depends: Option<BuildId>,
    /// Build-id (hex) of the hypervisor (default: the base xen-syms').
    #[arg(long, value_name = "BUILDID", value_parser = BuildIdArg("--xen-depends"))]
    pub xen_depends: Option<BuildId>,
    /// Resolve old_addr from xen-syms at build time instead of at load time.
    #[arg(long)]
    pub prelink: bool,
    /// Strip symbols not needed for relocation from the payload.
    #[arg(long)]
    pub strip: bool,
    /// Payload name (default: the patch's basename without .patch/.diff).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Build a replace-all payload (load with `xen-livepatch load` using the
    /// REPLACE action): it depends on the hypervisor itself, never on another payload.
    #[arg(long)]
    pub replace: bool,
    /// Write a JSON report (build-ids, functions, objects, refusals, timings).
    #[arg(long, value_name = "REPORT")]
    pub json: Option<PathBuf>,
    /// Base-build cache directory.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress lines, progress bar or function list on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Compile through ccache, configured by its own environment (e.g.
    /// CCACHE_REMOTE_STORAGE=redis://HOST to share a fleet's compiles,
    /// CCACHE_PREFIX=distcc to distribute them). Payload bytes and the base
    /// cache key are the same as without it.
    #[arg(long)]
    pub ccache: bool,
    /// Accept one refusal the author has checked by hand, by its exact kind
    /// and subject: KIND is the refusal's `kind` and SUBJECT its `symbol`
    /// exactly as the report names them (`--accept layout_changed:'struct
    /// domain'`); no patterns. It accepts that refusal in every object.
    /// Repeatable; requires --accept-reason. The payload is then built, the
    /// JSON report lists each accepted refusal (`accepted`), stderr says so,
    /// and the payload records them in its non-loaded `.xsplice.accepted`
    /// section, which `xsplice-build verify` prints. An --accept that
    /// matches no refusal is an error (exit 1). Kinds that would leave the
    /// payload incomplete (init_reference, new_percpu_variable,
    /// unnamed_data_reference, function_too_small, unknown_section) cannot
    /// be accepted. See docs/driver.md.
    #[arg(long, value_name = "KIND:SUBJECT", value_parser = parse_accept,
          action = clap::ArgAction::Append, requires = "accept_reason")]
    pub accept: Vec<create_diff_object::Accept>,
    /// Why the --accept refusals are safe, and who checked them (one line;
    /// recorded in the report and the payload).
    #[arg(long, value_name = "TEXT", requires = "accept")]
    pub accept_reason: Option<String>,
}

/// `--accept KIND:SUBJECT`: a known, acceptable kind and a non-empty subject.
pub fn parse_accept(s: &str) -> Result<create_diff_object::Accept, String> {
    crate::accept::parse(s)
}

/// A build-id option (`--depends`, `--xen-depends`), parsed by clap into
/// a [`BuildId`]. A bad value is a usage error (exit 1, as every usage
/// error) saying what is wrong and what a build-id looks like, without
/// echoing the value (it may be huge).
#[derive(Clone, Copy)]
pub struct BuildIdArg(pub &'static str);

impl clap::builder::TypedValueParser for BuildIdArg {
    type Value = BuildId;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<BuildId, clap::Error> {
        value.to_string_lossy().parse().map_err(|problem| {
            let problem = crate::problem::Problem::BadBuildId {
                option: self.0,
                problem,
            };
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{problem}\n"),
            )
        })
    }
}

impl BuildArgs {
    /// The library's options; `None` when -s or -p is missing.
    pub fn to_options(&self) -> Option<BuildOptions> {
        Some(BuildOptions {
            srcdir: self.srcdir.clone()?,
            patch: self.patch.first()?.clone(),
            more_patches: self.patch.iter().skip(1).cloned().collect(),
            config: self.config.clone(),
            output: self.output.clone(),
            jobs: self.cpus.unwrap_or(0),
            skip: self.skip.map(|s| match s {
                SkipArg::Build => Skip::Build,
                SkipArg::Diff => Skip::Diff,
            }),
            debug: self.debug,
            xen_debug: self.xen_debug,
            xen_syms: self.xen_syms.clone(),
            depends: self.depends.clone(),
            xen_depends: self.xen_depends.clone(),
            prelink: self.prelink,
            strip: self.strip,
            name: self.name.clone(),
            replace: self.replace,
            json: self.json.clone(),
            cache_dir: self.cache_dir.clone(),
            quiet: self.quiet,
            ccache: self.ccache,
            accept: self.accept.clone(),
            accept_reason: self.accept_reason.clone(),
        })
    }
}
