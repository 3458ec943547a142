//! Times the differ on real Xen objects (XSPLICE_XEN_TREE) and reports
//! wall time and peak memory (VmHWM). Each case runs in a child process
//! of this binary so its peak is its own.
//!
//!   XSPLICE_XEN_TREE=/path/to/xen-4.17 cargo bench -p create-diff-object
//!
//! Cases: x86_emulate.o (≈230 KiB) against itself and with one function
//! changed, hvm.o with one function changed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use create_diff_object::{diff_objects, Abi, AbiChoice, Options, XenSyms};

#[path = "../tests/real_tree/mod.rs"]
mod real_tree;

const ITERATIONS: usize = 50;

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
}
