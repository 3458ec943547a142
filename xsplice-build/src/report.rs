//! The `--json` report: build-ids, every function patched, objects
//! diffed, refusals and stage timings. Written on failure too (with the
//! error and its exit code), so pipelines can read refusals from it.

use std::fmt::Write;
use std::path::Path;

use crate::{Error, ObjectDiff, StageTime};

/// Everything the report says; filled in as the stages run.
#[derive(Debug, Default)]
pub struct Report {
    pub name: Option<String>,
    pub payload: Option<String>,
    pub abi: Option<String>,
    pub base_build_id: Option<String>,
    pub payload_build_id: Option<String>,
    pub depends: Option<String>,
    pub xen_depends: Option<String>,
    pub base_cached: Option<bool>,
    pub base_key: Option<String>,
    /// The build recipe detected from the tree (`upstream`, `debian`).
    pub recipe: Option<String>,
    pub xen_syms: Option<String>,
    pub full_make: Option<bool>,
    pub full_make_reason: Option<String>,
    pub recompiled: Vec<String>,
    pub changed_objects: Vec<String>,
    pub new_objects: Vec<String>,
    pub objects: Vec<ObjectDiff>,
    pub init_only: Vec<String>,
    pub refusals: Vec<(String, create_diff_object::Refusal)>,
    pub replace: bool,
    pub timings: Vec<StageTime>,
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn opt_str(v: &Option<String>) -> String {
    v.as_deref().map(quote).unwrap_or_else(|| "null".into())
}

fn str_list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    )
}

impl Report {
    /// The report as JSON; `outcome` is the build's result.
    pub fn to_json(&self, outcome: Result<(), &Error>) -> String {
        let (result, code, error) = match outcome {
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
        };
        let compiler_error = match outcome.err().and_then(Error::compiler_error) {
            Some(c) => format!(
                "{{\"file\": {}, \"line\": {}, \"column\": {}, \"message\": {}}}",
                quote(&c.file),
                c.line,
                c.column
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "null".into()),
                quote(&c.message)
            ),
            None => "null".into(),
        };
        let mut j = String::from("{\n");
        let mut field = |k: &str, v: String| {
            let _ = writeln!(j, "  {}: {},", quote(k), v);
        };
        field("result", quote(result));
        field("exit_code", code.to_string());
        field("error", opt_str(&error));
        field("compiler_error", compiler_error);
        field("name", opt_str(&self.name));
        field("payload", opt_str(&self.payload));
        field("abi", opt_str(&self.abi));
        field("replace", self.replace.to_string());
        field("base_build_id", opt_str(&self.base_build_id));
        field("payload_build_id", opt_str(&self.payload_build_id));
        field("depends", opt_str(&self.depends));
        field("xen_depends", opt_str(&self.xen_depends));
        field(
            "base",
            format!(
                "{{\"cached\": {}, \"key\": {}, \"recipe\": {}, \"xen_syms\": {}}}",
                self.base_cached
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "null".into()),
                opt_str(&self.base_key),
                opt_str(&self.recipe),
                opt_str(&self.xen_syms)
            ),
        );
        field(
            "patched_build",
            format!(
                "{{\"full_make\": {}, \"full_make_reason\": {}, \"recompiled\": {}}}",
                self.full_make
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "null".into()),
                opt_str(&self.full_make_reason),
                str_list(&self.recompiled)
            ),
        );
        field("changed_objects", str_list(&self.changed_objects));
        field("new_objects", str_list(&self.new_objects));
        let functions: Vec<String> = self
            .objects
            .iter()
            .flat_map(|o| {
                o.changed_functions.iter().map(move |f| {
                    format!(
                        "    {{\"name\": {}, \"object\": {}, \"old_addr\": {}, \"old_size\": {}, \"new_size\": {}}}",
                        quote(&f.name),
                        quote(&o.object),
                        f.old_addr,
                        f.old_size,
                        f.new_size
                    )
                })
            })
            .collect();
        field("functions", json_array(&functions));
        let objects: Vec<String> = self
            .objects
            .iter()
            .map(|o| {
                format!(
                    "    {{\"object\": {}, \"new_object\": {}, \"changed_functions\": {}, \"new_functions\": {}, \"init_only_changes\": {}}}",
                    quote(&o.object),
                    o.new_object,
                    str_list(&o.changed_functions.iter().map(|f| f.name.clone()).collect::<Vec<_>>()),
                    str_list(&o.new_functions),
                    str_list(&o.init_only_changes)
                )
            })
            .collect();
        field("objects", json_array(&objects));
        field("init_only_changes", str_list(&self.init_only));
        let refusals: Vec<String> = self
            .refusals
            .iter()
            .map(|(o, r)| {
                format!(
                    "    {{\"object\": {}, \"symbol\": {}, \"section\": {}, \"reason\": {}, \"hint\": {}}}",
                    quote(o),
                    quote(&r.symbol),
                    quote(&r.section),
                    quote(&r.reason),
                    quote(&r.hint)
                )
            })
            .collect();
        field("refusals", json_array(&refusals));
        let timings: Vec<String> = self
            .timings
            .iter()
            .map(|t| {
                format!(
                    "{{\"stage\": {}, \"seconds\": {:.3}}}",
                    quote(t.stage),
                    t.elapsed.as_secs_f64()
                )
            })
            .collect();
        let _ = writeln!(j, "  \"timings\": [{}]", timings.join(", "));
        j.push_str("}\n");
        j
    }

    pub fn write(&self, path: &Path, outcome: Result<(), &Error>) -> Result<(), Error> {
        crate::build::write_file(path, self.to_json(outcome).as_bytes())
    }
}

/// A JSON array of already-formatted items, one per line (`[]` when empty).
fn json_array(items: &[String]) -> String {
    if items.is_empty() {
        "[]".to_string()
    } else {
        format!("[\n{}\n  ]", items.join(",\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn error_reports_carry_the_exit_code() {
        let r = Report::default();
        let j = r.to_json(Err(&Error::NoChange {
            init_only: vec!["f".into()],
        }));
        assert!(j.contains("\"result\": \"no-change\""), "{j}");
        assert!(j.contains("\"exit_code\": 3"), "{j}");
        assert!(j.contains("\"functions\": []"), "{j}");
    }
}
