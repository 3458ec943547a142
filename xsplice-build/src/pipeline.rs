//! The whole build, stage by stage: check → base → patched → diff → link
//! → verify. Output directory layout:
//!   DIR/NAME.livepatch   the payload
//!   DIR/build.log        every command's output and the diff findings
//!   DIR/objects/         base and patched copies of the changed objects (for --skip build)
//!   DIR/diff/            create-diff-object outputs (for --skip diff)
//!   DIR/work/            the private tree copy (removed unless --debug)

use std::fs;
use std::path::{Path, PathBuf};

use create_diff_object::limits::Role;
use create_diff_object::notes::build_id_of_file;
use create_diff_object::{abi, Abi, AbiChoice, XenSyms};

use crate::build::{self, MakeConfig};
use crate::build_id::BuildId;
use crate::diff::{self, DiffJob};
use crate::error::Error;
use crate::error::{Mismatch, MismatchContext, Problem, VerifyFailure, Written};
use crate::link::{self, LinkJob};
use crate::options::{BuildOptions, Skip};
use crate::progress::{Log, Progress};
use crate::recipe::{BuildRecipe, Recipe};
use crate::report::Report;
use crate::stages::{
    BaseBuild, BuildResult, Dependencies, DiffOutput, Linked, ObjectDiff, ObjectsOutput,
    PatchedBuild, Stages,
};
use crate::target::TargetFacts;
use crate::tree::{self, Touched};
use crate::verify::Check;
use crate::worktree::WorkTree;
use xsplice_target::arch::Arch;

/// Build one payload: check inputs, base build (cached), patched build,
/// diff, link, verify. Never modifies `opts.srcdir`.
pub fn build_payload(opts: &BuildOptions) -> Result<BuildResult, Error> {
    let mut progress = Progress::new(opts.quiet);
    let mut stages = Stages::default();
    // Held until the report is written: meanwhile a second run into the
    // same directory is refused.
    let mut lock = None;
    let result = run(opts, &mut progress, &mut stages, &mut lock);
    if !opts.debug {
        // Helper programs of the build recipe, needed only while building.
        let _ = fs::remove_dir_all(opts.output.join(crate::recipe::HELPERS_DIR));
    }
    // The report is written on failure too, but never into the source
    // tree, and not by a run refused because another one holds the
    // directory (the report there is that run's).
    let busy = matches!(&result, Err(Error::Input(Problem::OutputDirBusy { .. })));
    if let Some(json) = opts.json.as_ref().filter(|j| {
        !busy && !tree::is_within(j, &opts.srcdir) && clobbered_input(j, opts).is_none()
    }) {
        let report = Report {
            stages: &stages,
            replace: opts.replace,
            timings: &progress.timings,
            accept_reason: opts.accept_reason.as_deref(),
        };
        // Named by the report's own path, whichever part of it failed.
        let written = report
            .write(json, result.as_ref().map(|_| ()))
            .map_err(|e| match e {
                Error::Io { source, .. } => Error::io(json, source),
                other => other,
            });
        match (&result, written) {
            // A run that cannot say how it ended fails, and so leaves no
            // payload under the name either.
            (Ok(r), Err(e)) => {
                let _ = fs::remove_file(&r.payload);
                return Err(e);
            }
            // The run's own error is the answer; the missing report is
            // said too (the previous run's was removed when this one began).
            (Err(_), Err(e)) => progress.warn(None, &format!("no JSON report written: {e}")),
            _ => {}
        }
    }
    drop(lock);
    result.map(|mut r| {
        r.timings = progress.timings;
        r
    })
}

/// Says on stderr, when the run ends however it ends, that the build log
/// is incomplete (a write to it failed: its disk is full).
struct SayIfCut<'a>(&'a Log);

impl Drop for SayIfCut<'_> {
    fn drop(&mut self) {
        if let Some(why) = self.0.cut() {
            Progress::new(false).warn(None, &format!("the build log is incomplete: {why}"));
        }
    }
}

/// The user's input files.
fn input_files(opts: &BuildOptions) -> Vec<PathBuf> {
    let mut inputs: Vec<PathBuf> = opts.patches().into_iter().map(Path::to_path_buf).collect();
    inputs.push(
        opts.config
            .clone()
            .unwrap_or_else(|| opts.srcdir.join("xen/.config")),
    );
    inputs.extend(opts.xen_syms.clone());
    inputs
}

/// The input `output` would overwrite (same file, maybe through a link).
fn clobbered_input(output: &Path, opts: &BuildOptions) -> Option<PathBuf> {
    input_files(opts)
        .into_iter()
        .find(|i| create_diff_object::limits::same_file(output, i))
}

/// Inputs after the checks.
struct Checked {
    touched: Vec<Touched>,
    config: Vec<u8>,
    /// The architecture the `.config` builds (and `--xen-syms` is of).
    arch: Arch,
    name: String,
    cache: PathBuf,
    /// How the base is built, with the build strings filled in.
    recipe: Recipe,
    /// What `--xen-syms` says about its build.
    target: Option<TargetFacts>,
    /// The output directory's lock (moved out to be held to the end).
    lock: Option<OutputLock>,
    /// Files the patch renames (git's `rename from` / `rename to`).
    renames: Vec<tree::Rename>,
    /// The patch the patched build applies: `--patch`, or the series of
    /// every `-p` in order (`DIR/series.patch`).
    apply: PathBuf,
}

/// Where several `-p` patches are joined, in order, for the patched build.
pub const SERIES: &str = "series.patch";

/// The lock file in the output directory: an advisory lock on it marks
/// the directory as in use by a run.
pub const LOCK_FILE: &str = ".xsplice-build.lock";

/// The output directory's lock, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct OutputLock {
    _file: fs::File,
}

/// Lock `dir` for this run, or say that another run is using it.
fn lock_output(dir: &Path) -> Result<OutputLock, Error> {
    let lock = dir.join(LOCK_FILE);
    let failed = |source| {
        Error::Input(Problem::OutputDirLock {
            lock: lock.clone(),
            source,
        })
    };
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(failed)?;
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(OutputLock { _file: file }),
            // A process forked by this one (another thread's command) holds
            // the lock of a run that just ended until it execs: wait that out.
            Err(fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::Input(Problem::OutputDirBusy {
                    dir: dir.to_path_buf(),
                }))
            }
            Err(fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
    }
}

/// How long a held lock is retried before the directory counts as busy:
/// far less than any run, far more than a fork's wait for its exec.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

