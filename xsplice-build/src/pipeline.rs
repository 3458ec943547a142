//! The whole build, stage by stage: check → base → patched → diff → link
//! → verify. Output directory layout:
//!   DIR/NAME.livepatch   the payload
//!   DIR/build.log        every command's output and the diff findings
//!   DIR/objects/         base and patched copies of the changed objects (for --skip build)
//!   DIR/diff/            create-diff-object outputs (for --skip diff)
//!   DIR/work/            the private tree copy (removed unless --debug)

use std::fs;
use std::path::{Path, PathBuf};

use create_diff_object::notes::{build_id_of_file, from_hex, to_hex};
use create_diff_object::{abi, Abi, AbiChoice, XenSyms};

use crate::build::{self, BaseBuild, MakeConfig};
use crate::diff::{self, DiffJob};
use crate::link::{self, LinkJob};
use crate::progress::{Log, Progress};
use crate::report::Report;
use crate::tree::{self, Touched};
use crate::worktree::WorkTree;
use crate::{BuildOptions, BuildResult, Error, ObjectDiff, Skip};

/// Build one payload: check inputs, base build (cached), patched build,
/// diff, link, verify. Never modifies `opts.srcdir`.
pub fn build_payload(opts: &BuildOptions) -> Result<BuildResult, Error> {
    let mut progress = Progress::new(opts.quiet);
    let mut report = Report {
        replace: opts.replace,
        ..Report::default()
    };
    let result = run(opts, &mut progress, &mut report);
    report.timings = progress.timings.clone();
    // The report is written on failure too, but never into the source tree.
    if let Some(json) = opts
        .json
        .as_ref()
        .filter(|j| !tree::is_within(j, &opts.srcdir))
    {
        let written = report.write(json, result.as_ref().map(|_| ()));
        if let (Ok(_), Err(e)) = (&result, written) {
            return Err(e);
        }
    }
    result.map(|mut r| {
        r.timings = progress.timings;
        r
    })
}

/// Inputs after the checks.
struct Checked {
    touched: Vec<Touched>,
    config: Vec<u8>,
    name: String,
    depends: Option<Vec<u8>>,
    xen_depends: Option<Vec<u8>>,
    cache: PathBuf,
}

