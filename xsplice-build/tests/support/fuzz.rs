//! The mutation fuzzer's engine, shared by the fast-tier test
//! (`tests/fuzz.rs`: a short fixed-seed pass and every stored regression
//! input) and the example anyone can run for as long as they like
//! (`cargo run --release -p xsplice-build --example fuzz -- --seconds N --seed S`).
//!
//! Seeds are built from the fixtures (a create-diff-object pair from
//! `tests/cdo/bug_frames`, the verify fixture's xen-syms with DWARF, its
//! payload and the payload stacked on it); each input is a seed damaged
//! by `create_diff_object::mutate` (truncation, bytes and bits in the
//! parsed parts, plausible field values, huge table sizes) and given to
//! the reader of its role:
//!
//! | target | what reads it |
//! |---|---|
//! | `original`, `patched` | `create_diff_object::diff_bytes` |
//! | `xen-syms` | `Verifier::new` + a check, `XenSyms::load` + a diff |
//! | `payload` | `Verifier::check`, `link::seal_build_id` |
//! | `dependency` | `Verifier::new` with it as `--depends-on`, + a check |
//!
//! Each input runs on its own thread under a watchdog: a panic (caught),
//! no answer within the timeout, or a peak of allocated memory over the
//! bound is a finding, saved with its target in the output directory and
//! minimised (bytes put back to the seed's while the finding stays).
//! Allocations past `HARD_LIMIT` fail, which aborts the process: the
//! input being run is always in `OUT/last-input-TARGET.bin` first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use create_diff_object::mutate::{
    guarded, hot_ranges, mutate, mutate_fields, mutate_sizes, truncate, Rng, Shape,
};
use create_diff_object::{diff_bytes, Abi, AbiChoice, Options, XenSyms};
use xsplice_build::verify::Verifier;