fn check(opts: &BuildOptions) -> Result<Checked, Error> {
    tree::check_tree(&opts.srcdir)?;
    let (touched, renames, texts) = read_patches(opts)?;
    let config_path = tree::config_path(&opts.srcdir, opts.config.as_deref())?;
    let config = tree::check_config(&config_path)?;
    let arch = tree_arch(&config_path, &config)?;
    let name = tree::payload_name(&opts.patch, opts.name.as_deref())?;
    if opts.replace && opts.depends.is_some() {
        return Err(Error::Input(Problem::ReplaceWithDepends));
    }
    crate::accept::validate(
        &opts.accept,
        opts.accept_reason.as_deref(),
        opts.skip == Some(Skip::Diff),
    )
    .map_err(Error::Input)?;
    if let Some(x) = opts.xen_syms.as_deref() {
        check_xen_syms_file(x, arch, &config_path)?;
    }
    let (recipe, target) = check_recipe_and_target(opts, &config, arch)?;
    if opts.skip.is_none() {
        check_compiler(&recipe, arch)?;
    }
    let cache = check_written_places(opts)?;
    let series = (texts.len() > 1).then(|| opts.output.join(SERIES));
    check_outputs_clobber_nothing(opts, &name, series.as_deref())?;
    if opts.skip.is_none() {
        tree::patches_apply(&opts.srcdir, &opts.patches(), &touched)?;
    }
    let lock = open_output(opts)?;
    // Several patches are applied as one series, in the order given.
    let apply = match series {
        Some(series) => {
            let mut all = Vec::new();
            for text in &texts {
                all.extend_from_slice(text);
                if !all.ends_with(b"\n") {
                    all.push(b'\n');
                }
            }
            build::write_file(&series, &all)?;
            series
        }
        None => opts.patch.clone(),
    };
    Ok(Checked {
        apply,
        lock: Some(lock),
        renames,
        touched,
        config,
        arch,
        name,
        cache,
        recipe,
        target,
    })
}

/// The architecture the tree is configured for, from its `.config`.
pub fn tree_arch(config_path: &Path, config: &[u8]) -> Result<Arch, Error> {
    xsplice_target::arch::from_config(config_path, &String::from_utf8_lossy(config)).map_err(
        |source| {
            Error::Input(Problem::Refused {
                option: "--config",
                source,
            })
        },
    )
}

/// A cross build's compiler is in PATH, before any build: the message
/// names the package that holds it and `CROSS_COMPILE`.
fn check_compiler(recipe: &Recipe, arch: Arch) -> Result<(), Error> {
    if arch.is_host() || recipe.cc.contains('/') {
        return Ok(());
    }
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(&recipe.cc).is_file()))
        .unwrap_or(false);
    if found {
        return Ok(());
    }
    Err(Error::Input(Problem::NoCrossCompiler {
        compiler: recipe.cc.clone(),
        arch: arch.name(),
        package: arch.cross_compiler_package(),
    }))
}

/// Every patch read and parsed: the files they touch (merged), the
/// renames they make, and their texts in order.
#[allow(clippy::type_complexity)]
fn read_patches(
    opts: &BuildOptions,
) -> Result<(Vec<Touched>, Vec<tree::Rename>, Vec<Vec<u8>>), Error> {
    let mut touched: Vec<Touched> = Vec::new();
    let mut renames = Vec::new();
    let mut texts = Vec::new();
    for path in opts.patches() {
        let patch = tree::read_input(path, Role::Text, "--patch")?;
        let bad_patch = |problem| {
            Error::Input(Problem::BadPatch {
                patch: path.to_path_buf(),
                problem,
            })
        };
        let these = tree::touched_files(&patch).map_err(bad_patch)?;
        let these = tree::resolve_touched(&opts.srcdir, these).map_err(bad_patch)?;
        renames.extend(tree::renames(&patch));
        tree::merge_touched(&mut touched, these);
        texts.push(patch);
    }
    Ok((touched, renames, texts))
}

/// The build recipe, and what `--xen-syms` says of its build.
fn check_recipe_and_target(
    opts: &BuildOptions,
    config: &[u8],
    arch: Arch,
) -> Result<(Recipe, Option<TargetFacts>), Error> {
    // The recipe, and whether tree and .config can have built --xen-syms:
    // refused here, in seconds, rather than after a full build.
    let detected = BuildRecipe::detect(&opts.srcdir)?;
    let target = opts
        .xen_syms
        .as_deref()
        .map(TargetFacts::read)
        .transpose()?;
    if let (Some(t), Some((major, minor))) = (&target, target.as_ref().and_then(|t| t.version)) {
        let found = xsplice_target::XenVersion {
            major,
            minor,
            extra: t.string("xen_extra_version").map(str::to_string),
        };
        xsplice_target::abi::target::check_supported(
            &found,
            xsplice_target::abi::target::VersionSource::XenSyms,
            &t.path,
        )
        .map_err(|u| Error::Input(Problem::UnsupportedRelease(u)))?;
    }
    let recipe = detected.resolve_for(target.as_ref(), arch)?;
    if let Some(t) = &target {
        detected.check_target(&opts.srcdir, config, &recipe, t)?;
    }
    Ok((recipe, target))
}

/// The cache directory, and every place the run writes: paths Xen can
/// build in, none inside the source tree.
fn check_written_places(opts: &BuildOptions) -> Result<PathBuf, Error> {
    let (cache, cache_set_by) = build::cache_root_and_source(opts.cache_dir.as_deref())?;
    // Trees are copied and built in the cache (the base, its working
    // copy) and in the output directory (a private copy).
    for (what, dir, set_by) in [
        (Written::CacheDirectory, &cache, cache_set_by),
        (Written::OutputDirectory, &opts.output, "-o/--output"),
    ] {
        if let Some(found) = create_diff_object::limits::unbuildable_path_char(dir) {
            return Err(Error::Input(Problem::UnbuildablePath {
                what,
                path: dir.clone(),
                found,
                set_by,
            }));
        }
    }
    let mut written = vec![
        (Written::OutputDirectory, &opts.output),
        (Written::CacheDirectory, &cache),
    ];
    if let Some(json) = &opts.json {
        written.push((Written::JsonReport, json));
    }
    for (what, dir) in written {
        if tree::is_within(dir, &opts.srcdir) {
            return Err(Error::Input(Problem::InsideSourceTree {
                what,
                path: dir.clone(),
                srcdir: opts.srcdir.clone(),
            }));
        }
    }
    Ok(cache)
}

/// No file the run writes is one of its inputs.
fn check_outputs_clobber_nothing(
    opts: &BuildOptions,
    name: &str,
    series: Option<&Path>,
) -> Result<(), Error> {
    let mut outputs = vec![
        opts.output.join(format!("{name}.livepatch")),
        opts.output.join("build.log"),
    ];
    outputs.extend(series.map(Path::to_path_buf));
    outputs.extend(opts.json.clone());
    for out in &outputs {
        if let Some(input) = clobbered_input(out, opts) {
            return Err(Error::Input(Problem::ClobbersInput {
                output: out.clone(),
                input,
            }));
        }
    }
    Ok(())
}

