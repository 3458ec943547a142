//! `xsplice-build batch` on the synthetic Xen-like tree (tests/xenlike):
//! two bases × four patches (built, stacked, refused, no change), the
//! summary read back as JSON, a re-run that reuses unchanged pairs and
//! rebuilds changed ones, a sharded run whose merge equals the unsharded
//! one, and the exit status when an outcome is not the expected one.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::tree::copy_xenlike;
use support::{assert_exit, xenlike_patch_file};

/// The manifest's patches, from tests/xenlike-patches/.
const PATCHES: &[&str] = &["kernel-scale", "sched-pick", "counter-init", "comment-only"];

struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    /// A copy of tests/xenlike and of the patches, and a manifest with two
    /// bases (the same tree with two build-string profiles).
    fn new(extra: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        copy_xenlike(dir.path(), "src");
        for p in PATCHES {
            fs::copy(xenlike_patch_file(p), dir.path().join(format!("{p}.diff"))).unwrap();
        }
        let manifest = format!(
            r#"
[[base]]
name = "plain"
srcdir = "src"

[[base]]
name = "dated"
srcdir = "src"
env = {{ XEN_BUILD_DATE = "Mon Jan  5 00:00:00 UTC 2026" }}

[[patch]]
path = "kernel-scale.diff"

[[patch]]
path = "sched-pick.diff"
depends = "kernel-scale"

[[patch]]
path = "counter-init.diff"
expect = "not-patchable"

[[patch]]
path = "comment-only.diff"
expect = "no-change"
bases = ["plain"]
{extra}"#
        );
        fs::write(dir.path().join("fleet.toml"), manifest).unwrap();
        Fleet { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn batch(&self, out: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
            .arg("batch")
            .arg(self.path("fleet.toml"))
            .arg("-o")
            .arg(self.path(out))
            .arg("--cache-dir")
            .arg(self.path("cache"))
            .arg("-j2")
            .arg("-q")
            .args(args)
            .output()
            .unwrap()
    }

    fn summary(&self, path: &str) -> Value {
        serde_json::from_slice(&fs::read(self.path(path)).unwrap()).unwrap()
    }
}

fn pairs(summary: &Value) -> &Vec<Value> {
    summary["pairs"].as_array().unwrap()
}

/// The fields that must agree between runs (not timings or paths).
fn essence(summary: &Value) -> Vec<String> {
    pairs(summary)
        .iter()
        .map(|p| {
            format!(
                "{} {}/{} {} {} {} {}",
                p["index"],
                p["base"],
                p["patch"],
                p["outcome"],
                p["build_id"],
                p["depends"],
                p["refusals"]
            )
        })
        .collect()
}

fn outcome<'a>(summary: &'a Value, base: &str, patch: &str) -> &'a Value {
    pairs(summary)
        .iter()
        .find(|p| p["base"] == base && p["patch"] == patch)
        .unwrap_or_else(|| panic!("no pair {base}/{patch} in {summary}"))
}

