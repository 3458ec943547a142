//! `xsplice-build batch`: every base × every patch of a manifest on one
//! machine. Each base is built once (the first pair of each base runs
//! alone and warms the base cache), then the pairs run in parallel, each
//! as its own `xsplice-build` process so that one failing pair never stops
//! the others. Results: `OUT/<base>/<patch>/` (payload, build.log,
//! report.json) and one summary (`OUT/summary.json`, `OUT/summary.txt`).
//! A pair whose inputs have not changed since the last run is not rebuilt.
//! `--shard K/N` builds a subset (whole dependency chains); `batch-merge`
//! joins the shards' summaries into the summary of the unsharded run.

pub mod manifest;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use manifest::{Expect, Manifest, Pair, Shard};

/// Exit codes of `batch` and `batch-merge` (documented in their `--help`).
pub mod exit {
    /// Every pair produced its expected outcome.
    pub const AS_EXPECTED: i32 = 0;
    /// The batch could not run (bad manifest, unreadable input, I/O).
    pub const ERROR: i32 = 1;
    /// At least one pair did not produce its expected outcome.
    pub const UNEXPECTED: i32 = 4;
}

const AFTER_HELP: &str = "\
Manifest (TOML; JSON when the file name ends in .json), see docs/fleet.md:
  [[base]]                       # one per hypervisor build you ship
  name = \"bookworm-4.17\"         # unique; output folder OUT/<name>/
  srcdir = \"xen-4.17\"            # relative paths are taken from the manifest's folder
  config = \"config-4.17\"         # optional: its .config (default: srcdir/xen/.config)
  xen_syms = \"xen-syms-4.17\"     # optional: the shipped xen-syms to reproduce
  env = { XEN_BUILD_DATE = \"...\" } # optional: build strings
  [[patch]]
  path = \"xsa-122.patch\"
  [[patch]]
  path = \"xsa-123.patch\"
  name = \"xsa-123\"               # optional (default: from the file name)
  depends = \"xsa-122\"            # optional: stacks on that patch's payload
  replace = false                # optional: a replace-all payload
  expect = \"built\"               # built | not-patchable | no-change
  bases = [\"bookworm-4.17\"]      # optional subset (default: every base)

Exit codes:
  0  every pair produced its expected outcome
  1  the batch could not run (bad manifest, unreadable input, I/O)
  4  at least one pair did not produce its expected outcome (see the summary)

Each pair runs as `xsplice-build -s ... -p ... -o OUT/<base>/<patch> --json
OUT/<base>/<patch>/report.json`; a pair whose inputs (tool, tree, .config,
xen-syms, build strings, patch, dependency payload) are unchanged since the
last run is reused, not rebuilt.";

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct BatchArgs {
    /// The manifest: bases × patches (TOML, or JSON by extension).
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Output directory: OUT/<base>/<patch>/ and OUT/summary.{json,txt}.
    #[arg(short = 'o', long, value_name = "OUT", default_value = "batch-out")]
    pub output: PathBuf,
    /// CPUs to use: base builds run make -jN, then up to N pairs at once.
    #[arg(short = 'j', long = "cpus", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub cpus: Option<u32>,
    /// Build only this machine's share: chains whose rank is K-1 modulo N.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Rebuild every pair even when its inputs are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Compile through ccache (passed to each pair; see `xsplice-build --help`).
    #[arg(long)]
    pub ccache: bool,
    /// Base-build cache directory (passed to each pair).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 merged and every pair as expected, 1 the parts do not \
form one whole run (different manifests, overlapping or missing pairs), 4 merged but some pair \
not as expected."
)]
pub struct MergeArgs {
    /// Where the merged summary goes (JSON; a table is printed).
    #[arg(short = 'o', long, value_name = "SUMMARY")]
    pub output: PathBuf,
    /// The shards' summary.json files.
    #[arg(value_name = "PART", required = true)]
    pub parts: Vec<PathBuf>,
}

#[derive(Debug)]
pub enum BatchError {
    Manifest {
        path: PathBuf,
        what: String,
    },
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    Merge(String),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Manifest { path, what } => write!(f, "{}: {what}", path.display()),
            BatchError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            BatchError::Merge(what) => write!(f, "cannot merge: {what}"),
        }
    }
}