/// The output directory, created, proved writable and locked: the run's
/// first write, after every check.
fn open_output(opts: &BuildOptions) -> Result<OutputLock, Error> {
    fs::create_dir_all(&opts.output).map_err(|source| {
        Error::Input(Problem::OutputDirUncreatable {
            dir: opts.output.clone(),
            source,
        })
    })?;
    let probe = opts.output.join(".xsplice-build-write-test");
    fs::write(&probe, b"").map_err(|source| {
        Error::Input(Problem::OutputDirNotWritable {
            dir: opts.output.clone(),
            source,
        })
    })?;
    let _ = fs::remove_file(&probe);
    lock_output(&opts.output)
}

/// `--xen-syms`, checked before any work: a regular file within the size
/// bound, an ELF executable of the architecture the `.config` (at
/// `config`) builds, with a symbol table and a build-id. Returns its
/// build-id.
fn check_xen_syms_file(path: &Path, arch: Arch, config: &Path) -> Result<Vec<u8>, Error> {
    if !path.exists() {
        return Err(Error::Input(Problem::NoSuchFile {
            path: path.to_path_buf(),
            option: "--xen-syms",
        }));
    }
    let refused = |source| {
        Error::Input(Problem::Refused {
            option: "--xen-syms",
            source,
        })
    };
    let syms = XenSyms::load(path).map_err(refused)?;
    if syms.arch() != arch {
        return Err(Error::Mismatch(crate::error::Mismatch::NotFromTree {
            xen_syms: path.to_path_buf(),
            what: format!(
                "it is {} ({}), and {} configures the tree for {} ({})",
                syms.arch().name(),
                syms.arch().em_name(),
                config.display(),
                arch.name(),
                arch.em_name()
            ),
        }));
    }
    syms.build_id().map(<[u8]>::to_vec).ok_or_else(|| {
        Error::Input(Problem::XenSymsNoBuildId {
            path: path.to_path_buf(),
        })
    })
}

