//! Diff stage: create-diff-object (as a library) on every changed object
//! pair, in parallel; collects functions, init-only changes and refusals,
//! then decides over every object's boot-time facts (`boot::decide`): boot
//! code in one object may set up what a patched function of another uses.

use std::path::{Path, PathBuf};

use create_diff_object::boot::BootFacts;
use create_diff_object::moves::UnreferencedMove;
use create_diff_object::state::StateFacts;
use create_diff_object::{Outcome, Refusal, RefusalKind, Warning, XenSyms};
use rayon::prelude::*;

use crate::error::Error;
use crate::progress::Log;
use crate::stages::{DiffOutput, ObjectDiff};

/// One object to diff.
#[derive(Debug, Clone)]
pub struct DiffJob {
    /// Path under `xen/` (e.g. `common/version.o`).
    pub object: String,
    pub original: PathBuf,
    pub patched: PathBuf,
    pub output: PathBuf,
}

/// Run every job; refusals are collected (not returned as the first error)
/// so the user sees the full list.
pub fn diff_all(
    jobs: &[DiffJob],
    xen_syms: &XenSyms,
    opts: &create_diff_object::Options,
    threads: usize,
    log: &Log,
) -> Result<DiffOutput, Error> {
    for job in jobs {
        if let Some(parent) = job.output.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
    }
    let run = || {
        jobs.par_iter()
            .map(|job| {
                let r = create_diff_object::diff_objects(
                    &job.original,
                    &job.patched,
                    xen_syms,
                    &job.output,
                    opts,
                );
                (job, r)
            })
            .collect::<Vec<_>>()
    };
    let results = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
    {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    };
    let (mut found, boot, object_warnings) = collect(results, log)?;
    decide_over_all(&mut found, &boot, xen_syms, log);
    found.warnings.extend(object_warnings);
    Ok(found)
}

/// One object's facts for the decisions over every object.
type Facts = (String, BootFacts, Vec<UnreferencedMove>, StateFacts);

/// Each object's outcome into the findings, in job order; its facts for
/// the decisions over every object and its own warnings are set aside.
/// The first error other than a refusal is the answer.
#[allow(clippy::type_complexity)]
fn collect(
    results: Vec<(&DiffJob, Result<Outcome, create_diff_object::Error>)>,
    log: &Log,
) -> Result<(DiffOutput, Vec<Facts>, Vec<(String, Warning)>), Error> {
    let mut found = DiffOutput::default();
    let mut first_error = None;
    let mut boot: Vec<Facts> = Vec::new();
    let mut object_warnings: Vec<(String, Warning)> = Vec::new();
    for (job, result) in results {
        match result {
            Ok(Outcome::Written(mut report)) => {
                boot.push(take_facts(&job.object, &mut report));
                log_report(log, &job.object, "changed", &report);
                found
                    .init_only
                    .extend(report.init_only_changes.iter().cloned());
                found.outputs.push(job.output.clone());
                found.accepted.extend(
                    std::mem::take(&mut report.accepted)
                        .into_iter()
                        .map(|r| (job.object.clone(), r)),
                );
                object_warnings.extend(
                    std::mem::take(&mut report.object_warnings)
                        .into_iter()
                        .map(|w| (job.object.clone(), w)),
                );
                found.objects.push(ObjectDiff {
                    object: job.object.clone(),
                    report: Some(report),
                });
            }
            Ok(Outcome::NoChange(mut report)) => {
                boot.push(take_facts(&job.object, &mut report));
                log_report(log, &job.object, "no functional change", &report);
                found.accepted.extend(
                    std::mem::take(&mut report.accepted)
                        .into_iter()
                        .map(|r| (job.object.clone(), r)),
                );
                found
                    .init_only
                    .extend(report.init_only_changes.iter().cloned());
                if !report.init_only_changes.is_empty() {
                    found.objects.push(ObjectDiff {
                        object: job.object.clone(),
                        report: Some(report),
                    });
                }
            }
            Err(create_diff_object::Error::NotPatchable { refusals, .. }) => {
                for r in refusals {
                    log.line(&format!("{}: refused: {r}", job.object));
                    found.refusals.push((job.object.clone(), r));
                }
            }
            Err(e) => {
                log.line(&format!("{}: {e}", job.object));
                if first_error.is_none() {
                    first_error = Some(Error::Diff {
                        object: job.object.clone(),
                        source: e,
                    });
                }
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok((found, boot, object_warnings))
}

/// Each object alone was decided by the differ: what this adds is boot
/// code of one object setting up what another's runtime part uses, a
/// moved variable of one object another's payload code refers to, and
/// state one object's functions dropped for another's new variables.
fn decide_over_all(found: &mut DiffOutput, boot: &[Facts], xen_syms: &XenSyms, log: &Log) {
    let is_function = |name: &str| create_diff_object::xen_function(xen_syms, name);
    let facts: Vec<(&str, &BootFacts)> = boot.iter().map(|(o, f, _, _)| (o.as_str(), f)).collect();
    let mut verdict = create_diff_object::boot::decide(&facts, &is_function);
    let moves: Vec<(&str, &[UnreferencedMove], &BootFacts)> = boot
        .iter()
        .map(|(o, f, m, _)| (o.as_str(), m.as_slice(), f))
        .collect();
    let state: Vec<(&str, &BootFacts, &StateFacts)> =
        boot.iter().map(|(o, f, _, s)| (o.as_str(), f, s)).collect();
    for v in [
        create_diff_object::moves::decide(&moves),
        create_diff_object::state::decide(&state, &is_function),
    ] {
        verdict.refusals.extend(v.refusals);
        verdict.warnings.extend(v.warnings);
    }
    for (object, r) in verdict.refusals {
        log.line(&format!("{object}: refused: {r}"));
        // The differ refused it on this object alone already (a state or
        // move refusal may name fewer users there: one per symbol).
        let same = |x: &Refusal| {
            *x == r
                || (x.kind == r.kind
                    && x.symbol == r.symbol
                    && matches!(
                        r.kind,
                        RefusalKind::StateNotCarried | RefusalKind::VariableMoved
                    ))
        };
        if !found.refusals.iter().any(|(o, x)| *o == object && same(x)) {
            found.refusals.push((object, r));
        }
    }
    found.warnings = verdict.warnings;
}

/// What the payload-wide decisions need of one object's report.
fn take_facts(object: &str, report: &mut create_diff_object::DiffReport) -> Facts {
    (
        object.to_string(),
        std::mem::take(&mut report.boot),
        std::mem::take(&mut report.moves),
        std::mem::take(&mut report.state),
    )
}

fn log_report(log: &Log, object: &str, what: &str, report: &create_diff_object::DiffReport) {
    log.line(&format!("{object}: {what}"));
    for f in &report.changed_functions {
        log.line(&format!(
            "{object}:   patched {} (old {:#x}+{}, new size {})",
            f.name, f.old_addr, f.old_size, f.new_size
        ));
    }
    for f in &report.new_functions {
        log.line(&format!("{object}:   new {f}"));
    }
    for f in &report.init_only_changes {
        log.line(&format!("{object}:   init-only change {f} (ignored)"));
    }
    for l in &report.debug_lines {
        log.line(&format!("{object}:   {l}"));
    }
}

/// Where a diff output goes: `DIR/diff/<object>`.
pub fn output_path(diff_dir: &Path, object: &str) -> PathBuf {
    diff_dir.join(object)
}