#[test]
fn matrix_summary_reuse_and_shards() {
    let fleet = Fleet::new("");
    let o = fleet.batch("out", &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_exit(&o, 0);
    assert!(
        stdout.contains("7 pair(s): 4 built, 2 not patchable, 1 no change"),
        "{stdout}"
    );
    let s = fleet.summary("out/summary.json");
    assert_eq!(s["total_pairs"], 7);
    assert_eq!(pairs(&s).len(), 7);
    for base in ["plain", "dated"] {
        let k = outcome(&s, base, "kernel-scale");
        let st = outcome(&s, base, "sched-pick");
        assert_eq!(k["outcome"], "built");
        assert_eq!(st["outcome"], "built");
        // The stacked payload depends on the payload of the same base.
        assert_eq!(st["depends"], k["build_id"]);
        assert!(Path::new(k["payload"].as_str().unwrap()).is_file());
        let refused = outcome(&s, base, "counter-init");
        assert_eq!(refused["outcome"], "not-patchable");
        assert_eq!(refused["refusals"][0]["kind"], "initialiser_changed");
        assert!(refused["refusals"][0]["symbol"]
            .as_str()
            .unwrap()
            .contains("counter"));
        assert!(fleet
            .path(&format!("out/{base}/kernel-scale/report.json"))
            .is_file());
    }
    assert_eq!(outcome(&s, "plain", "comment-only")["outcome"], "no-change");
    // The build strings differ, so the bases and their payloads differ.
    let report = |base: &str| fleet.summary(&format!("out/{base}/kernel-scale/report.json"));
    assert_ne!(
        report("plain")["base_build_id"],
        report("dated")["base_build_id"]
    );
    let payload = |base: &str| {
        fs::read(
            outcome(&s, base, "kernel-scale")["payload"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    assert_ne!(payload("plain"), payload("dated"));
    // The payload's build-id covers its xen_depends note, so it differs too.
    assert_ne!(
        outcome(&s, "plain", "kernel-scale")["build_id"],
        outcome(&s, "dated", "kernel-scale")["build_id"]
    );
    assert!(pairs(&s).iter().all(|p| p["reused"] == false));
    assert!(fs::read_to_string(fleet.path("out/summary.txt"))
        .unwrap()
        .contains("BASE"));

    // Nothing changed: every pair is reused, with the same results.
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 0);
    let again = fleet.summary("out/summary.json");
    assert!(pairs(&again).iter().all(|p| p["reused"] == true), "{again}");
    assert_eq!(essence(&again), essence(&s));

    // A payload whose bytes changed on disk (its build-id note intact) is
    // not reused: the pair is rebuilt, giving the payload it had.
    let damaged = PathBuf::from(
        outcome(&s, "plain", "kernel-scale")["payload"]
            .as_str()
            .unwrap(),
    );
    let built = fs::read(&damaged).unwrap();
    let code = {
        use object::{Object, ObjectSection};
        let file = object::File::parse(&*built).unwrap();
        let text = file
            .sections()
            .find(|s| s.kind() == object::SectionKind::Text && s.size() > 0)
            .unwrap();
        text.file_range().unwrap().0 as usize
    };
    let mut bytes = built.clone();
    bytes[code] ^= 0x01;
    fs::write(&damaged, &bytes).unwrap();
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the payload changed since it was built")
            && err.contains(&damaged.display().to_string()),
        "{err}"
    );
    let redone = fleet.summary("out/summary.json");
    for p in pairs(&redone) {
        let rebuilt = p["base"] == "plain" && p["patch"] == "kernel-scale";
        assert_eq!(p["reused"], !rebuilt, "{p}");
    }
    assert!(
        fs::read(&damaged).unwrap() == built,
        "the rebuilt payload differs"
    );
    assert_eq!(essence(&redone), essence(&s));

    // A changed patch is rebuilt, and so is what stacks on it; nothing else.
    let k = fleet.path("kernel-scale.diff");
    let text = fs::read_to_string(&k)
        .unwrap()
        .replace("v * 5 + 1", "v * 6 + 1");
    fs::write(&k, text).unwrap();
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 0);
    let changed = fleet.summary("out/summary.json");
    for p in pairs(&changed) {
        let rebuilt = p["patch"] == "kernel-scale" || p["patch"] == "sched-pick";
        assert_eq!(p["reused"], !rebuilt, "{p}");
    }
    assert_ne!(
        outcome(&changed, "plain", "kernel-scale")["build_id"],
        outcome(&s, "plain", "kernel-scale")["build_id"]
    );

    // Shards: chains stay whole, and the merge equals the unsharded run.
    for k in ["1/3", "2/3", "3/3"] {
        let o = fleet.batch(&format!("shard{}", &k[..1]), &["--shard", k, "--force"]);
        assert_exit(&o, 0);
    }
    let merge = |parts: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_xsplice-build"))
            .arg("batch-merge")
            .arg("-o")
            .arg(fleet.path("merged.json"))
            .args(parts.iter().map(|p| fleet.path(p)))
            .output()
            .unwrap()
    };
    let o = merge(&[
        "shard1/summary.json",
        "shard2/summary.json",
        "shard3/summary.json",
    ]);
    assert_exit(&o, 0);
    assert_eq!(essence(&fleet.summary("merged.json")), essence(&changed));
    // A missing or doubled shard is an error, not a smaller summary.
    let o = merge(&["shard1/summary.json", "shard2/summary.json"]);
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("in no part"));
    let o = merge(&[
        "shard1/summary.json",
        "shard1/summary.json",
        "shard2/summary.json",
    ]);
    assert_exit(&o, 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than one part"));
}

