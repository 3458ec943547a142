//! The `--json` report: build-ids, every function patched, objects
//! diffed, refusals and stage timings. Written on failure too (with the
//! error and its exit code), so pipelines can read refusals from it.

use std::path::Path;

use serde::Serialize;

use crate::build_id::BuildId;
use crate::error::Error;
use crate::stages::Stages;
use crate::stages::{ObjectDiff, StageTime};

/// The report of one build, derived at the end from what the stages
/// produced (all of them, or those before the failure) and the outcome.
pub struct Report<'a> {
    pub stages: &'a Stages,
    pub replace: bool,
    pub timings: &'a [StageTime],
    /// `--accept-reason`, recorded with each accepted refusal.
    pub accept_reason: Option<&'a str>,
}

/// The report document. Field order is the JSON order (serde keeps it);
/// docs/json-report.md describes every field.
#[derive(Serialize)]
struct Document<'a> {
    result: &'static str,
    exit_code: i32,
    error: Option<String>,
    compiler_error: Option<CompilerErrorJson<'a>>,
    name: Option<&'a str>,
    patches: Vec<String>,
    payload: Option<String>,
    abi: Option<&'static str>,
    xen_version: Option<String>,
    replace: bool,
    base_build_id: Option<String>,
    payload_build_id: Option<String>,
    depends: Option<String>,
    xen_depends: Option<String>,
    base: Base<'a>,
    patched_build: PatchedBuild<'a>,
    changed_objects: &'a [String],
    new_objects: &'a [String],
    functions: Vec<Function<'a>>,
    objects: Vec<Object<'a>>,
    init_only_changes: &'a [String],
    refusals: Vec<RefusalJson<'a>>,
    warnings: Vec<WarningJson<'a>>,
    accepted: Vec<AcceptedJson<'a>>,
    timings: Vec<Timing>,
}

/// A refusal the author accepted (`--accept KIND:SUBJECT`): the refusal
/// as it would have been reported, and the author's reason.
#[derive(Serialize)]
struct AcceptedJson<'a> {
    object: &'a str,
    kind: &'static str,
    subject: &'a str,
    section: &'a str,
    /// The refusal's own reason (what the rule found).
    refusal: &'a str,
    /// `--accept-reason`.
    reason: &'a str,
}

#[derive(Serialize)]
struct CompilerErrorJson<'a> {
    file: &'a str,
    line: u32,
    column: Option<u32>,
    message: &'a str,
}

#[derive(Serialize)]
struct Base<'a> {
    cached: Option<bool>,
    key: Option<&'a str>,
    recipe: Option<&'a str>,
    xen_syms: Option<String>,
}

#[derive(Serialize)]
struct PatchedBuild<'a> {
    full_make: Option<bool>,
    full_make_reason: Option<&'a str>,
    recompiled: &'a [String],
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    object: &'a str,
    old_addr: u64,
    old_size: u64,
    new_size: u64,
}

#[derive(Serialize)]
struct Object<'a> {
    object: &'a str,
    new_object: bool,
    changed_functions: Vec<&'a str>,
    new_functions: &'a [String],
    init_only_changes: &'a [String],
}

#[derive(Serialize)]
struct RefusalJson<'a> {
    object: &'a str,
    /// `create_diff_object::RefusalKind::as_str`: stable, for programs.
    kind: &'static str,
    symbol: &'a str,
    section: &'a str,
    reason: &'a str,
    hint: &'a str,
}

/// A notice, or a decision that builds where a conservative rule
/// refused: its stable `kind`, what it is about, and the rule that allowed
/// it (`null` for a plain notice).
#[derive(Serialize)]
struct WarningJson<'a> {
    object: &'a str,
    /// `create_diff_object::WarningKind::as_str`: stable, for programs.
    kind: &'static str,
    symbols: &'a [String],
    message: &'a str,
    rule: Option<&'a str>,
}

#[derive(Serialize)]
struct Timing {
    stage: &'static str,
    /// Seconds, to the millisecond.
    seconds: f64,
}