fn check(opts: &BuildOptions) -> Result<Checked, Error> {
    tree::check_tree(&opts.srcdir)?;
    let patch = fs::read(&opts.patch).map_err(|e| {
        Error::Input(format!(
            "{}: cannot read the patch: {e}",
            opts.patch.display()
        ))
    })?;
    let touched = tree::touched_files(&patch)
        .map_err(|e| Error::Input(format!("{}: {e}", opts.patch.display())))?;
    let config_path = tree::config_path(&opts.srcdir, opts.config.as_deref())?;
    let config = tree::check_config(&config_path)?;
    let name = tree::payload_name(&opts.patch, opts.name.as_deref())?;
    let hex = |flag: &str, v: &Option<String>| -> Result<Option<Vec<u8>>, Error> {
        match v {
            None => Ok(None),
            Some(s) => match from_hex(s) {
                Ok(id) if !id.is_empty() => Ok(Some(id)),
                Ok(_) => Err(Error::Input(format!("{flag}: empty build-id"))),
                Err(e) => Err(Error::Input(format!("{flag}: {e}"))),
            },
        }
    };
    let depends = hex("--depends", &opts.depends)?;
    let xen_depends = hex("--xen-depends", &opts.xen_depends)?;
    if opts.replace && depends.is_some() {
        return Err(Error::Input(
            "--replace and --depends conflict: a replace payload depends on the hypervisor itself"
                .into(),
        ));
    }
    if let Some(x) = &opts.xen_syms {
        if !x.is_file() {
            return Err(Error::Input(format!(
                "{}: no such file (--xen-syms)",
                x.display()
            )));
        }
    }
    let cache = build::cache_root(opts.cache_dir.as_deref())?;
    let mut written = vec![
        ("output directory", &opts.output),
        ("cache directory", &cache),
    ];
    if let Some(json) = &opts.json {
        written.push(("JSON report", json));
    }
    for (what, dir) in written {
        if tree::is_within(dir, &opts.srcdir) {
            return Err(Error::Input(format!(
                "the {what} {} is inside the source tree {}; choose one outside it (the tree is never written to)",
                dir.display(),
                opts.srcdir.display()
            )));
        }
    }
    if opts.skip.is_none() {
        tree::patch_dry_run(&opts.srcdir, &opts.patch)?;
    }
    // Last, as it is the first write: the output directory.
    fs::create_dir_all(&opts.output).map_err(|e| {
        Error::Input(format!(
            "{}: cannot create the output directory: {e}",
            opts.output.display()
        ))
    })?;
    let probe = opts.output.join(".xsplice-build-write-test");
    fs::write(&probe, b"").map_err(|e| {
        Error::Input(format!(
            "{}: output directory is not writable: {e}",
            opts.output.display()
        ))
    })?;
    let _ = fs::remove_file(&probe);
    Ok(Checked {
        touched,
        config,
        name,
        depends,
        xen_depends,
        cache,
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

/// The record of a run's objects, for `--skip build`.
struct ObjectsRecord {
    base_key: String,
    xen_syms: PathBuf,
    base_tree: PathBuf,
    changed: Vec<String>,
    new: Vec<String>,
}

impl ObjectsRecord {
    fn save(&self, path: &Path) -> Result<(), Error> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut s = format!(
            "base-key {}\nxen-syms {}\nbase-tree {}\n",
            self.base_key,
            self.xen_syms.display(),
            self.base_tree.display()
        );
        for c in &self.changed {
            s.push_str(&format!("changed {c}\n"));
        }
        for n in &self.new {
            s.push_str(&format!("new {n}\n"));
        }
        build::write_file(path, s.as_bytes())
    }

    fn load(path: &Path) -> Result<ObjectsRecord, Error> {
        let text = fs::read_to_string(path).map_err(|e| {
            Error::Input(format!(
                "--skip: no previous run in this output directory ({}: {e})",
                path.display()
            ))
        })?;
        let mut r = ObjectsRecord {
            base_key: String::new(),
            xen_syms: PathBuf::new(),
            base_tree: PathBuf::new(),
            changed: vec![],
            new: vec![],
        };
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("base-key", v)) => r.base_key = v.into(),
                Some(("xen-syms", v)) => r.xen_syms = v.into(),
                Some(("base-tree", v)) => r.base_tree = v.into(),
                Some(("changed", v)) => r.changed.push(v.into()),
                Some(("new", v)) => r.new.push(v.into()),
                _ => {}
            }
        }
        if !r.xen_syms.is_file() {
            return Err(Error::Input(format!(
                "--skip: the previous run's base build ({}) is no longer in the cache; run without --skip",
                r.xen_syms.display()
            )));
        }
        Ok(r)
    }
}