fn jobs(opts: &BuildOptions) -> usize {
    if opts.jobs > 0 {
        opts.jobs
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// The record of a run's objects under `DIR/objects/`, for `--skip build`.
const OBJECTS_RECORD: &str = "record.json";

/// Its `format`: a record of another format is not read back.
const OBJECTS_RECORD_FORMAT: &str = "xsplice-build objects v2";

#[derive(serde::Serialize, serde::Deserialize)]
struct ObjectsRecord {
    format: String,
    #[serde(flatten)]
    objects: ObjectsOutput,
}

fn save_objects(objects: &ObjectsOutput, path: &Path) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let record = ObjectsRecord {
        format: OBJECTS_RECORD_FORMAT.to_string(),
        objects: objects.clone(),
    };
    let mut json = serde_json::to_string_pretty(&record).expect("paths and names serialize");
    json.push('\n');
    build::write_file(path, json.as_bytes())
}

fn load_objects(path: &Path) -> Result<ObjectsOutput, Error> {
    let no_run = |source| {
        Error::Input(Problem::NoPreviousRun {
            record: path.to_path_buf(),
            source,
        })
    };
    let text = fs::read_to_string(path).map_err(no_run)?;
    let record: ObjectsRecord = serde_json::from_str(&text)
        .map_err(|e| no_run(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    if record.format != OBJECTS_RECORD_FORMAT {
        return Err(no_run(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "a record of format {:?}, not {OBJECTS_RECORD_FORMAT:?}",
                record.format
            ),
        )));
    }
    if !record.objects.xen_syms.is_file() {
        return Err(Error::Input(Problem::PreviousBaseGone {
            xen_syms: record.objects.xen_syms,
        }));
    }
    Ok(record.objects)
}

/// The stages in order, each a function with a typed output that it
/// keeps in `stages`: check → objects (base and patched builds, or the
/// previous run's record) → base facts → diff → target → link → verify.
/// The library result is derived from `stages` at the end.
fn run(
    opts: &BuildOptions,
    progress: &mut Progress,
    stages: &mut Stages,
    lock: &mut Option<OutputLock>,
) -> Result<BuildResult, Error> {
    stages.patches = opts.patches().into_iter().map(Path::to_path_buf).collect();
    let mut checked = check_stage(opts, progress, stages)?;
    *lock = checked.lock.take();
    let dirs = OutDirs::new(&opts.output, &checked.name);
    remove_stale(&dirs.payload, opts.json.as_ref())?;
    // Type-size probes are kept per base, beside the base builds.
    abi::probe::set_cache_dir(Some(checked.cache.join("probe")));
    let log = Log::create(&dirs.out.join("build.log"))?;
    log.watch(&checked.cache);
    let _said = SayIfCut(&log);
    let mut make = make_config(opts, &checked)?;
    stages.recipe = Some(checked.recipe.name.to_string());

    let record = objects_stage(opts, &checked, &dirs, &mut make, progress, stages, &log)?;
    let base = base_facts(&record, stages)?;
    let inputs = diff_stage(opts, &record, &base, &dirs, progress, stages, &log)?;
    let target_syms = target_stage(opts, &record, &base, progress, &log)?;
    dependencies(opts, &target_syms, stages);
    let build_id = link_stage(
        opts,
        &dirs,
        &inputs,
        base.abi,
        &checked.recipe.cross,
        progress,
        stages,
        &log,
    )?;
    let target = Target::of(target_syms.given.as_deref(), &base.syms);
    verify_stage(opts, &dirs, &base, target, progress, stages, &log)?;
    stages.linked = Some(Linked {
        payload: dirs.payload.clone(),
        build_id,
    });

    if !opts.debug {
        let _ = fs::remove_dir_all(&dirs.work);
        let _ = fs::remove_dir_all(&dirs.link);
    }
    let result = BuildResult::derive(stages, log.path(), Vec::new())
        .expect("every stage that gives the payload ran");
    // What the payload does, for the person reviewing the build.
    for line in what_it_patches(&result.objects, &dirs.diff) {
        progress.note(Some(&log), &line);
    }
    Ok(result)
}

/// Where a run writes, under the output directory.
struct OutDirs {
    out: PathBuf,
    /// The payload's final name (`DIR/NAME.livepatch`), given once verified.
    payload: PathBuf,
    /// The object pairs and their record (`DIR/objects/`).
    objects: PathBuf,
    /// The diff's outputs (`DIR/diff/`).
    diff: PathBuf,
    /// The private working copy (`DIR/work/`).
    work: PathBuf,
    /// The link's scratch directory (`DIR/link/`).
    link: PathBuf,
    /// The linked payload before verify passed.
    unverified: PathBuf,
}

impl OutDirs {
    fn new(out: &Path, name: &str) -> Self {
        let file = format!("{name}.livepatch");
        OutDirs {
            out: out.to_path_buf(),
            payload: out.join(&file),
            objects: out.join("objects"),
            diff: out.join("diff"),
            work: out.join("work"),
            link: out.join("link"),
            unverified: out.join("link").join(file),
        }
    }
}

/// The check stage: every input checked before any work.
fn check_stage(
    opts: &BuildOptions,
    progress: &mut Progress,
    stages: &mut Stages,
) -> Result<Checked, Error> {
    let checked = progress.stage("check", None, || {
        let c = check(opts)?;
        let detail = format!("{} file(s) touched, payload {}", c.touched.len(), c.name);
        Ok((c, detail))
    })?;
    stages.name = Some(checked.name.clone());
    Ok(checked)
}

/// The name holds a payload only when this run ends with one, and the
/// report only says how this run ended: a previous run's are removed
/// now, so a failure (or a kill) leaves neither looking valid.
fn remove_stale(payload: &Path, json: Option<&PathBuf>) -> Result<(), Error> {
    for stale in std::iter::once(payload).chain(json.map(PathBuf::as_path)) {
        if fs::symlink_metadata(stale).is_ok() {
            fs::remove_file(stale).map_err(|e| Error::io(stale, e))?;
        }
    }
    Ok(())
}

fn make_config(opts: &BuildOptions, checked: &Checked) -> Result<MakeConfig, Error> {
    Ok(MakeConfig {
        jobs: jobs(opts),
        xen_debug: opts.xen_debug,
        recipe: checked.recipe.clone(),
        top: None,
        helpers: checked.recipe.write_helpers(&opts.output)?,
        compiler_launcher: if opts.ccache {
            Some(build::ccache_launcher(&checked.cache)?)
        } else {
            None
        },
    })
}

/// The objects stage: base and patched builds and the changed objects
/// they give, recorded for `--skip`; or, with `--skip`, the previous
/// run's record.
fn objects_stage(
    opts: &BuildOptions,
    checked: &Checked,
    dirs: &OutDirs,
    make: &mut MakeConfig,
    progress: &mut Progress,
    stages: &mut Stages,
    log: &Log,
) -> Result<ObjectsOutput, Error> {
    let record_path = dirs.objects.join(OBJECTS_RECORD);
    let record = if opts.skip.is_some() {
        let record = load_objects(&record_path)?;
        // Its xen-syms is read again (nothing is rebuilt with --skip: a
        // changed one is an error that says so).
        if let Some(entry) = record.base_tree.parent() {
            build::check_entry(entry, &["tree/xen/xen-syms".to_string()], log)?;
        }
        record
    } else {
        let builds = |make: &mut MakeConfig, progress: &mut Progress, stages: &mut Stages| {
            base_and_patched(opts, checked, make, progress, stages, log)
        };
        match builds(make, progress, stages) {
            // Found before anything was built on it: rebuilt once.
            Err(e @ Error::CacheCorrupt { .. }) => {
                progress.warn(Some(log), &format!("{e}; rebuilding the base"));
                if let Error::CacheCorrupt { entry, .. } = &e {
                    build::discard_entry(entry, log)?;
                }
                builds(make, progress, stages)?
            }
            r => r?,
        };
        let (Some(base), Some(patched)) = (&stages.base, &stages.patched) else {
            unreachable!("base_and_patched keeps both");
        };
        let (changed, new) = pair_renamed(
            &checked.renames,
            &base.xen_dir(),
            &dirs.objects,
            patched.changed.clone(),
            patched.new.clone(),
            log,
        )?;
        let record = ObjectsOutput {
            base_key: base.key.clone(),
            xen_syms: base.xen_syms.clone(),
            base_tree: base.tree.clone(),
            changed,
            new,
        };
        save_objects(&record, &record_path)?;
        record
    };
    stages.objects = Some(record.clone());
    Ok(record)
}

/// What the rest of the run reads from the base: its build-id, its
/// xen-syms loaded once, its tree and the function-table layout.
struct BaseFacts {
    id: BuildId,
    syms: std::sync::Arc<XenSyms>,
    xen_tree: PathBuf,
    abi: Abi,
}

fn base_facts(record: &ObjectsOutput, stages: &mut Stages) -> Result<BaseFacts, Error> {
    let id = build_id_of_file(&record.xen_syms)
        .map(BuildId::from_bytes)
        .map_err(|e| Error::Mismatch(Mismatch::BaseBuildId(e)))?;
    stages.base_build_id = Some(id.clone());
    let syms = XenSyms::load(&record.xen_syms)
        .map(std::sync::Arc::new)
        .map_err(|e| Error::Diff {
            object: record.xen_syms.display().to_string(),
            source: e.into(),
        })?;
    let xen_tree = record.base_tree.join("xen");
    let abi = abi::detect(&syms, Some(&xen_tree)).map_err(|e| Error::Diff {
        object: "ABI detection".into(),
        source: e.into(),
    })?;
    stages.abi = Some(abi);
    Ok(BaseFacts {
        id,
        syms,
        xen_tree,
        abi,
    })
}

/// The diff stage: every changed object diffed, the findings kept in
/// `stages.diff`; refused, accepted and warned about as the findings say.
/// Returns the files to link (with `--skip diff`, the previous run's).
fn diff_stage(
    opts: &BuildOptions,
    record: &ObjectsOutput,
    base: &BaseFacts,
    dirs: &OutDirs,
    progress: &mut Progress,
    stages: &mut Stages,
    log: &Log,
) -> Result<Vec<PathBuf>, Error> {
    if opts.skip == Some(Skip::Diff) {
        let list = fs::read_to_string(dirs.diff.join("list")).map_err(|source| {
            Error::Input(Problem::NoPreviousDiff {
                dir: dirs.diff.clone(),
                source,
            })
        })?;
        return Ok(list
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| dirs.out.join(l))
            .collect());
    }
    let mut found = progress.stage("diff", Some(log), || {
        let found = diff_and_layout(
            opts,
            record,
            dirs,
            &base.syms,
            &base.xen_tree,
            base.abi,
            log,
        )?;
        let nfuncs: usize = found
            .objects
            .iter()
            .map(|o| o.changed_functions().len())
            .sum();
        let detail = format!(
            "{} object(s), {} function(s) patched, {} refusal(s)",
            record.changed.len(),
            nfuncs,
            found.refusals.len()
        );
        Ok((found, detail))
    })?;
    // Part of the fix only takes effect after a reboot, a hook is
    // trusted with what boot code did, or a layout change was accepted
    // by a rule: the user must know which.
    for (object, w) in &found.warnings {
        progress.warn(Some(log), &format!("{object}: {}", w.message));
    }
    let refusals = std::mem::take(&mut found.refusals);
    let found = stages.diff.insert(found);
    if !refusals.is_empty() {
        return Err(Error::NotPatchable {
            refusals,
            log: Some(log.path().into()),
        });
    }
    say_accepted(opts, &found.accepted, progress, log)?;
    collect_outputs(found, record, dirs, log)
}