#[test]
fn unexpected_outcome_exits_4_and_names_the_pair() {
    let fleet = Fleet::new("\n[[patch]]\npath = \"counter-init.diff\"\nname = \"wrongly-expected\"\nbases = [\"plain\"]\n");
    let o = fleet.batch("out", &[]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_exit(&o, 4);
    assert!(
        stdout.contains("plain/wrongly-expected: not-patchable (expected Built)"),
        "{stdout}"
    );
    let s = fleet.summary("out/summary.json");
    assert_eq!(
        outcome(&s, "plain", "wrongly-expected")["as_expected"],
        false
    );
    assert_eq!(outcome(&s, "plain", "kernel-scale")["as_expected"], true);
}

#[test]
fn bad_manifest_exits_1_before_any_build() {
    let fleet = Fleet::new("\n[[patch]]\npath = \"missing.diff\"\n");
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 1);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("fleet.toml") && err.contains("missing.diff"),
        "{err}"
    );
    assert!(!fleet.path("out").exists());
    assert!(!fleet.path("cache").exists());
}

/// The audited override through a manifest: a patch refused for its changed
/// initialiser (it also changes a function) with its accept and reason is built, its report lists the accepted
/// refusal, and the payload carries it in `.xsplice.accepted`.
#[test]
fn manifest_accept_builds_a_refused_patch_and_records_it() {
    let reason = "checked by A. Author: the new default only matters after a reboot";
    let fleet = Fleet::new(&format!(
        "\n[[patch]]\npath = \"counter-init-and-use.diff\"\nname = \"counter-accepted\"\n\
         bases = [\"plain\"]\naccept = [\"initialiser_changed:counter\"]\n\
         accept_reason = \"{reason}\"\n"
    ));
    fs::copy(
        xenlike_patch_file("counter-init-and-use"),
        fleet.path("counter-init-and-use.diff"),
    )
    .unwrap();
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 0);
    let s = fleet.summary("out/summary.json");
    let pair = outcome(&s, "plain", "counter-accepted");
    assert_eq!(pair["outcome"], "built", "{pair}");
    let report: Value =
        serde_json::from_slice(&fs::read(pair["report"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        report["accepted"][0]["kind"], "initialiser_changed",
        "{report:#}"
    );
    assert_eq!(report["accepted"][0]["subject"], "counter", "{report:#}");
    assert_eq!(report["accepted"][0]["reason"], reason, "{report:#}");
    let payload = fs::read(pair["payload"].as_str().unwrap()).unwrap();
    let records = {
        use object::{Object, ObjectSection};
        let file = object::File::parse(&*payload).unwrap();
        let sec = file
            .section_by_name(xsplice_target::accepted::SECTION)
            .expect(".xsplice.accepted in the payload");
        xsplice_target::accepted::decode(sec.data().unwrap()).unwrap()
    };
    assert_eq!(records.len(), 1, "{records:?}");
    // Changing the accept's reason changes the pair's fingerprint: rebuilt, not reused.
    let manifest = fs::read_to_string(fleet.path("fleet.toml")).unwrap();
    fs::write(
        fleet.path("fleet.toml"),
        manifest.replace(reason, "checked again by B. Reviewer"),
    )
    .unwrap();
    let o = fleet.batch("out", &[]);
    assert_exit(&o, 0);
    let s = fleet.summary("out/summary.json");
    assert_eq!(outcome(&s, "plain", "counter-accepted")["reused"], false);
    assert_eq!(outcome(&s, "plain", "kernel-scale")["reused"], true);
}