fn run(
    opts: &BuildOptions,
    progress: &mut Progress,
    report: &mut Report,
) -> Result<BuildResult, Error> {
    let checked = progress.stage("check", None, || {
        let c = check(opts)?;
        let detail = format!("{} file(s) touched, payload {}", c.touched.len(), c.name);
        Ok((c, detail))
    })?;
    report.name = Some(checked.name.clone());
    let out = &opts.output;
    let log = Log::create(&out.join("build.log"))?;
    let make = MakeConfig {
        jobs: jobs(opts),
        xen_debug: opts.xen_debug,
    };
    let objects_dir = out.join("objects");
    let diff_dir = out.join("diff");
    let work = out.join("work");

    // Base and patched builds (or the previous run's record of them).
    let record = if opts.skip.is_some() {
        ObjectsRecord::load(&objects_dir.join("list"))?
    } else {
        let base = progress.stage("base", Some(&log), || {
            let key = build::base_key(&opts.srcdir, &checked.config, &make)?;
            let base = build::ensure_base(
                &checked.cache,
                &key,
                &opts.srcdir,
                &checked.config,
                &make,
                &log,
            )?;
            let detail = if base.cached {
                format!(
                    "cached ({})",
                    base.tree.parent().unwrap_or(&base.tree).display()
                )
            } else {
                format!(
                    "built and cached ({})",
                    base.tree.parent().unwrap_or(&base.tree).display()
                )
            };
            Ok((base, detail))
        })?;
        report.base_cached = Some(base.cached);
        report.base_key = Some(base.key.clone());
        let patched = progress.stage("patched", Some(&log), || {
            let p = patched_stage(opts, &checked, &base, &work, &objects_dir, &make, &log)?;
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
        report.full_make = Some(patched.full_make);
        report.full_make_reason = patched.full_make_reason.clone();
        report.recompiled = patched.recompiled.clone();
        let record = ObjectsRecord {
            base_key: base.key.clone(),
            xen_syms: base.xen_syms.clone(),
            base_tree: base.tree.clone(),
            changed: patched.changed,
            new: patched.new,
        };
        record.save(&objects_dir.join("list"))?;
        record
    };
    report.changed_objects = record.changed.clone();
    report.new_objects = record.new.clone();
    report.xen_syms = Some(record.xen_syms.display().to_string());
    report.base_key = Some(record.base_key.clone());
    let base_id = build_id_of_file(&record.xen_syms)
        .map_err(|e| Error::Mismatch(format!("base build: {e}")))?;
    report.base_build_id = Some(to_hex(&base_id));

    // Diff.
    let syms = XenSyms::load(&record.xen_syms).map_err(|e| Error::Diff {
        object: record.xen_syms.display().to_string(),
        source: e,
    })?;
    let xen_tree = record.base_tree.join("xen");
    let abi = abi::detect(&syms, Some(&xen_tree)).map_err(|e| Error::Diff {
        object: "ABI detection".into(),
        source: e,
    })?;
    report.abi = Some(abi.name().to_string());
    let (objects, outputs) = if opts.skip == Some(Skip::Diff) {
        let list = fs::read_to_string(diff_dir.join("list")).map_err(|e| {
            Error::Input(format!(
                "--skip diff: no previous diff in {} ({e})",
                diff_dir.display()
            ))
        })?;
        let outputs: Vec<PathBuf> = list
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| out.join(l))
            .collect();
        (Vec::new(), outputs)
    } else {
        let found = progress.stage("diff", Some(&log), || {
            let diffed = diff_stage(
                opts,
                &record,
                &objects_dir,
                &diff_dir,
                &syms,
                &xen_tree,
                abi,
                &log,
            );
            let mut found = match diffed {
                Ok(found) => found,
                Err(e) => {
                    // A header type whose layout changed is refused whatever
                    // the payload would hold: that is the answer, not the
                    // diff's failure on some object.
                    let refusals =
                        crate::layout::check(&record.changed, &objects_dir, &[], true, &log)?;
                    if refusals.is_empty() {
                        return Err(e);
                    }
                    log.line(&format!(
                        "# the diff failed ({e}), but the layout check refuses the patch anyway"
                    ));
                    report.refusals = refusals.clone();
                    return Err(Error::NotPatchable {
                        refusals,
                        log: Some(log.path().into()),
                    });
                }
            };
            // Types whose layout changed under code the payload does not replace.
            found.refusals.extend(crate::layout::check(
                &record.changed,
                &objects_dir,
                &found.objects,
                false,
                &log,
            )?);
            let nfuncs: usize = found
                .objects
                .iter()
                .map(|o| o.changed_functions.len())
                .sum();
            let detail = format!(
                "{} object(s), {} function(s) patched, {} refusal(s)",
                record.changed.len(),
                nfuncs,
                found.refusals.len()
            );
            Ok((found, detail))
        })?;
        report.objects = found.objects.clone();
        report.init_only = found.init_only.clone();
        report.refusals = found.refusals.clone();
        if !found.refusals.is_empty() {
            return Err(Error::NotPatchable {
                refusals: found.refusals,
                log: Some(log.path().into()),
            });
        }
        let mut objects = found.objects;
        let mut outputs = found.outputs;
        for n in &record.new {
            objects.push(ObjectDiff {
                object: n.clone(),
                new_object: true,
                ..ObjectDiff::default()
            });
            // Linked whole: its locals must not take a name Xen already has.
            let renamed = diff_dir.join(n);
            if let Some(parent) = renamed.parent() {
                fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            let count = crate::rename::name_locals_like_xen(
                &objects_dir.join("patched").join(n),
                &renamed,
            )?;
            log.line(&format!(
                "# new object {n}: {count} local symbol(s) named FILE#sym"
            ));
            outputs.push(renamed);
        }
        if outputs.is_empty() {
            return Err(Error::NoChange {
                init_only: found.init_only,
            });
        }
        let list: String = outputs
            .iter()
            .filter_map(|p| p.strip_prefix(out).ok())
            .map(|p| format!("{}\n", p.display()))
            .collect();
        build::write_file(&diff_dir.join("list"), list.as_bytes())?;
        (objects, outputs)
    };
    let functions: Vec<_> = objects
        .iter()
        .flat_map(|o| o.changed_functions.iter().cloned())
        .collect();

    // The hypervisor this payload is for.
    let xen_id = match &opts.xen_syms {
        None => base_id.clone(),
        Some(given) => progress.stage("xen-syms", Some(&log), || {
            let id = check_xen_syms(given, &base_id, &syms, &functions)?;
            Ok((id, format!("{} matches the rebuilt base", given.display())))
        })?,
    };
    let depends = checked.depends.clone().unwrap_or_else(|| xen_id.clone());
    let xen_depends = checked
        .xen_depends
        .clone()
        .unwrap_or_else(|| xen_id.clone());
    report.depends = Some(to_hex(&depends));
    report.xen_depends = Some(to_hex(&xen_depends));

    // Link.
    let payload = out.join(format!("{}.livepatch", checked.name));
    let build_id = progress.stage("link", Some(&log), || {
        let job = LinkJob {
            inputs: &outputs,
            work: &out.join("link"),
            payload: &payload,
            abi,
            depends: &depends,
            xen_depends: &xen_depends,
            strip: opts.strip,
        };
        let id = link::link(&job, &log)?;
        Ok((
            id.clone(),
            format!("{} (build-id {})", payload.display(), to_hex(&id)),
        ))
    })?;
    report.payload = Some(payload.display().to_string());
    report.payload_build_id = Some(to_hex(&build_id));

    // Verify.
    progress.stage("verify", Some(&log), || {
        let target = opts.xen_syms.as_deref().unwrap_or(&record.xen_syms);
        verify_payload(
            &payload,
            abi,
            opts.replace,
            target,
            checked.depends.is_some(),
            checked.xen_depends.is_some(),
        )?;
        Ok(((), "passes the loader's checks".to_string()))
    })?;

    if !opts.debug {
        let _ = fs::remove_dir_all(&work);
        let _ = fs::remove_dir_all(out.join("link"));
    }
    Ok(BuildResult {
        payload,
        name: checked.name,
        build_id: to_hex(&build_id),
        base_build_id: to_hex(&base_id),
        xen_syms: record.xen_syms.clone(),
        depends: to_hex(&depends),
        xen_depends: to_hex(&xen_depends),
        functions,
        objects,
        base_cached: report.base_cached.unwrap_or(false),
        recompiled: report.recompiled.clone(),
        timings: Vec::new(),
        log: log.path().to_path_buf(),
    })
}

fn patched_stage(
    opts: &BuildOptions,
    checked: &Checked,
    base: &BaseBuild,
    work: &Path,
    objects_dir: &Path,
    make: &MakeConfig,
    log: &Log,
) -> Result<build::PatchedBuild, Error> {
    if objects_dir.exists() {
        fs::remove_dir_all(objects_dir).map_err(|e| Error::io(objects_dir, e))?;
    }
    let tree = WorkTree::acquire(base, work, log)?;
    let result = build::patched_build(
        base,
        &tree.path,
        &opts.patch,
        &checked.touched,
        &opts.srcdir,
        make,
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
        let n = crate::layout::compile_debug(
            &patched.changed,
            &[
                crate::layout::Side {
                    xen_dir: &xen,
                    name: "patched",
                    cache: None,
                },
                crate::layout::Side {
                    xen_dir: &base_xen,
                    name: "base",
                    cache: Some(&kept),
                },
            ],
            objects_dir,
            make.jobs,
            log,
        )?;
        log.line(&format!(
            "# layout check: {n} compile(s) of changed units with -g in {:.2} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(patched)
    });
    // Restore the shared copy whatever happened; keep a private one with --debug.
    let released = tree.release(opts.debug, log);
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

#[allow(clippy::too_many_arguments)]
fn diff_stage(
    opts: &BuildOptions,
    record: &ObjectsRecord,
    objects_dir: &Path,
    diff_dir: &Path,
    syms: &XenSyms,
    xen_tree: &Path,
    abi: Abi,
    log: &Log,
) -> Result<diff::DiffFindings, Error> {
    if diff_dir.exists() {
        fs::remove_dir_all(diff_dir).map_err(|e| Error::io(diff_dir, e))?;
    }
    let jobs: Vec<DiffJob> = record
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
    };
    diff::diff_all(&jobs, syms, &dopts, jobs_for(opts), log)
}

fn jobs_for(opts: &BuildOptions) -> usize {
    jobs(opts)
}

/// `--xen-syms`: the rebuilt base must reproduce it (same build-id, or at
/// least the same address and size for every function patched). Returns its build-id.
fn check_xen_syms(
    given: &Path,
    base_id: &[u8],
    base: &XenSyms,
    functions: &[create_diff_object::PatchedFunction],
) -> Result<Vec<u8>, Error> {
    let id = build_id_of_file(given).map_err(|e| Error::Input(format!("--xen-syms: {e}")))?;
    if id == base_id {
        return Ok(id);
    }
    let other = XenSyms::load(given).map_err(|e| Error::Input(format!("--xen-syms: {e}")))?;
    let mut diffs = Vec::new();
    for f in functions {
        let a = base.resolve_runtime_name(&f.name).map(|s| (s.addr, s.size));
        let b = other
            .resolve_runtime_name(&f.name)
            .map(|s| (s.addr, s.size));
        if a.is_none() || a != b {
            diffs.push(format!("{} (rebuilt {:x?}, given {:x?})", f.name, a, b));
        }
    }
    if functions.is_empty() || !diffs.is_empty() {
        return Err(Error::Mismatch(format!(
            "{}: the rebuilt base does not reproduce it (build-id {} vs rebuilt {}){}; build with the \
             same sources, .config, compiler and XEN_BUILD_* strings as the running hypervisor",
            given.display(),
            to_hex(&id),
            to_hex(base_id),
            if diffs.is_empty() { String::new() } else { format!("; functions differ: {}", diffs.join(", ")) }
        )));
    }
    Ok(id)
}

/// The loader's checks on the finished payload (the `verify` module),
/// against the hypervisor it targets. Build-id checks are skipped for the
/// notes the user set explicitly (`--depends` naming another payload).
fn verify_payload(
    payload: &Path,
    abi: Abi,
    replace: bool,
    xen_syms: &Path,
    custom_depends: bool,
    custom_xen_depends: bool,
) -> Result<(), Error> {
    basic_checks(payload, abi, replace)?;
    let verifier =
        crate::verify::Verifier::new(xen_syms, &[]).map_err(|e| Error::Verify(e.to_string()))?;
    let data = fs::read(payload).map_err(|e| Error::io(payload, e))?;
    let report = verifier.check(&data);
    let depends = format!("section {}: build-id", abi.depends_section());
    let xen_depends = abi
        .xen_depends_section()
        .map(|s| format!("section {s}: build-id"));
    let failures: Vec<&String> = report
        .failures
        .iter()
        .filter(|l| !(custom_depends && l.starts_with(&depends)))
        .filter(|l| !(custom_xen_depends && xen_depends.as_ref().is_some_and(|x| l.starts_with(x))))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        let lines: Vec<&str> = failures.iter().map(|l| l.as_str()).collect();
        Err(Error::Verify(format!(
            "{}: {}",
            payload.display(),
            lines.join("; ")
        )))
    }
}

/// Cheap structural checks first: whether there is anything to patch at
/// all, and what the REPLACE action refuses.
fn basic_checks(payload: &Path, abi: Abi, replace: bool) -> Result<(), Error> {
    use object::{Object, ObjectSection, ObjectSymbol, SectionFlags};
    let data = fs::read(payload).map_err(|e| Error::io(payload, e))?;
    let bad = |what: String| Error::Verify(format!("{}: {what}", payload.display()));
    if data.len() as u64 > abi::MAX_PAYLOAD_SIZE {
        return Err(bad(format!(
            "{} bytes, more than the loader's 2 MiB",
            data.len()
        )));
    }
    let file = object::File::parse(&*data).map_err(|e| bad(format!("not an ELF file: {e}")))?;
    if file.kind() != object::ObjectKind::Relocatable
        || file.architecture() != object::Architecture::X86_64
        || !file.is_64()
        || !file.is_little_endian()
    {
        return Err(bad(
            "not a 64-bit little-endian x86-64 relocatable object".into()
        ));
    }
    let count = |name: &str| {
        file.sections()
            .filter(|s| s.name() == Ok(name))
            .collect::<Vec<_>>()
    };
    let mut required = vec![".note.gnu.build-id", abi.depends_section()];
    required.extend(abi.xen_depends_section());
    for name in required {
        let found = count(name);
        if found.len() != 1 || found.iter().any(|s| s.size() == 0) {
            return Err(bad(format!(
                "{name} must appear once and be non-empty (found {})",
                found.len()
            )));
        }
    }
    let layout = abi.layout();
    let funcs = count(layout.section);
    let hooks: Vec<_> = abi
        .hook_sections()
        .iter()
        .filter(|h| !count(h).is_empty())
        .collect();
    if funcs.is_empty() && hooks.is_empty() {
        return Err(Error::NoChange { init_only: vec![] });
    }
    for f in &funcs {
        if f.size() == 0 || f.size() % layout.entry_size != 0 {
            return Err(bad(format!(
                "{} is {} bytes, not a multiple of {}",
                layout.section,
                f.size(),
                layout.entry_size
            )));
        }
    }
    for s in file.sections() {
        if let SectionFlags::Elf { sh_flags } = s.flags() {
            let wx = u64::from(object::elf::SHF_WRITE | object::elf::SHF_EXECINSTR);
            if sh_flags & wx == wx {
                return Err(bad(format!(
                    "section {} is both writable and executable",
                    s.name().unwrap_or("?")
                )));
            }
        }
    }
    if let Some(sym) = file.symbols().find(|s| s.is_common()) {
        return Err(bad(format!("common symbol {}", sym.name().unwrap_or("?"))));
    }
    if replace {
        for h in [".livepatch.hooks.preapply", ".livepatch.hooks.prerevert"] {
            if !count(h).is_empty() {
                return Err(bad(format!(
                    "{h}: the REPLACE action refuses payloads with vetoing hooks"
                )));
            }
        }
    }
    Ok(())
}