/// Every accept must have matched (a stale one is an error), and what was
/// accepted is said loudly.
fn say_accepted(
    opts: &BuildOptions,
    accepted: &[(String, create_diff_object::Refusal)],
    progress: &mut Progress,
    log: &Log,
) -> Result<(), Error> {
    let unmatched = crate::accept::unmatched(&opts.accept, accepted);
    if !unmatched.is_empty() {
        return Err(Error::Input(Problem::AcceptUnmatched {
            accepts: unmatched,
        }));
    }
    for (object, r) in accepted {
        progress.warn(
            Some(log),
            &format!(
                "ACCEPTED REFUSAL, NOT CHECKED BY THIS TOOL: [{}] {object}: {r}; accepted \
                 (--accept {}:{}) because: {}",
                r.kind,
                r.kind,
                r.symbol,
                opts.accept_reason.as_deref().unwrap_or_default().trim()
            ),
        );
    }
    Ok(())
}

/// The hypervisor this payload is for, when it is not the rebuilt base.
struct TargetSyms {
    /// `--xen-syms`, or the tree's own with the base's code.
    given: Option<PathBuf>,
    /// Its build-id (the base's when there is none).
    id: BuildId,
}

/// The target stage: `--xen-syms`, else the tree's own xen-syms when it
/// is the rebuilt base's code under another build-id (a build with DWARF,
/// as Xen 4.20+ defconfigs with LIVEPATCH are, records its directory, so
/// a rebuild elsewhere gets another build-id while the hypervisor that
/// runs is the tree's), else the rebuilt base.
fn target_stage(
    opts: &BuildOptions,
    record: &ObjectsOutput,
    base: &BaseFacts,
    progress: &mut Progress,
    log: &Log,
) -> Result<TargetSyms, Error> {
    let given = opts
        .xen_syms
        .clone()
        .or_else(|| tree_xen_syms_if_same_code(&opts.srcdir, &record.xen_syms, base.id.as_bytes()));
    let id = match &given {
        None => base.id.clone(),
        Some(given) => progress.stage("xen-syms", Some(log), || {
            let id = check_xen_syms(given, &record.xen_syms, base.id.as_bytes())?;
            let how = if id == base.id.as_bytes() {
                "is the rebuilt base, bit for bit"
            } else {
                "loads the rebuilt base's bytes (build-ids differ in debug info only)"
            };
            Ok((
                BuildId::from_bytes(id),
                format!("{} {how}", given.display()),
            ))
        })?,
    };
    Ok(TargetSyms { given, id })
}

/// The dependency notes: what the user chose, else the target's build-id.
fn dependencies(opts: &BuildOptions, target: &TargetSyms, stages: &mut Stages) {
    stages.dependencies = Some(Dependencies {
        depends: opts.depends.clone().unwrap_or_else(|| target.id.clone()),
        xen_depends: opts
            .xen_depends
            .clone()
            .unwrap_or_else(|| target.id.clone()),
    });
}

/// The link stage, into the scratch directory: the payload gets its name
/// (and `stages.linked`) only once it passed verify. Returns its build-id.
/// `cross` prefixes the binutils (the recipe's).
#[allow(clippy::too_many_arguments)]
fn link_stage(
    opts: &BuildOptions,
    dirs: &OutDirs,
    inputs: &[PathBuf],
    abi: Abi,
    cross: &str,
    progress: &mut Progress,
    stages: &Stages,
    log: &Log,
) -> Result<BuildId, Error> {
    let deps = stages
        .dependencies
        .as_ref()
        .expect("the dependencies are chosen before the link");
    // The accepted refusals travel in the payload's non-loaded record.
    let accepted_record = match stages.diff.as_ref().map(|d| &d.accepted) {
        Some(accepted) if !accepted.is_empty() => xsplice_target::accepted::encode(
            &crate::accept::records(accepted, opts.accept_reason.as_deref().unwrap_or_default()),
        ),
        _ => Vec::new(),
    };
    progress.stage("link", Some(log), || {
        let job = LinkJob {
            accepted: &accepted_record,
            inputs,
            work: &dirs.link,
            payload: &dirs.unverified,
            abi,
            cross,
            depends: deps.depends.as_bytes(),
            xen_depends: deps.xen_depends.as_bytes(),
            strip: opts.strip,
        };
        let id = BuildId::from_bytes(link::link(&job, log)?);
        let detail = format!("build-id {id}");
        Ok((id, detail))
    })
}

/// The verify stage: the driver's own checks and the loader's, against
/// the target; the payload is given its name when they pass.
#[allow(clippy::too_many_arguments)]
fn verify_stage(
    opts: &BuildOptions,
    dirs: &OutDirs,
    base: &BaseFacts,
    target: Target,
    progress: &mut Progress,
    stages: &mut Stages,
    log: &Log,
) -> Result<(), Error> {
    let shipped: Vec<String> = stages
        .diff
        .as_ref()
        .map(|d| {
            let new = stages.objects.iter().flat_map(|o| o.new.iter());
            d.objects
                .iter()
                .filter(|o| o.shipped())
                .map(|o| o.object.clone())
                .chain(new.cloned())
                .collect()
        })
        .unwrap_or_default();
    let verified = progress.stage("verify", Some(log), || {
        driver_checks(&dirs.unverified, &shipped, base.abi)?;
        let report = verify_payload(
            &dirs.unverified,
            opts.replace,
            target,
            &base.xen_tree,
            opts.depends.as_ref().map(BuildId::as_bytes),
            opts.xen_depends.as_ref().map(BuildId::as_bytes),
        )?;
        fs::rename(&dirs.unverified, &dirs.payload).map_err(|e| Error::io(&dirs.payload, e))?;
        let msg = format!("passes the {}", report.checked_against());
        Ok((report, msg))
    })?;
    stages.verified = Some(verified);
    Ok(())
}