impl Report<'_> {
    /// The report as JSON; `outcome` is the build's result.
    pub fn to_json(&self, outcome: Result<(), &Error>) -> String {
        let (result, exit_code, error) = outcome_fields(outcome);
        let st = self.stages;
        let hex = |id: &BuildId| id.to_string();
        let diff_objects = st.diff.as_ref().map_or(&[][..], |d| &d.objects);
        let objects = st.objects.as_ref();
        let patched = st.patched.as_ref();
        let doc = Document {
            result,
            exit_code,
            error,
            compiler_error: outcome.err().and_then(Error::compiler_error).map(|c| {
                CompilerErrorJson {
                    file: &c.file,
                    line: c.line,
                    column: c.column,
                    message: &c.message,
                }
            }),
            name: st.name.as_deref(),
            patches: st.patches.iter().map(|p| p.display().to_string()).collect(),
            payload: st.linked.as_ref().map(|l| l.payload.display().to_string()),
            abi: st.abi.map(|a| a.name()),
            xen_version: st
                .verified
                .as_ref()
                .and_then(|v| v.xen_version.as_ref())
                .map(ToString::to_string),
            replace: self.replace,
            base_build_id: st.base_build_id.as_ref().map(hex),
            payload_build_id: st.linked.as_ref().map(|l| hex(&l.build_id)),
            depends: st.dependencies.as_ref().map(|d| hex(&d.depends)),
            xen_depends: st.dependencies.as_ref().map(|d| hex(&d.xen_depends)),
            base: Base {
                cached: st.base.as_ref().map(|b| b.cached),
                // The objects' base (the previous run's with --skip).
                key: objects
                    .map(|o| o.base_key.as_str())
                    .or(st.base.as_ref().map(|b| b.key.as_str())),
                recipe: st.recipe.as_deref(),
                xen_syms: objects.map(|o| o.xen_syms.display().to_string()),
            },
            patched_build: PatchedBuild {
                full_make: patched.map(|p| p.full_make),
                full_make_reason: patched.and_then(|p| p.full_make_reason.as_deref()),
                recompiled: patched.map_or(&[][..], |p| &p.recompiled),
            },
            changed_objects: objects.map_or(&[][..], |o| &o.changed),
            new_objects: objects.map_or(&[][..], |o| &o.new),
            functions: function_entries(diff_objects),
            objects: object_entries(diff_objects),
            init_only_changes: st.diff.as_ref().map_or(&[][..], |d| &d.init_only),
            refusals: refusal_entries(outcome),
            warnings: warning_entries(st),
            accepted: accepted_entries(st, self.accept_reason),
            timings: timing_entries(self.timings),
        };
        let mut json =
            serde_json::to_string_pretty(&doc).expect("the report holds only strings and numbers");
        json.push('\n');
        json
    }

    pub fn write(&self, path: &Path, outcome: Result<(), &Error>) -> Result<(), Error> {
        crate::build::write_file(path, self.to_json(outcome).as_bytes())
    }
}

/// `result`, `exit_code` and `error`.
fn outcome_fields(outcome: Result<(), &Error>) -> (&'static str, i32, Option<String>) {
    match outcome {
        Ok(()) => ("built", 0, None),
        Err(e) => {
            let code = e.exit_code();
            let result = match code {
                crate::exit::NOT_PATCHABLE => "not-patchable",
                crate::exit::NO_CHANGE => "no-change",
                _ => "error",
            };
            (result, code, Some(e.to_string()))
        }
    }
}

fn function_entries(diff_objects: &[ObjectDiff]) -> Vec<Function<'_>> {
    diff_objects
        .iter()
        .flat_map(|o| {
            o.changed_functions().iter().map(move |f| Function {
                name: &f.name,
                object: &o.object,
                old_addr: f.old_addr,
                old_size: f.old_size,
                new_size: f.new_size,
            })
        })
        .collect()
}

fn object_entries(diff_objects: &[ObjectDiff]) -> Vec<Object<'_>> {
    diff_objects
        .iter()
        .map(|o| Object {
            object: &o.object,
            new_object: o.is_new(),
            changed_functions: o
                .changed_functions()
                .iter()
                .map(|f| f.name.as_str())
                .collect(),
            new_functions: o.new_functions(),
            init_only_changes: o.init_only_changes(),
        })
        .collect()
}

/// Refusals are the answer when there are any: the error has them all.
fn refusal_entries<'a>(outcome: Result<(), &'a Error>) -> Vec<RefusalJson<'a>> {
    outcome
        .err()
        .map_or(&[][..], Error::refusals)
        .iter()
        .map(|(object, r)| RefusalJson {
            object,
            kind: r.kind.as_str(),
            symbol: &r.symbol,
            section: &r.section,
            reason: &r.reason,
            hint: &r.hint,
        })
        .collect()
}

