//! Times the differ on real Xen objects (XSPLICE_XEN_TREE) and reports
//! wall time and peak memory (VmHWM). Each case runs in a child process
//! of this binary so its peak is its own.
//!
//!   XSPLICE_XEN_TREE=/path/to/xen-4.17 cargo bench -p create-diff-object
//!
//! Cases: x86_emulate.o (≈230 KiB) against itself and with one function
//! changed, hvm.o with one function changed (library calls); then the
//! `create-diff-object` command itself, as a separate process each run
//! (CPU user+sys and wall, min and median, peak RSS of the process and
//! its children, e.g. the type-size probe's compiler) on the version.o
//! pair of the hello-world patch and the x86_emulate.o pair. The machine
//! may be shared: compare medians.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use create_diff_object::{diff_objects, Abi, AbiChoice, Options, XenSyms};

#[path = "../tests/support/real_tree.rs"]
mod real_tree;

const ITERATIONS: usize = 50;
const CLI_ITERATIONS: usize = 30;

struct Case {
    name: &'static str,
    rel: &'static str,
    edit: Option<(&'static str, &'static str)>,
}

const CASES: &[Case] = &[
    Case {
        name: "x86_emulate.o vs itself",
        rel: "arch/x86/x86_emulate.c",
        edit: None,
    },
    Case {
        name: "x86_emulate.o, x86emul_cpuid changed",
        rel: "arch/x86/x86_emulate.c",
        edit: Some((
            "    guest_cpuid(current, leaf, subleaf, res);\n",
            "    guest_cpuid(current, leaf, subleaf, res);\n    if ( leaf == 0x4000ffff )\n        res->a = 0x1234;\n",
        )),
    },
    Case {
        name: "hvm.o, hvm_set_efer changed",
        rel: "arch/x86/hvm/hvm.c",
        edit: Some((
            "    value &= ~EFER_LMA;\n",
            "    value &= ~EFER_LMA;\n    if ( value == 0x1234 ) printk(\"odd efer\\n\");\n",
        )),
    },
];

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: run one case, print one result line.
fn run_case(index: usize, orig: &Path, patched: &Path) {
    let case = &CASES[index];
    let xen = real_tree::xen_dir();
    let t = Instant::now();
    let syms = XenSyms::load(&xen.join("xen-syms")).expect("xen-syms");
    let load = t.elapsed();
    let opts = Options {
        abi: AbiChoice::Fixed(Abi::LivepatchV2),
        resolve: true,
        debug: false,
        xen_tree: Some(xen.clone()),
        accept: Vec::new(),
    };
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("out.o");
    let mut times: Vec<Duration> = Vec::with_capacity(ITERATIONS);
    let mut outcome = String::new();
    for _ in 0..ITERATIONS {
        let t = Instant::now();
        let r = diff_objects(orig, patched, &syms, &out, &opts).expect("diff");
        times.push(t.elapsed());
        outcome = match r {
            create_diff_object::Outcome::Written(r) => format!(
                "written, {} entr{}",
                r.changed_functions.len(),
                if r.changed_functions.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ),
            create_diff_object::Outcome::NoChange(_) => "no change".into(),
        };
    }
    times.sort();
    let size = std::fs::metadata(orig).map(|m| m.len()).unwrap_or(0);
    println!(
        "{:<40} {:>4} KiB  min {:>7.2} ms  median {:>7.2} ms  (xen-syms load {:>6.2} ms)  peak {:>6.1} MiB  [{}]",
        case.name,
        size / 1024,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3,
        vm_hwm_kib() as f64 / 1024.0,
        outcome
    );
}