/// A source file the patch renames builds an object under the new name,
/// which the patched build finds "new" while the original's object left
/// the link: linked whole, it would define the running hypervisor's
/// symbols a second time and patch nothing. Each such new object is
/// diffed against its original instead (the original's copy is kept under
/// the new name in `objects/base/`), so the changed functions are patched
/// under the names the running hypervisor has.
fn pair_renamed(
    renames: &[tree::Rename],
    base_xen: &Path,
    objects_dir: &Path,
    mut changed: Vec<String>,
    mut new: Vec<String>,
    log: &Log,
) -> Result<(Vec<String>, Vec<String>), Error> {
    for r in renames {
        let (Some(from), Some(to)) = (r.from_object(), r.to_object()) else {
            continue;
        };
        let Some(at) = new.iter().position(|n| *n == to) else {
            continue;
        };
        let original = base_xen.join(&from);
        if !original.is_file() || changed.contains(&to) {
            continue;
        }
        copy_into(&original, &objects_dir.join("base").join(&to))?;
        new.remove(at);
        changed.push(to.clone());
        log.line(&format!(
            "# {to}: built from a renamed file; diffed against {from}, its original"
        ));
    }
    Ok((changed, new))
}

/// One line per patched function (a static one is named `FILE#sym`, as
/// the running hypervisor names it), per new function, and per function
/// of a new object (read from its linked copy in `diff_dir`).
fn what_it_patches(objects: &[ObjectDiff], diff_dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for o in objects {
        for f in o.changed_functions() {
            lines.push(format!("patched function: {} ({})", f.name, o.object));
        }
        for f in o.new_functions() {
            lines.push(format!("new function: {f} ({})", o.object));
        }
        if o.is_new() {
            for f in defined_functions(&diff_dir.join(&o.object)) {
                lines.push(format!("new function: {f} ({}, a new object)", o.object));
            }
        }
    }
    lines
}

/// The functions an object defines (none when it cannot be read: the
/// lines are a summary, the payload was verified already).
fn defined_functions(path: &Path) -> Vec<String> {
    use object::{Object, ObjectSymbol};
    let Ok(data) = fs::read(path) else {
        return Vec::new();
    };
    let Ok(file) = object::File::parse(&*data) else {
        return Vec::new();
    };
    file.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_string))
        .collect()
}

/// The base stage (its cached files checked against their digests) and
/// the patched stage on it.
fn base_and_patched(
    opts: &BuildOptions,
    checked: &Checked,
    make: &mut MakeConfig,
    progress: &mut Progress,
    stages: &mut Stages,
    log: &Log,
) -> Result<(), Error> {
    let work = opts.output.join("work");
    let objects_dir = opts.output.join("objects");
    let base = stages
        .base
        .insert(base_stage(opts, checked, make, progress, log)?);
    // A base that is not the target would give a payload for another
    // binary: refused before the patched build.
    if let Some(t) = &checked.target {
        check_reproduced(t, &base.xen_syms, &checked.recipe)?;
    }
    make.top = base.build_top.clone();
    let patched = progress.stage("patched", Some(log), || {
        let p = patched_stage(opts, checked, base, &work, &objects_dir, make, log)?;
        let how = if p.full_make {
            format!(
                "incremental make ({})",
                p.full_make_reason.clone().unwrap_or_default()
            )
        } else {
            format!("{} object(s) recompiled", p.recompiled.len())
        };
        let detail = format!("{how}; {} changed, {} new", p.changed.len(), p.new.len());
        Ok((p, detail))
    })?;
    stages.patched = Some(patched);
    Ok(())
}