/// Counts live heap bytes and their peak, and refuses allocations past
/// `HARD_LIMIT` (the process then aborts instead of swapping the machine).
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Live heap bytes past which allocations fail.
pub const HARD_LIMIT: usize = 3 << 30;
/// Peak heap growth per input past which it is a finding. The inputs are
/// kilobytes and every reader's inputs are bounded (docs/limits.md).
pub const MEMORY_BOUND: usize = 256 << 20;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        if now > HARD_LIMIT {
            LIVE.fetch_sub(layout.size(), Relaxed);
            return std::ptr::null_mut();
        }
        PEAK.fetch_max(now, Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grow = new_size - layout.size();
            let now = LIVE.fetch_add(grow, Relaxed) + grow;
            if now > HARD_LIMIT {
                LIVE.fetch_sub(grow, Relaxed);
                return std::ptr::null_mut();
            }
            PEAK.fetch_max(now, Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Which reader an input is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Original,
    Patched,
    XenSyms,
    Payload,
    Dependency,
}

impl Target {
    pub const ALL: [Target; 5] = [
        Target::Original,
        Target::Patched,
        Target::XenSyms,
        Target::Payload,
        Target::Dependency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Original => "original",
            Target::Patched => "patched",
            Target::XenSyms => "xen-syms",
            Target::Payload => "payload",
            Target::Dependency => "dependency",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What went wrong with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Panic(String),
    Timeout(Duration),
    Memory(usize),
}

impl Finding {
    fn kind(&self) -> &'static str {
        match self {
            Finding::Panic(_) => "panic",
            Finding::Timeout(_) => "timeout",
            Finding::Memory(_) => "memory",
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Panic(m) => write!(f, "panic: {m}"),
            Finding::Timeout(t) => write!(f, "no answer within {:.1} s", t.as_secs_f64()),
            Finding::Memory(n) => write!(
                f,
                "{} MiB allocated (bound {} MiB)",
                n >> 20,
                MEMORY_BOUND >> 20
            ),
        }
    }
}

/// A seed's bytes and where mutations aim in it.
struct Seed {
    bytes: Vec<u8>,
    hot: Vec<(usize, usize)>,
    shape: Option<Shape>,
}

impl Seed {
    fn new(bytes: Vec<u8>) -> Seed {
        let hot = hot_ranges(&bytes);
        let shape = Shape::new(&bytes);
        Seed { bytes, hot, shape }
    }
}

/// The undamaged inputs and what the readers need besides the input.
pub struct Seeds {
    _case: super::cdo::Case,
    orig_path: PathBuf,
    patched_path: PathBuf,
    cdo_xen: XenSyms,
    verify_xen: PathBuf,
    verifier: Verifier,
    stacked: Vec<u8>,
    seeds: Vec<(Target, Seed)>,
    scratch: tempfile::TempDir,
    counter: AtomicU64,
}

fn diff_options() -> Options {
    Options {
        abi: AbiChoice::Fixed(Abi::LivepatchV2),
        resolve: true,
        debug: true,
        xen_tree: None,
        accept: Vec::new(),
    }
}

impl Seeds {
    /// Compile the fixtures (cc, ld, objcopy).
    pub fn build() -> Seeds {
        let case = super::cdo::build_case_with("bug_frames", "bug_frames", "patched_code.c");
        let fx = super::verify::fixture();
        let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let orig = read(&case.orig);
        let patched = read(&case.patched);
        let payload = read(&fx.payload);
        let stacked = read(&fx.stacked);
        let seeds = vec![
            (Target::Original, Seed::new(orig.clone())),
            (Target::Patched, Seed::new(patched)),
            (Target::XenSyms, Seed::new(read(&fx.xen_syms))),
            (Target::Payload, Seed::new(payload.clone())),
            (Target::Dependency, Seed::new(payload)),
        ];
        Seeds {
            orig_path: case.orig.clone(),
            patched_path: case.patched.clone(),
            cdo_xen: XenSyms::load(&case.xen_syms).expect("fixture xen-syms"),
            verify_xen: fx.xen_syms.clone(),
            verifier: Verifier::new(&fx.xen_syms, &[]).expect("fixture verifier"),
            stacked,
            seeds,
            _case: case,
            scratch: tempfile::tempdir().expect("scratch directory"),
            counter: AtomicU64::new(0),
        }
    }

    fn seed(&self, target: Target) -> &Seed {
        &self
            .seeds
            .iter()
            .find(|(t, _)| *t == target)
            .expect("a seed per target")
            .1
    }

    /// The undamaged input of `target`.
    pub fn seed_bytes(&self, target: Target) -> &[u8] {
        &self.seed(target).bytes
    }

    /// A damaged copy of `target`'s seed.
    pub fn mutant(&self, rng: &mut Rng, target: Target) -> Vec<u8> {
        let seed = self.seed(target);
        let mut d = seed.bytes.clone();
        let rounds = 1 + rng.below(2);
        for _ in 0..rounds {
            match (rng.below(8), &seed.shape) {
                (0, _) => truncate(rng, &mut d),
                (1..=3, _) | (_, None) => mutate(rng, &mut d, &seed.hot),
                (4 | 5, Some(shape)) => mutate_fields(rng, &mut d, shape),
                (_, Some(shape)) => mutate_sizes(rng, &mut d, shape),
            }
            if d.len() < seed.bytes.len() {
                break; // offsets of the seed's shape no longer hold
            }
        }
        d
    }

    /// A file holding `data` (for readers that take paths).
    fn file(&self, data: &[u8]) -> PathBuf {
        let n = self.counter.fetch_add(1, Relaxed);
        let path = self.scratch.path().join(format!("input-{n}"));
        std::fs::write(&path, data).expect("writing a scratch input");
        path
    }

    /// Give `input` to `target`'s reader. Results do not matter, only
    /// that there is one, soon, within bounded memory.
    fn exercise(&self, target: Target, input: &[u8]) {
        let opts = diff_options();
        match target {
            Target::Original => {
                let patched = &self.seed(Target::Patched).bytes;
                let _ = diff_bytes(
                    &self.orig_path,
                    input,
                    &self.patched_path,
                    patched,
                    &self.cdo_xen,
                    &opts,
                );
            }
            Target::Patched => {
                let orig = &self.seed(Target::Original).bytes;
                let _ = diff_bytes(
                    &self.orig_path,
                    orig,
                    &self.patched_path,
                    input,
                    &self.cdo_xen,
                    &opts,
                );
            }
            Target::XenSyms => {
                let path = self.file(input);
                if let Ok(v) = Verifier::new(&path, &[]) {
                    let _ = v.check(&self.seed(Target::Payload).bytes);
                }
                if let Ok(xen) = XenSyms::load(&path) {
                    let _ = diff_bytes(
                        &self.orig_path,
                        &self.seed(Target::Original).bytes,
                        &self.patched_path,
                        &self.seed(Target::Patched).bytes,
                        &xen,
                        &opts,
                    );
                }
                let _ = std::fs::remove_file(&path);
            }
            Target::Payload => {
                let _ = self.verifier.check(input);
                // The link stage's build-id sealing reads payloads too.
                let _ = xsplice_build::link::seal_build_id(&mut input.to_vec());
            }
            Target::Dependency => {
                let path = self.file(input);
                if let Ok(v) = Verifier::new(&self.verify_xen, std::slice::from_ref(&path)) {
                    let _ = v.check(&self.stacked);
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Run one input under the watchdog: `None` when all went well.
pub fn run_one(
    seeds: &Arc<Seeds>,
    target: Target,
    input: Vec<u8>,
    timeout: Duration,
) -> Option<Finding> {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let (tx, rx) = mpsc::channel();
    let s = Arc::clone(seeds);
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name()))
        .spawn(move || {
            let r = guarded(|| s.exercise(target, &input));
            let _ = tx.send(r);
        })
        .expect("spawning a fuzz worker");
    match rx.recv_timeout(timeout) {
        Ok(Ok(())) => {
            let grew = PEAK.load(Relaxed).saturating_sub(base);
            (grew > MEMORY_BOUND).then_some(Finding::Memory(grew))
        }
        Ok(Err(message)) => Some(Finding::Panic(message)),
        // The worker is stuck: it is left behind (the caller stops).
        Err(_) => Some(Finding::Timeout(timeout)),
    }
}

/// Put bytes back to the seed's (and the length back) while the same
/// kind of finding stays: what remains is what causes it.
pub fn minimise(seeds: &Arc<Seeds>, target: Target, input: &[u8], found: &Finding) -> Vec<u8> {
    if matches!(found, Finding::Timeout(_)) {
        return input.to_vec(); // each try would cost a timeout and a stuck thread
    }
    let seed = seeds.seed_bytes(target).to_vec();
    let same = |d: &[u8]| {
        run_one(seeds, target, d.to_vec(), Duration::from_secs(10))
            .is_some_and(|f| f.kind() == found.kind())
    };
    let mut best = input.to_vec();
    // A truncated input keeps its length; otherwise try the seed's tail back.
    for i in 0..best.len().min(seed.len()) {
        if best[i] != seed[i] {
            let mut t = best.clone();
            t[i] = seed[i];
            if same(&t) {
                best = t;
            }
        }
    }
    best
}

/// How a run went.
#[derive(Debug, Default)]
pub struct Summary {
    pub inputs: usize,
    pub per_target: Vec<(Target, usize)>,
    /// Target, what went wrong, the (minimised) input, where it was saved.
    pub findings: Vec<(Target, Finding, Vec<u8>, Option<PathBuf>)>,
}

/// What to run.
pub struct Config {
    pub seed: u64,
    pub duration: Duration,
    pub timeout: Duration,
    /// Where findings (and the input being run) are written.
    pub out: Option<PathBuf>,
}

/// Mutate and run inputs, targets in turn, for `cfg.duration`. Stops at
/// the first timeout (its worker cannot be stopped).
pub fn fuzz(seeds: &Arc<Seeds>, cfg: &Config) -> Summary {
    let mut rng = Rng((0x13f0_0f00_5eed_0001 ^ cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    let mut summary = Summary {
        per_target: Target::ALL.iter().map(|t| (*t, 0)).collect(),
        ..Summary::default()
    };
    if let Some(out) = &cfg.out {
        std::fs::create_dir_all(out).expect("creating the fuzz output directory");
    }
    let start = Instant::now();
    while start.elapsed() < cfg.duration {
        let target = Target::ALL[summary.inputs % Target::ALL.len()];
        let input = seeds.mutant(&mut rng, target);
        if let Some(out) = &cfg.out {
            // Survives an abort (allocation past HARD_LIMIT).
            let _ = std::fs::write(
                out.join(format!("last-input-{}.bin", target.name())),
                &input,
            );
        }
        summary.inputs += 1;
        if let Some(c) = summary.per_target.iter_mut().find(|(t, _)| *t == target) {
            c.1 += 1;
        }
        if let Some(found) = run_one(seeds, target, input.clone(), cfg.timeout) {
            let small = minimise(seeds, target, &input, &found);
            let saved = cfg.out.as_ref().map(|out| {
                let path = out.join(format!(
                    "{}-{}-{:016x}.bin",
                    target.name(),
                    found.kind(),
                    fnv(&small)
                ));
                let _ = std::fs::write(&path, &small);
                path
            });
            let stop = matches!(found, Finding::Timeout(_));
            summary.findings.push((target, found, small, saved));
            if stop {
                break;
            }
        }
    }
    summary
}

/// Stored regression inputs: `DIR/TARGET/*.bin`, target from the folder.
pub fn regression_inputs(dir: &Path) -> Vec<(Target, PathBuf)> {
    let mut out = Vec::new();
    for t in Target::ALL {
        let Ok(entries) = std::fs::read_dir(dir.join(t.name())) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| (t, p)));
    }
    out
}

/// The repository's regression inputs.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/regressions")
}

/// FNV-1a, to name saved inputs by their content.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}