/// One run of a child process: wall, CPU (user+sys) and peak RSS (KiB)
/// from wait4, which counts the process and the children it waited for.
#[allow(clippy::zombie_processes)] // reaped by wait4 below
fn run_measured(cmd: &mut Command) -> (Duration, Duration, u64, i32) {
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    assert!(pid > 0, "wait4 failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (wall, cpu, usage.ru_maxrss as u64, code)
}

/// The CLI on one pair, CLI_ITERATIONS times.
fn bench_cli(name: &str, orig: &Path, patched: &Path, xen: &Path, out: &Path, cache: &Path) {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut peak = 0;
    let mut code = 0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    // Run 0 may compile the type-size probe (once per tree and compiler,
    // as the driver's first run on a base does): reported on its own.
    for i in 0..=CLI_ITERATIONS {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_create-diff-object"));
        cmd.arg(orig)
            .arg(patched)
            .arg(xen.join("xen-syms"))
            .arg(out)
            .arg("--xen-tree")
            .arg(xen)
            .env("XSPLICE_CACHE_DIR", cache);
        let (wall, cpu, rss, c) = run_measured(&mut cmd);
        if i == 0 {
            println!(
                "CLI {:<36} first run: CPU {:>6.2} ms  wall {:>6.2} ms  peak RSS {:>5.1} MiB",
                name,
                ms(cpu),
                ms(wall),
                rss as f64 / 1024.0
            );
            continue;
        }
        walls.push(wall);
        cpus.push(cpu);
        peak = peak.max(rss);
        code = c;
    }
    walls.sort();
    cpus.sort();
    println!(
        "CLI {:<36} CPU min {:>6.2} ms median {:>6.2} ms  wall min {:>6.2} ms median {:>6.2} ms  peak RSS {:>5.1} MiB  [exit {code}]",
        name,
        ms(cpus[0]),
        ms(cpus[cpus.len() / 2]),
        ms(walls[0]),
        ms(walls[walls.len() / 2]),
        peak as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        let index: usize = args[pos + 1].parse().unwrap();
        run_case(index, Path::new(&args[pos + 2]), Path::new(&args[pos + 3]));
        return;
    }
    if std::env::var_os("XSPLICE_XEN_TREE").is_none() {
        eprintln!("diff bench: XSPLICE_XEN_TREE is not set; point it at a built Xen tree (the directory containing xen/)");
        std::process::exit(1);
    }
    let xen = real_tree::xen_dir();
    let tmp = tempfile::tempdir().unwrap();
    let me = std::env::current_exe().unwrap();
    for (i, case) in CASES.iter().enumerate() {
        let orig = xen.join(case.rel.replace(".c", ".o"));
        let patched: PathBuf = match case.edit {
            None => orig.clone(),
            Some((from, to)) => {
                let src = std::fs::read_to_string(xen.join(case.rel)).unwrap();
                assert!(src.contains(from), "{}: edit anchor not found", case.rel);
                let dir = tmp.path().join(i.to_string());
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join(Path::new(case.rel).file_name().unwrap());
                std::fs::write(&path, src.replacen(from, to, 1)).unwrap();
                real_tree::recompile(&xen, case.rel, &path, &dir)
            }
        };
        let st = Command::new(&me)
            .arg("--case")
            .arg(i.to_string())
            .arg(&orig)
            .arg(&patched)
            .status()
            .unwrap();
        assert!(st.success(), "{} failed", case.name);
    }

    // The command line, one process per run (the first run fills the
    // probe cache in a scratch cache directory, as a user's first run would).
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("cli-out.o");
    let version = "common/version.c";
    let src = std::fs::read_to_string(xen.join(version)).unwrap();
    let from = "    return XEN_EXTRAVERSION;\n";
    assert!(src.contains(from), "{version}: edit anchor not found");
    let dir = tmp.path().join("cli-version");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("version.c");
    std::fs::write(
        &path,
        src.replacen(from, "    return \"Hello World\";\n", 1),
    )
    .unwrap();
    let patched = real_tree::recompile(&xen, version, &path, &dir);
    bench_cli(
        "version.o, hello-world",
        &xen.join("common/version.o"),
        &patched,
        &xen,
        &out,
        &cache,
    );
    let emul = tmp.path().join("1").join("x86_emulate.o");
    bench_cli(
        "x86_emulate.o, one function changed",
        &xen.join("arch/x86/x86_emulate.o"),
        &emul,
        &xen,
        &out,
        &cache,
    );
}