impl std::error::Error for BatchError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BatchError + '_ {
    move |source| BatchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    crate::hash::hex(&Sha256::digest(data))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Built,
    NotPatchable,
    NoChange,
    Error,
    /// Not run: the payload it stacks on was not built.
    DependencyFailed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Built => "built",
            Outcome::NotPatchable => "not-patchable",
            Outcome::NoChange => "no-change",
            Outcome::Error => "error",
            Outcome::DependencyFailed => "dependency-failed",
        }
    }
    fn matches(self, e: Expect) -> bool {
        matches!(
            (self, e),
            (Outcome::Built, Expect::Built)
                | (Outcome::NotPatchable, Expect::NotPatchable)
                | (Outcome::NoChange, Expect::NoChange)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalSummary {
    pub object: String,
    /// The refusal's kind (`create_diff_object::RefusalKind`, snake_case);
    /// empty in summaries written before refusals had one.
    #[serde(default)]
    pub kind: String,
    pub symbol: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairResult {
    /// Position in the unsharded run.
    pub index: usize,
    pub base: String,
    pub patch: String,
    pub outcome: Outcome,
    pub expected: Expect,
    pub as_expected: bool,
    pub exit_code: Option<i32>,
    pub payload: Option<PathBuf>,
    pub build_id: Option<String>,
    /// The build-id it stacks on, when it depends on another pair.
    pub depends: Option<String>,
    pub refusals: Vec<RefusalSummary>,
    pub error: Option<String>,
    pub seconds: f64,
    /// True when the previous run's result was reused (inputs unchanged).
    pub reused: bool,
    pub fingerprint: String,
    /// BLAKE3 of the payload as built: a re-run reuses the pair only
    /// while its payload still has these bytes.
    #[serde(default)]
    pub payload_digest: Option<String>,
    /// The pair's own report (JSON) and log.
    pub report: PathBuf,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub format: u32,
    pub manifest: PathBuf,
    pub manifest_digest: String,
    pub shard: Option<String>,
    pub total_pairs: usize,
    pub pairs: Vec<PairResult>,
}

const SUMMARY_FORMAT: u32 = 1;

impl Summary {
    pub fn all_as_expected(&self) -> bool {
        self.pairs.iter().all(|p| p.as_expected)
    }

    /// A table a person reads.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "BASE".to_string(),
            "PATCH".to_string(),
            "OUTCOME".to_string(),
            "EXPECTED".to_string(),
            "BUILD-ID".to_string(),
            "SECONDS".to_string(),
        ]];
        for p in &self.pairs {
            let expect = match p.expected {
                Expect::Built => "built",
                Expect::NotPatchable => "not-patchable",
                Expect::NoChange => "no-change",
            };
            rows.push([
                p.base.clone(),
                p.patch.clone(),
                format!(
                    "{}{}",
                    p.outcome.as_str(),
                    if p.as_expected { "" } else { " (!)" }
                ),
                expect.to_string(),
                p.build_id
                    .as_deref()
                    .map(|b| b.get(..12).unwrap_or(b).to_string())
                    .unwrap_or_else(|| "-".into()),
                if p.reused {
                    "reused".into()
                } else {
                    format!("{:.1}", p.seconds)
                },
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        for p in self.pairs.iter().filter(|p| !p.as_expected) {
            let why = p
                .error
                .clone()
                .or_else(|| {
                    p.refusals
                        .first()
                        .map(|r| format!("{}: {}: {}", r.object, r.symbol, r.reason))
                })
                .unwrap_or_default();
            let first = why.lines().next().unwrap_or("");
            out.push_str(&format!(
                "{}/{}: {} (expected {:?}) {first}\n",
                p.base,
                p.patch,
                p.outcome.as_str(),
                p.expected
            ));
        }
        let n = |o: Outcome| self.pairs.iter().filter(|p| p.outcome == o).count();
        out.push_str(&format!(
            "{} pair(s): {} built, {} not patchable, {} no change, {} error, {} dependency failed; {} not as expected\n",
            self.pairs.len(),
            n(Outcome::Built),
            n(Outcome::NotPatchable),
            n(Outcome::NoChange),
            n(Outcome::Error),
            n(Outcome::DependencyFailed),
            self.pairs.iter().filter(|p| !p.as_expected).count()
        ));
        out
    }

    fn write(&self, json: &Path, text: Option<&Path>) -> Result<(), BatchError> {
        let body = serde_json::to_string_pretty(self).expect("summary serialises");
        write_atomic(json, format!("{body}\n").as_bytes())?;
        if let Some(t) = text {
            write_atomic(t, self.table().as_bytes())?;
        }
        Ok(())
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), BatchError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    tmp.write_all(data).map_err(io(path))?;
    tmp.persist(path).map_err(|e| BatchError::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// What one pair's `report.json` says (the fields the summary needs).
#[derive(Debug, Deserialize)]
struct PairReport {
    result: String,
    exit_code: i32,
    error: Option<String>,
    payload: Option<String>,
    payload_build_id: Option<String>,
    #[serde(default)]
    refusals: Vec<ReportRefusal>,
}

#[derive(Debug, Deserialize)]
struct ReportRefusal {
    object: String,
    #[serde(default)]
    kind: String,
    symbol: String,
    reason: String,
}

/// Per-base inputs, hashed once: the driver's base key plus what the key
/// leaves to the per-pair run (the target xen-syms, the build strings).
struct BaseInputs {
    digest: Result<String, String>,
}

fn base_inputs(
    base: &manifest::BaseEntry,
    tool: &str,
    jobs: usize,
    cache: &Path,
) -> Result<String, String> {
    let config_path = crate::tree::config_path(&base.srcdir, base.config.as_deref())
        .map_err(|e| e.to_string())?;
    let config = fs::read(&config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
    // The build recipe, as the driver resolves it (build strings from the
    // target xen-syms first). The base's own build strings (`env`, which
    // the pair's process gets) are hashed below, so the key is taken in
    // this process's environment, unchanged.
    let key = base
        .xen_syms
        .as_deref()
        .map(crate::target::TargetFacts::read)
        .transpose()
        .and_then(|target| {
            let arch = crate::pipeline::tree_arch(&config_path, &config)?;
            crate::recipe::BuildRecipe::detect(&base.srcdir)?.resolve_for(target.as_ref(), arch)
        })
        .and_then(|recipe| {
            crate::build::base_key(
                &base.srcdir,
                &config,
                &crate::build::MakeConfig::new(jobs, base.xen_debug, recipe),
                cache,
            )
        });
    let key = key.map_err(|e| e.to_string())?;
    let mut h = Sha256::new();
    h.update(tool.as_bytes());
    h.update(key.as_bytes());
    if let Some(x) = &base.xen_syms {
        let bytes = fs::read(x).map_err(|e| format!("{}: {e}", x.display()))?;
        h.update(Sha256::digest(&bytes));
    }
    for (k, v) in &base.env {
        h.update(format!("{k}={v}\n").as_bytes());
    }
    Ok(crate::hash::hex(&h.finalize()))
}

/// The previous run's result of a pair, kept beside its report.
const PAIR_STATE: &str = "batch-pair.json";

struct Runner<'a> {
    manifest: &'a Manifest,
    exe: PathBuf,
    out: PathBuf,
    cache_dir: Option<PathBuf>,
    force: bool,
    quiet: bool,
    ccache: bool,
    bases: Vec<BaseInputs>,
}

impl Runner<'_> {
    fn pair_dir(&self, pair: &Pair) -> PathBuf {
        self.out
            .join(&self.manifest.bases[pair.base].name)
            .join(&self.manifest.names[pair.patch])
    }

    fn progress(&self, line: &str) {
        if !self.quiet {
            eprintln!("xsplice-build batch: {line}");
        }
    }

    fn fingerprint(&self, pair: &Pair, base_digest: &str, depends: Option<&str>) -> String {
        let patch = &self.manifest.patches[pair.patch];
        let mut h = Sha256::new();
        h.update(b"xsplice-build batch pair v1\n");
        h.update(base_digest.as_bytes());
        h.update(Sha256::digest(fs::read(&patch.path).unwrap_or_default()));
        h.update(
            format!(
                "name={}\nreplace={}\ndepends={}\n",
                self.manifest.names[pair.patch],
                patch.replace,
                depends.unwrap_or("")
            )
            .as_bytes(),
        );
        // Only when present, so the fingerprints of pairs without accepts
        // (and the reuse of their earlier results) stay as they were.
        if !patch.accept.is_empty() {
            for a in &patch.accept {
                h.update(format!("accept={a}\n").as_bytes());
            }
            h.update(
                format!(
                    "accept_reason={}\n",
                    patch.accept_reason.as_deref().unwrap_or("")
                )
                .as_bytes(),
            );
        }
        crate::hash::hex(&h.finalize())
    }

    fn run_pair(&self, pair: &Pair, jobs: usize, dep: Option<&PairResult>) -> PairResult {
        let base = &self.manifest.bases[pair.base];
        let patch = &self.manifest.patches[pair.patch];
        let dir = self.pair_dir(pair);
        let report = dir.join("report.json");
        let log = dir.join("build.log");
        let mut result = PairResult {
            index: pair.index,
            base: base.name.clone(),
            patch: self.manifest.names[pair.patch].clone(),
            outcome: Outcome::Error,
            expected: patch.expect,
            as_expected: false,
            exit_code: None,
            payload: None,
            build_id: None,
            depends: None,
            refusals: Vec::new(),
            error: None,
            seconds: 0.0,
            reused: false,
            fingerprint: String::new(),
            payload_digest: None,
            report: report.clone(),
            log: log.clone(),
        };
        let finish = |mut r: PairResult| {
            r.as_expected = r.outcome.matches(r.expected);
            r
        };
        let base_digest = match &self.bases[pair.base].digest {
            Ok(d) => d.clone(),
            Err(e) => {
                result.error = Some(format!("base {}: {e}", base.name));
                return finish(result);
            }
        };
        if pair.depends_on.is_some() {
            match dep {
                Some(d) if d.outcome == Outcome::Built && d.build_id.is_some() => {
                    result.depends = d.build_id.clone();
                }
                _ => {
                    result.outcome = Outcome::DependencyFailed;
                    result.error = Some(format!(
                        "not built: {} (which it stacks on) was not built",
                        patch.depends.as_deref().unwrap_or("?")
                    ));
                    return finish(result);
                }
            }
        }
        result.fingerprint = self.fingerprint(pair, &base_digest, result.depends.as_deref());
        if !self.force {
            if let Some(prev) = self.previous(&dir, &result.fingerprint) {
                let mut prev = prev;
                prev.index = pair.index;
                prev.expected = patch.expect;
                prev.reused = true;
                return finish(prev);
            }
        }
        let start = Instant::now();
        if let Err(e) = fs::create_dir_all(&dir) {
            result.error = Some(format!("{}: {e}", dir.display()));
            return finish(result);
        }
        let _ = fs::remove_file(dir.join(PAIR_STATE));
        let _ = fs::remove_file(&report);
        let mut cmd = self.pair_command(pair, jobs, &dir, &report, result.depends.as_deref());
        let out = cmd.output();
        result.seconds = start.elapsed().as_secs_f64();
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                result.error = Some(format!("{}: {e}", self.exe.display()));
                return finish(result);
            }
        };
        let _ = fs::write(dir.join("batch.stderr"), &out.stderr);
        result.exit_code = out.status.code();
        read_pair_report(&mut result, &report, &out.stderr);
        if result.outcome == Outcome::Built {
            result.payload_digest = result
                .payload
                .as_deref()
                .and_then(|p| crate::hash::file_digest(p).ok())
                .map(|d| crate::hash::hex(&d));
        }
        let result = finish(result);
        if result.outcome != Outcome::Error {
            if let Ok(j) = serde_json::to_vec_pretty(&result) {
                let _ = write_atomic(&dir.join(PAIR_STATE), &j);
            }
        }
        result
    }

    /// The driver's command line for one pair.
    fn pair_command(
        &self,
        pair: &Pair,
        jobs: usize,
        dir: &Path,
        report: &Path,
        depends: Option<&str>,
    ) -> Command {
        let base = &self.manifest.bases[pair.base];
        let patch = &self.manifest.patches[pair.patch];
        let mut cmd = Command::new(&self.exe);
        cmd.arg("-s")
            .arg(&base.srcdir)
            .arg("-p")
            .arg(&patch.path)
            .arg("-o")
            .arg(dir)
            .arg("--json")
            .arg(report)
            .arg("--name")
            .arg(&self.manifest.names[pair.patch])
            .arg("-j")
            .arg(jobs.max(1).to_string())
            .arg("-q");
        if let Some(c) = &base.config {
            cmd.arg("-c").arg(c);
        }
        if let Some(x) = &base.xen_syms {
            cmd.arg("--xen-syms").arg(x);
        }
        if base.xen_debug {
            cmd.arg("--xen-debug");
        }
        if patch.replace {
            cmd.arg("--replace");
        }
        if let Some(d) = depends {
            cmd.arg("--depends").arg(d);
        }
        for a in &patch.accept {
            cmd.arg("--accept").arg(a);
        }
        if let Some(r) = &patch.accept_reason {
            cmd.arg("--accept-reason").arg(r);
        }
        if let Some(c) = &self.cache_dir {
            cmd.arg("--cache-dir").arg(c);
        }
        if self.ccache {
            cmd.arg("--ccache");
        }
        cmd.envs(&base.env).stdin(Stdio::null());
        cmd
    }

    /// The last run's result when its fingerprint matches and its payload is intact.
    fn previous(&self, dir: &Path, fingerprint: &str) -> Option<PairResult> {
        let prev: PairResult =
            serde_json::from_slice(&fs::read(dir.join(PAIR_STATE)).ok()?).ok()?;
        if prev.fingerprint != fingerprint || !prev.report.is_file() {
            return None;
        }
        if prev.outcome == Outcome::Built {
            let payload = prev.payload.as_ref()?;
            let info = crate::samples::PayloadInfo::read(payload).ok()?;
            if Some(info.build_id.to_string()) != prev.build_id {
                return None;
            }
            // The build-id note says what the payload was, not that its
            // other bytes still are: they are checked against the digest.
            let actual = crate::hash::file_digest(payload)
                .map(|d| crate::hash::hex(&d))
                .map_err(|e| e.to_string());
            if prev.payload_digest.is_none() || actual.as_ref().ok() != prev.payload_digest.as_ref()
            {
                let mismatch = crate::error::DigestMismatch {
                    file: payload.clone(),
                    expected: prev.payload_digest.clone(),
                    actual,
                };
                eprintln!(
                    "xsplice-build batch: warning: the payload changed since it was built: \
                     {mismatch}; rebuilding the pair"
                );
                return None;
            }
        }
        Some(prev)
    }
}

/// Run a manifest; the summary is written to `OUT/summary.json` and `OUT/summary.txt`.
pub fn run_batch(args: &BatchArgs) -> Result<Summary, BatchError> {
    let manifest = Manifest::load(&args.manifest)?;
    let exe = std::env::current_exe().map_err(io(Path::new("xsplice-build")))?;
    let tool = fs::read(&exe).map(|b| sha256_hex(&b)).map_err(io(&exe))?;
    let cpus = args
        .cpus
        .map(|c| c as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let selected: Vec<&Pair> = match args.shard {
        Some(s) => s.select(&manifest.pairs),
        None => manifest.pairs.iter().collect(),
    };
    let mut runner = Runner {
        manifest: &manifest,
        exe,
        out: args.output.clone(),
        cache_dir: args.cache_dir.clone(),
        force: args.force,
        quiet: args.quiet,
        ccache: args.ccache,
        bases: Vec::new(),
    };
    let cache =
        crate::build::cache_root(args.cache_dir.as_deref()).map_err(|e| BatchError::Io {
            path: PathBuf::from("cache directory"),
            source: std::io::Error::other(e.to_string()),
        })?;
    // Inputs of the bases this shard uses.
    for (i, b) in manifest.bases.iter().enumerate() {
        let used = selected.iter().any(|p| p.base == i);
        let digest = if used {
            runner.progress(&format!("hashing base {}", b.name));
            base_inputs(b, &tool, cpus, &cache)
        } else {
            Err("not in this shard".into())
        };
        runner.bases.push(BaseInputs { digest });
    }
    let mut done: BTreeMap<usize, PairResult> = BTreeMap::new();
    // Warm each base with its first pair, alone and with every CPU.
    for (i, b) in manifest.bases.iter().enumerate() {
        if let Some(first) = selected.iter().find(|p| p.base == i && p.depth == 0) {
            runner.progress(&format!(
                "base {}: {} (builds the base if it is not cached)",
                b.name, manifest.names[first.patch]
            ));
            let r = runner.run_pair(first, cpus, None);
            runner.progress(&format!("{}/{}: {}", r.base, r.patch, r.outcome.as_str()));
            done.insert(first.index, r);
        }
    }
    // The rest, level by level of the dependency chains, in parallel.
    let max_depth = selected.iter().map(|p| p.depth).max().unwrap_or(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cpus)
        .build()
        .map_err(|e| BatchError::Io {
            path: PathBuf::from("thread pool"),
            source: std::io::Error::other(e),
        })?;
    for depth in 0..=max_depth {
        let todo: Vec<&Pair> = selected
            .iter()
            .copied()
            .filter(|p| p.depth == depth && !done.contains_key(&p.index))
            .collect();
        let results: Vec<PairResult> = pool.install(|| {
            todo.par_iter()
                .map(|p| {
                    let dep = p.depends_on.and_then(|d| done.get(&d));
                    let r = runner.run_pair(p, 1, dep);
                    runner.progress(&format!("{}/{}: {}", r.base, r.patch, r.outcome.as_str()));
                    r
                })
                .collect()
        });
        for r in results {
            done.insert(r.index, r);
        }
    }
    let summary = Summary {
        format: SUMMARY_FORMAT,
        manifest: manifest.path.clone(),
        manifest_digest: manifest.digest.clone(),
        shard: args.shard.map(|s| s.to_string()),
        total_pairs: manifest.pairs.len(),
        pairs: done.into_values().collect(),
    };
    summary.write(
        &args.output.join("summary.json"),
        Some(&args.output.join("summary.txt")),
    )?;
    Ok(summary)
}

/// Join the shards' summaries: the same manifest, every pair exactly once.
pub fn merge(parts: &[Summary]) -> Result<Summary, BatchError> {
    let first = parts
        .first()
        .ok_or_else(|| BatchError::Merge("no parts".into()))?;
    let mut pairs: BTreeMap<usize, PairResult> = BTreeMap::new();
    for p in parts {
        if p.format != SUMMARY_FORMAT {
            return Err(BatchError::Merge(format!(
                "summary format {} (this tool writes {SUMMARY_FORMAT})",
                p.format
            )));
        }
        if p.manifest_digest != first.manifest_digest || p.total_pairs != first.total_pairs {
            return Err(BatchError::Merge(format!(
                "parts come from different manifests ({} and {})",
                first.manifest.display(),
                p.manifest.display()
            )));
        }
        for r in &p.pairs {
            if pairs.insert(r.index, r.clone()).is_some() {
                return Err(BatchError::Merge(format!(
                    "pair {}/{} is in more than one part",
                    r.base, r.patch
                )));
            }
        }
    }
    if let Some(missing) = (0..first.total_pairs).find(|i| !pairs.contains_key(i)) {
        return Err(BatchError::Merge(format!(
            "pair #{missing} of {} is in no part (a shard is missing)",
            first.total_pairs
        )));
    }
    if pairs.len() != first.total_pairs {
        return Err(BatchError::Merge(
            "a part has pairs the manifest does not".into(),
        ));
    }
    Ok(Summary {
        format: SUMMARY_FORMAT,
        manifest: first.manifest.clone(),
        manifest_digest: first.manifest_digest.clone(),
        shard: None,
        total_pairs: first.total_pairs,
        pairs: pairs.into_values().collect(),
    })
}

pub fn run(args: &BatchArgs) -> i32 {
    match run_batch(args) {
        Ok(summary) => {
            print!("{}", summary.table());
            if summary.all_as_expected() {
                exit::AS_EXPECTED
            } else {
                exit::UNEXPECTED
            }
        }
        Err(e) => {
            eprintln!("xsplice-build batch: {e}");
            exit::ERROR
        }
    }
}

pub fn run_merge(args: &MergeArgs) -> i32 {
    let read = |p: &PathBuf| -> Result<Summary, BatchError> {
        let bytes = fs::read(p).map_err(io(p))?;
        serde_json::from_slice(&bytes).map_err(|e| BatchError::Manifest {
            path: p.clone(),
            what: format!("not a batch summary: {e}"),
        })
    };
    let merged = args
        .parts
        .iter()
        .map(read)
        .collect::<Result<Vec<_>, _>>()
        .and_then(|parts| merge(&parts))
        .and_then(|m| m.write(&args.output, None).map(|_| m));
    match merged {
        Ok(m) => {
            print!("{}", m.table());
            if m.all_as_expected() {
                exit::AS_EXPECTED
            } else {
                exit::UNEXPECTED
            }
        }
        Err(e) => {
            eprintln!("xsplice-build batch-merge: {e}");
            exit::ERROR
        }
    }
}

/// The pair's outcome, payload, build-id and refusals from the driver's
/// JSON report; without one, the error is the last line of its stderr.
fn read_pair_report(result: &mut PairResult, report: &Path, stderr: &[u8]) {
    let parsed = fs::read(report)
        .ok()
        .and_then(|b| serde_json::from_slice::<PairReport>(&b).ok());
    let Some(r) = parsed else {
        let stderr = String::from_utf8_lossy(stderr);
        result.error = Some(format!(
            "no report written (exit {:?}): {}",
            result.exit_code,
            stderr.lines().last().unwrap_or("")
        ));
        return;
    };
    result.outcome = match (r.result.as_str(), r.exit_code) {
        ("built", 0) => Outcome::Built,
        ("not-patchable", 2) => Outcome::NotPatchable,
        ("no-change", 3) => Outcome::NoChange,
        _ => Outcome::Error,
    };
    if result.exit_code != Some(r.exit_code) {
        result.outcome = Outcome::Error;
    }
    result.error = r.error;
    result.payload = r.payload.map(PathBuf::from);
    result.build_id = r.payload_build_id;
    result.refusals = r
        .refusals
        .into_iter()
        .map(|x| RefusalSummary {
            object: x.object,
            kind: x.kind,
            symbol: x.symbol,
            reason: x.reason,
        })
        .collect();
}