/// The base stage: the unpatched hypervisor, from the cache or built (or
/// adopted from the user's build) and cached.
fn base_stage(
    opts: &BuildOptions,
    checked: &Checked,
    make: &MakeConfig,
    progress: &mut Progress,
    log: &Log,
) -> Result<BaseBuild, Error> {
    let show = progress.show();
    progress.stage("base", Some(log), || {
        let started = std::time::Instant::now();
        let key = build::base_key(&opts.srcdir, &checked.config, make, &checked.cache)?;
        log.line(&format!(
            "# cache key {key}: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        ));
        // The one long step of a first run: say so, then show how far it is.
        let _watch = (!build::has_base(&checked.cache, &key)).then(|| {
            let total =
                tree::estimate_objects(&opts.srcdir, &checked.config, checked.arch.arch_dir());
            show.say(log, &first_build_notice(total, make.jobs));
            show.watch_compiles(log, "base", total)
        });
        let base = build::ensure_base(
            &checked.cache,
            &key,
            &opts.srcdir,
            &checked.config,
            make,
            opts.xen_syms.as_deref(),
            log,
        )?;
        if base.cached {
            // What every run reads from it: xen-syms and the records.
            build::check_cached(&base, &build::base_files_read(), log)?;
        }
        let entry = base.tree.parent().unwrap_or(&base.tree).display();
        let detail = if base.adopted {
            format!("adopted the tree's build and cached it ({entry})")
        } else if base.cached {
            format!("cached ({entry})")
        } else {
            format!("built and cached ({entry})")
        };
        Ok((base, detail))
    })
}

/// Compile seconds per object of a Xen base build, on one CPU (Xen 4.17
/// defconfig: about 450 objects in 136 s with 2 CPUs), for the notice.
const SECONDS_PER_OBJECT: f64 = 0.6;

/// What a first run says before the base build: it happens once per
/// tree, and about how long it takes.
fn first_build_notice(objects: u64, jobs: usize) -> String {
    let secs = objects as f64 * SECONDS_PER_OBJECT / jobs.max(1) as f64;
    let about = if secs < 60.0 {
        "under a minute".to_string()
    } else {
        format!("about {} min", (secs / 60.0).round().max(1.0))
    };
    format!(
        "base: no cached build of this tree yet: building it once (about {objects} objects, \
         {about} with {jobs} job(s); less when the tree's own build can be reused); later \
         patches against this tree reuse it"
    )
}

/// The diff on every changed object, then the type-layout check; every
/// refusal of both is in the findings. When the diff itself fails and the
/// layout check refuses the patch, the refusal is the answer.
fn diff_and_layout(
    opts: &BuildOptions,
    record: &ObjectsOutput,
    dirs: &OutDirs,
    syms: &XenSyms,
    xen_tree: &Path,
    abi: Abi,
    log: &Log,
) -> Result<DiffOutput, Error> {
    let (objects_dir, diff_dir) = (&dirs.objects, &dirs.diff);
    let diffed = (|| {
        if diff_dir.exists() {
            fs::remove_dir_all(diff_dir).map_err(|e| Error::io(diff_dir, e))?;
        }
        let work: Vec<DiffJob> = record
            .changed
            .iter()
            .map(|obj| DiffJob {
                object: obj.clone(),
                original: objects_dir.join("base").join(obj),
                patched: objects_dir.join("patched").join(obj),
                output: diff::output_path(diff_dir, obj),
            })
            .collect();
        let dopts = create_diff_object::Options {
            abi: AbiChoice::Fixed(abi),
            resolve: opts.prelink,
            debug: opts.debug,
            xen_tree: Some(xen_tree.to_path_buf()),
            accept: opts.accept.clone(),
        };
        diff::diff_all(&work, syms, &dopts, jobs(opts), log)
    })();
    let mut found = match diffed {
        Ok(found) => found,
        Err(e) => {
            // A header type whose layout changed is refused whatever
            // the payload would hold: that is the answer, not the
            // diff's failure on some object.
            let refusals =
                crate::layout::check(&record.changed, objects_dir, None, syms, log)?.refusals;
            let (_, refusals) = crate::accept::split(refusals, &opts.accept);
            if refusals.is_empty() {
                return Err(e);
            }
            log.line(&format!(
                "# the diff failed ({e}), but the layout check refuses the patch anyway"
            ));
            return Err(Error::NotPatchable {
                refusals,
                log: Some(log.path().into()),
            });
        }
    };
    // Types whose layout changed under code the payload does not replace.
    let layout = crate::layout::check(
        &record.changed,
        objects_dir,
        Some(&found.objects),
        syms,
        log,
    )?;
    found.refusals.extend(layout.refusals);
    found
        .warnings
        .extend(layout.notes.iter().map(|(o, n)| (o.clone(), n.warning())));
    // Refusals decided over every object (boot-time set-up, layouts) that
    // the author accepted; the differ set aside its own already.
    let (accepted, refused) =
        crate::accept::split(std::mem::take(&mut found.refusals), &opts.accept);
    found.refusals = refused;
    // A boot-time refusal the differ accepted in one object comes back
    // from the decision over all objects: listed once.
    for a in accepted {
        if !found.accepted.contains(&a) {
            found.accepted.push(a);
        }
    }
    Ok(found)
}

/// The files to link: the diff's outputs plus each new object whole (its
/// locals named as Xen names them), listed in `DIR/diff/list` for
/// `--skip diff`. No output at all is "no change" (the warnings were
/// printed after the diff).
fn collect_outputs(
    found: &DiffOutput,
    record: &ObjectsOutput,
    dirs: &OutDirs,
    log: &Log,
) -> Result<Vec<PathBuf>, Error> {
    let mut outputs = found.outputs.clone();
    for n in &record.new {
        // Linked whole: its locals must not take a name Xen already has.
        let renamed = dirs.diff.join(n);
        if let Some(parent) = renamed.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let count =
            crate::rename::name_locals_like_xen(&dirs.objects.join("patched").join(n), &renamed)?;
        log.line(&format!(
            "# new object {n}: {count} local symbol(s) named FILE#sym"
        ));
        outputs.push(renamed);
    }
    if outputs.is_empty() {
        return Err(Error::NoChange {
            init_only: found.init_only.clone(),
        });
    }
    let list: String = outputs
        .iter()
        .filter_map(|p| p.strip_prefix(&dirs.out).ok())
        .map(|p| format!("{}\n", p.display()))
        .collect();
    build::write_file(&dirs.diff.join("list"), list.as_bytes())?;
    Ok(outputs)
}

fn patched_stage(
    opts: &BuildOptions,
    checked: &Checked,
    base: &BaseBuild,
    work: &Path,
    objects_dir: &Path,
    make: &MakeConfig,
    log: &Log,
) -> Result<PatchedBuild, Error> {
    if objects_dir.exists() {
        fs::remove_dir_all(objects_dir).map_err(|e| Error::io(objects_dir, e))?;
    }
    let tree = WorkTree::acquire(base, work, log)?;
    let mut writes = crate::worktree::Writes::default();
    let result = build::patched_build(
        base,
        &tree.path,
        &checked.apply,
        &checked.touched,
        &opts.srcdir,
        make,
        &mut writes,
        log,
    )
    .and_then(|patched| {
        // Keep the pairs: the diff reads them, and --skip build diffs them again.
        let xen = tree.path.join("xen");
        for obj in &patched.changed {
            copy_into(
                &base.xen_dir().join(obj),
                &objects_dir.join("base").join(obj),
            )?;
            copy_into(&xen.join(obj), &objects_dir.join("patched").join(obj))?;
        }
        for obj in &patched.new {
            copy_into(&xen.join(obj), &objects_dir.join("patched").join(obj))?;
        }
        // The changed units again with -g, for the layout check: the
        // patched side only while the working copy is still patched.
        let started = std::time::Instant::now();
        let base_xen = base.xen_dir();
        let entry = base.tree.parent().unwrap_or(&base.tree);
        let kept = entry.join(crate::layout::DEBUG_CACHE);
        let accepted_types: Vec<String> = opts
            .accept
            .iter()
            .filter(|a| a.kind == create_diff_object::RefusalKind::LayoutChanged)
            .map(|a| a.subject.clone())
            .collect();
        let n = crate::layout::compile_debug(
            &patched.changed,
            &[
                crate::layout::Side {
                    xen_dir: &xen,
                    name: "patched",
                    cache: None,
                    objects: Some(&objects_dir.join("patched")),
                },
                crate::layout::Side {
                    xen_dir: &base_xen,
                    name: "base",
                    cache: Some(&kept),
                    objects: Some(&objects_dir.join("base")),
                },
            ],
            objects_dir,
            make.jobs,
            &accepted_types,
            log,
        )?;
        log.line(&format!(
            "# layout check: {n} compile(s) of changed units with -g in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(patched)
    });
    // Restore the shared copy whatever happened; keep a private one with --debug.
    let started = std::time::Instant::now();
    let released = tree.release(opts.debug, &writes, log);
    log.line(&format!(
        "# working copy released in {:.3} s",
        started.elapsed().as_secs_f64()
    ));
    let patched = result?;
    released?;
    Ok(patched)
}

fn copy_into(src: &Path, dst: &Path) -> Result<(), Error> {
    if let Some(parent) = dst.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    fs::copy(src, dst)
        .map(|_| ())
        .map_err(|e| Error::io(dst, e))
}

/// `--xen-syms`: the rebuilt base must reproduce it bit for bit (same
/// build-id), or load exactly its bytes (every allocated section the same:
/// two builds of one tree in different directories differ only in the
/// DWARF, which records the directory, and so in the build-id). Nothing
/// less proves that the payload's code was compiled the way the running
/// binary's was. Returns its build-id.
fn check_xen_syms(given: &Path, base_path: &Path, base_id: &[u8]) -> Result<Vec<u8>, Error> {
    let id = build_id_of_file(given)
        .map_err(|source| Error::Input(Problem::XenSymsBuildId { source }))?;
    if id == base_id || same_loaded_image(given, base_path) {
        return Ok(id);
    }
    Err(Error::Mismatch(Mismatch::NotReproduced {
        xen_syms: given.to_path_buf(),
        build_id: BuildId::from_bytes(id),
        rebuilt: BuildId::from_bytes(base_id.to_vec()),
        context: None,
    }))
}

/// Right after the base stage: the base must be the target.
fn check_reproduced(target: &TargetFacts, base_syms: &Path, recipe: &Recipe) -> Result<(), Error> {
    let base_id =
        build_id_of_file(base_syms).map_err(|e| Error::Mismatch(Mismatch::BaseBuildId(e)))?;
    check_xen_syms(&target.path, base_syms, &base_id)
        .map(|_| ())
        .map_err(|e| match e {
            Error::Mismatch(Mismatch::NotReproduced {
                xen_syms,
                build_id,
                rebuilt,
                context: None,
            }) => Error::Mismatch(Mismatch::NotReproduced {
                xen_syms,
                build_id,
                rebuilt,
                context: Some(MismatchContext {
                    recipe: recipe.name.to_string(),
                    first_difference: crate::target::first_difference(base_syms, &target.path),
                }),
            }),
            other => other,
        })
}

/// The hypervisor a payload is verified against.
enum Target<'a> {
    Load(&'a Path),
    Loaded(&'a std::sync::Arc<XenSyms>),
}

impl<'a> Target<'a> {
    /// The base's xen-syms is loaded already; another target is read.
    fn of(given: Option<&'a Path>, base: &'a std::sync::Arc<XenSyms>) -> Self {
        match given {
            Some(given) => Target::Load(given),
            None => Target::Loaded(base),
        }
    }
}

/// `SRCDIR/xen/xen-syms` when it has another build-id than the rebuilt
/// base but loads exactly the same bytes.
fn tree_xen_syms_if_same_code(srcdir: &Path, base: &Path, base_id: &[u8]) -> Option<PathBuf> {
    let own = srcdir.join("xen/xen-syms");
    let id = build_id_of_file(&own).ok()?;
    (id != base_id && same_loaded_image(&own, base)).then_some(own)
}

/// Whether two hypervisors load the same bytes: the same allocated
/// sections (name, address, size, contents), the build-id note aside.
/// Two builds of one tree in different directories differ only in their
/// DWARF (which records the directory) and so in their build-id.
fn same_loaded_image(a: &Path, b: &Path) -> bool {
    use object::{Object, ObjectSection, SectionFlags};
    type Loaded = Vec<(String, u64, u64, Vec<u8>)>;
    fn loaded(path: &Path) -> Option<Loaded> {
        let data = fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let mut out = Vec::new();
        for s in file.sections() {
            let SectionFlags::Elf { sh_flags } = s.flags() else {
                return None;
            };
            if sh_flags & u64::from(object::elf::SHF_ALLOC) == 0
                || s.kind() == object::SectionKind::Note
            {
                continue;
            }
            let bytes = if s.kind() == object::SectionKind::UninitializedData {
                Vec::new()
            } else {
                s.data().ok()?.to_vec()
            };
            out.push((s.name().ok()?.to_string(), s.address(), s.size(), bytes));
        }
        Some(out)
    }
    match (loaded(a), loaded(b)) {
        (Some(x), Some(y)) => !x.is_empty() && x == y,
        _ => false,
    }
}

/// The loader's checks on the finished payload: the same `Verifier`
/// check as `xsplice-build verify`, against the hypervisor it targets; the
/// dependency notes must name what the user chose (`--depends`,
/// `--xen-depends`) or the defaults.
fn verify_payload(
    payload: &Path,
    replace: bool,
    target: Target,
    xen_tree: &Path,
    depends: Option<&[u8]>,
    xen_depends: Option<&[u8]>,
) -> Result<crate::verify::VerifyReport, Error> {
    // The base tree: a distro's xen-syms has no DWARF for the entry sizes.
    let mut verifier = match target {
        Target::Load(path) => crate::verify::Verifier::with_tree(path, &[], Some(xen_tree)),
        Target::Loaded(syms) => {
            crate::verify::Verifier::with_xen_syms(syms.clone(), &[], Some(xen_tree))
        }
    }
    .map_err(|e| Error::Verify(VerifyFailure::Unreadable(e)))?;
    if let Some(id) = depends {
        verifier = verifier.expect_depends(id.to_vec(), "--depends");
    }
    if let Some(id) = xen_depends {
        verifier = verifier.expect_xen_depends(id.to_vec(), "--xen-depends");
    }
    let report = verifier
        .for_replace(replace)
        .check_file(payload)
        .map_err(|e| Error::Verify(VerifyFailure::Unreadable(e)))?;
    // A vetoing hook is the driver's own refusal of `--replace`, reported
    // as such whatever else fails.
    if let Some(failure) = report.failed(Check::ReplaceHooks).next() {
        return Err(Error::Verify(VerifyFailure::ReplaceVeto {
            payload: payload.to_path_buf(),
            failure: failure.clone(),
        }));
    }
    if report.passed() {
        Ok(report)
    } else {
        Err(Error::Verify(VerifyFailure::Failed {
            payload: payload.to_path_buf(),
            report: Box::new(report),
        }))
    }
}

/// What the driver decides beyond the loader's rules (those, the REPLACE
/// action's included, are all in `verify`): a payload with nothing to
/// patch fails, naming what the diff found to ship (`shipped`); it is never
/// "no change", as the diff did find a change. An unreadable payload is
/// left to `verify`.
fn driver_checks(payload: &Path, shipped: &[String], abi: Abi) -> Result<(), Error> {
    use object::{Object, ObjectSection};
    let data = crate::tree::read_input(payload, Role::Payload, "payload").map_err(|e| match e {
        Error::Input(p) => Error::Verify(VerifyFailure::Input(p)),
        other => other,
    })?;
    let Ok(file) = object::File::parse(&*data) else {
        return Ok(());
    };
    let count = |name: &str| {
        file.sections()
            .filter(|s| s.name() == Ok(name))
            .collect::<Vec<_>>()
    };
    let layout = abi.entry_format();
    let funcs = count(layout.section);
    let hooks: Vec<_> = abi
        .hook_sections()
        .iter()
        .filter(|h| !count(h).is_empty())
        .collect();
    if funcs.is_empty() && hooks.is_empty() {
        return Err(Error::Verify(VerifyFailure::NothingToPatch {
            payload: payload.to_path_buf(),
            objects: shipped.to_vec(),
        }));
    }
    Ok(())
}