fn warning_entries(st: &Stages) -> Vec<WarningJson<'_>> {
    st.diff
        .as_ref()
        .map_or(&[][..], |d| &d.warnings)
        .iter()
        .map(|(object, w)| WarningJson {
            object,
            kind: w.kind.as_str(),
            symbols: &w.symbols,
            message: &w.message,
            rule: w.rule.as_deref(),
        })
        .collect()
}

fn accepted_entries<'a>(st: &'a Stages, reason: Option<&'a str>) -> Vec<AcceptedJson<'a>> {
    st.diff
        .as_ref()
        .map_or(&[][..], |d| &d.accepted)
        .iter()
        .map(|(object, r)| AcceptedJson {
            object,
            kind: r.kind.as_str(),
            subject: &r.symbol,
            section: &r.section,
            refusal: &r.reason,
            reason: reason.unwrap_or_default().trim(),
        })
        .collect()
}

fn timing_entries(timings: &[StageTime]) -> Vec<Timing> {
    timings
        .iter()
        .map(|t| Timing {
            stage: t.stage,
            seconds: (t.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip() {
        let tricky = "a\"b\\c\n\u{1}";
        let stages = Stages {
            name: Some(tricky.into()),
            ..Stages::default()
        };
        let r = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: None,
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json(Ok(()))).unwrap();
        assert_eq!(v["name"], tricky);
        assert_eq!(v["result"], "built");
        assert_eq!(v["payload"], serde_json::Value::Null);
    }

    #[test]
    fn error_reports_carry_the_exit_code() {
        let stages = Stages::default();
        let r = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: None,
        };
        let j = r.to_json(Err(&Error::NoChange {
            init_only: vec!["f".into()],
        }));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["result"], "no-change", "{j}");
        assert_eq!(v["exit_code"], 3, "{j}");
        assert_eq!(v["functions"], serde_json::json!([]), "{j}");
    }

    /// A build that stopped at the diff: what the earlier stages produced
    /// is reported, later fields are null, and the refusals (with their
    /// kind) come from the error.
    #[test]
    fn partial_result_and_refusals_from_the_error() {
        use crate::stages::{BaseBuild, ObjectsOutput};
        use create_diff_object::{Refusal, RefusalKind};
        let stages = Stages {
            name: Some("fix".into()),
            recipe: Some("upstream".into()),
            base: Some(BaseBuild {
                cached: true,
                adopted: false,
                key: "k1".into(),
                tree: "/cache/k1/tree".into(),
                xen_syms: "/cache/k1/tree/xen/xen-syms".into(),
                build_top: None,
            }),
            objects: Some(ObjectsOutput {
                base_key: "k1".into(),
                xen_syms: "/cache/k1/tree/xen/xen-syms".into(),
                base_tree: "/cache/k1/tree".into(),
                changed: vec!["common/data.o".into()],
                new: vec![],
            }),
            base_build_id: Some(BuildId::from_bytes(vec![0xab, 0xcd])),
            ..Stages::default()
        };
        let refusal = Refusal {
            kind: RefusalKind::InitialiserChanged,
            symbol: "counter".into(),
            section: ".data.counter".into(),
            reason: "initialiser of an existing variable changed".into(),
            hint: "set it from a hook".into(),
        };
        let e = Error::NotPatchable {
            refusals: vec![("common/data.o".into(), refusal)],
            log: None,
        };
        let j = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: None,
        }
        .to_json(Err(&e));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["result"], "not-patchable", "{j}");
        assert_eq!(v["base"]["key"], "k1", "{j}");
        assert_eq!(v["base"]["cached"], true, "{j}");
        assert_eq!(v["base_build_id"], "abcd", "{j}");
        assert_eq!(v["changed_objects"], serde_json::json!(["common/data.o"]));
        assert_eq!(v["payload"], serde_json::Value::Null, "{j}");
        assert_eq!(v["patched_build"]["full_make"], serde_json::Value::Null);
        let r = &v["refusals"][0];
        assert_eq!(r["kind"], "initialiser_changed", "{j}");
        assert_eq!(r["object"], "common/data.o", "{j}");
        assert_eq!(r["symbol"], "counter", "{j}");
        // The refusal's fields in the documented order (the parsed value sorts them).
        let at: Vec<usize> = ["object", "kind", "symbol", "section", "reason", "hint"]
            .iter()
            .map(|k| {
                j.find(&format!("\"{k}\": "))
                    .unwrap_or_else(|| panic!("{k}: {j}"))
            })
            .collect();
        assert_eq!(r.as_object().map(|o| o.len()), Some(at.len()), "{j}");
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{j}");
    }

    /// Consumers (and docs/json-report.md) see the fields in this order.
    #[test]
    fn top_level_fields_keep_their_order() {
        let stages = Stages::default();
        let j = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: None,
        }
        .to_json(Ok(()));
        let keys = [
            "result",
            "exit_code",
            "error",
            "compiler_error",
            "name",
            "patches",
            "payload",
            "abi",
            "xen_version",
            "replace",
            "base_build_id",
            "payload_build_id",
            "depends",
            "xen_depends",
            "base",
            "patched_build",
            "changed_objects",
            "new_objects",
            "functions",
            "objects",
            "init_only_changes",
            "refusals",
            "warnings",
            "accepted",
            "timings",
        ];
        let at: Vec<usize> = keys
            .iter()
            .map(|k| {
                j.find(&format!("\n  \"{k}\":"))
                    .unwrap_or_else(|| panic!("{k} missing: {j}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{j}");
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v.as_object().map(|o| o.len()), Some(keys.len()), "{j}");
    }

    /// A layout change the check accepted is a warning: stable kind, the
    /// type, its file, what changed and the rule that allowed it.
    #[test]
    fn accepted_layout_change_is_a_warning_with_its_kind_and_rule() {
        use create_diff_object::type_layout::LayoutNote;
        use create_diff_object::WarningKind;
        let stages = Stages {
            diff: Some(crate::stages::DiffOutput {
                objects: Vec::new(),
                outputs: Vec::new(),
                refusals: Vec::new(),
                init_only: Vec::new(),
                warnings: vec![(
                    "common/x.o".into(),
                    LayoutNote {
                        kind: WarningKind::LayoutNoInstance,
                        type_name: "struct optional_ops".into(),
                        decl_file: Some("include/xen/optional_ops.h".into()),
                        change: "member teardown moved from offset 8 to 16".into(),
                        rule: "nothing in the changed units holds it".into(),
                    }
                    .warning(),
                )],
                accepted: Vec::new(),
            }),
            ..Stages::default()
        };
        let j = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: None,
        }
        .to_json(Ok(()));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let w = &v["warnings"][0];
        assert_eq!(w["kind"], "layout_no_instance", "{j}");
        assert_eq!(w["object"], "common/x.o", "{j}");
        assert_eq!(w["symbols"][0], "struct optional_ops", "{j}");
        let message = w["message"].as_str().unwrap_or_default();
        assert!(message.contains("include/xen/optional_ops.h"), "{j}");
        assert_eq!(w["rule"], "nothing in the changed units holds it", "{j}");
        assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{j}");
    }

    /// An accepted refusal is listed with its kind, subject, object, the
    /// refusal's reason and the author's.
    #[test]
    fn accepted_refusals_are_listed_with_the_reason() {
        use create_diff_object::{Refusal, RefusalKind};
        let stages = Stages {
            diff: Some(crate::stages::DiffOutput {
                objects: Vec::new(),
                outputs: Vec::new(),
                refusals: Vec::new(),
                init_only: Vec::new(),
                warnings: Vec::new(),
                accepted: vec![(
                    "common/data.o".into(),
                    Refusal {
                        kind: RefusalKind::InitialiserChanged,
                        symbol: "counter".into(),
                        section: ".data.counter".into(),
                        reason: "initialiser of an existing variable changed".into(),
                        hint: String::new(),
                    },
                )],
            }),
            ..Stages::default()
        };
        let j = Report {
            stages: &stages,
            replace: false,
            timings: &[],
            accept_reason: Some(" checked by A. Author "),
        }
        .to_json(Ok(()));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let a = &v["accepted"][0];
        assert_eq!(a["object"], "common/data.o", "{j}");
        assert_eq!(a["kind"], "initialiser_changed");
        assert_eq!(a["subject"], "counter");
        assert_eq!(a["section"], ".data.counter");
        assert_eq!(a["refusal"], "initialiser of an existing variable changed");
        assert_eq!(a["reason"], "checked by A. Author");
        assert_eq!(v["accepted"].as_array().map(Vec::len), Some(1));
    }
}
