//! Payloads for the hypervisor Debian ships (bookworm's
//! xen-hypervisor-4.17-amd64 4.17.5+72-g01140da4e8-1), built from Debian's
//! source package (XSPLICE_DEBIAN_TREE) against what Debian shipped
//! (XSPLICE_DEBIAN_SHIPPED: boot/xen-4.17-amd64.{gz,config} and the -dbg
//! package's xen-syms, which has no DWARF), with no option but the tree,
//! the .config, the xen-syms and the patch:
//! - the rebuilt base is Debian's binary bit for bit (build-id, and the
//!   booted `xen` equal to the shipped xen-4.17-amd64.gz);
//! - hello-world, hooks, static-bug-frame and a security-style fix in a
//!   static function build, depend on the shipped build-id and pass
//!   `verify` against the shipped xen-syms;
//! - mismatched pairs are refused before any build, naming what differs.
//!
//! `ci/xen-source.sh DIR debian-4.17` provides both; ci/test sets the
//! variables. The Debian base is built once into the shared cache.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use create_diff_object::notes;
use object::{Object, ObjectSection};
use support::payload::note_hex;
use support::{build_options, env_path, project, sample_patch, xen_tree};
use xsplice_build::verify::Verifier;
use xsplice_build::{build_payload, BuildOptions, BuildResult, Error};

/// The build-id of Debian's xen-syms-4.17-amd64.
const SHIPPED_ID: &str = "39a640e6f1412319235087391df9f1c5e13ae920";

fn debian_tree() -> PathBuf {
    env_path(
        "XSPLICE_DEBIAN_TREE",
        "Debian's Xen 4.17 source package, unpacked with its patches (`ci/xen-source.sh DIR debian-4.17`)",
    )
}

struct Shipped {
    gz: PathBuf,
    config: PathBuf,
    xen_syms: PathBuf,
}

fn shipped() -> Shipped {
    let dir = env_path(
        "XSPLICE_DEBIAN_SHIPPED",
        "what Debian shipped (xen-hypervisor-4.17-amd64 and its -dbg package, unpacked; `ci/xen-source.sh DIR debian-4.17`)",
    );
    let s = Shipped {
        gz: dir.join("boot/xen-4.17-amd64.gz"),
        config: dir.join("boot/xen-4.17-amd64.config"),
        xen_syms: dir.join("usr/lib/debug/boot/xen-syms-4.17-amd64"),
    };
    for f in [&s.gz, &s.config, &s.xen_syms] {
        assert!(f.is_file(), "{} is missing", f.display());
    }
    s
}

/// Exactly what a Debian admin passes: tree, .config, xen-syms, patch.
fn options(tree: &Path, s: &Shipped, patch: &Path, out: &Path) -> BuildOptions {
    BuildOptions {
        config: Some(s.config.clone()),
        xen_syms: Some(s.xen_syms.clone()),
        json: Some(out.join("report.json")),
        // The shared cache: the Debian base is one full build, made once.
        cache_dir: None,
        ..build_options(tree, patch, out)
    }
}

/// The payload passes the loader's checks against Debian's own xen-syms,
/// with the entry sizes from the (built) base tree, as xen-syms has no DWARF.
fn verify_against_shipped(r: &BuildResult, s: &Shipped) {
    let base_tree = r.xen_syms.parent().unwrap();
    let v = Verifier::with_tree(&s.xen_syms, &[], Some(base_tree)).unwrap();
    let report = v.check(&fs::read(&r.payload).unwrap());
    assert!(
        report.passed(),
        "{}: {:?}",
        r.payload.display(),
        report.failures
    );
    assert!(
        !report.notes.iter().any(|n| n.contains("assumed")),
        "entry sizes must come from the tree: {:?}",
        report.notes
    );
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_DEBIAN_TREE and XSPLICE_DEBIAN_SHIPPED (ci/test sets them)"]
fn debian_base_is_the_shipped_hypervisor_bit_for_bit() {
    let (tree, s) = (debian_tree(), shipped());
    assert_eq!(
        notes::to_hex(&notes::build_id_of_file(&s.xen_syms).unwrap()),
        SHIPPED_ID
    );
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out");
    let patch = sample_patch("hello-world");
    let r = build_payload(&options(&tree, &s, &patch, &out)).unwrap();
    assert_eq!(r.base_build_id, SHIPPED_ID);
    assert_eq!(r.depends, SHIPPED_ID);
    assert_eq!(r.xen_depends, SHIPPED_ID);
    assert_eq!(note_hex(&r.payload, ".livepatch.xen_depends"), SHIPPED_ID);
    assert_eq!(note_hex(&r.payload, ".livepatch.depends"), SHIPPED_ID);
    // The hypervisor Debian boots is the rebuilt xen/xen, byte for byte.
    let booted = Command::new("gzip").arg("-dc").arg(&s.gz).output().unwrap();
    assert!(booted.status.success());
    let rebuilt = fs::read(r.xen_syms.with_file_name("xen")).unwrap();
    assert!(
        booted.stdout == rebuilt,
        "the rebuilt xen/xen differs from {}",
        s.gz.display()
    );
    // No symbol and no loaded byte differs from the shipped xen-syms.
    assert_eq!(
        xsplice_build::target::first_difference(&r.xen_syms, &s.xen_syms),
        None
    );
    // The recipe was detected from the tree, not passed.
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["base"]["recipe"], "debian", "{report:#}");
    verify_against_shipped(&r, &s);
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_DEBIAN_TREE and XSPLICE_DEBIAN_SHIPPED (ci/test sets them)"]
fn debian_samples_and_a_static_function_fix() {
    let (tree, s) = (debian_tree(), shipped());
    let scratch = tempfile::tempdir().unwrap();
    let cases: [(&str, PathBuf, &[&str]); 4] = [
        (
            "hello-world",
            sample_patch("hello-world"),
            &["xen_extra_version"],
        ),
        ("hooks", sample_patch("hooks"), &["xen_extra_version"]),
        ("static-bug-frame", sample_patch("static-bug-frame"), &[]),
        (
            "evtchn-fifo-control-block",
            project().join("tests/debian/evtchn-fifo-control-block.diff"),
            &[
                "common/event_fifo.c#map_control_block",
                "common/event_fifo.c#evtchn_fifo_set_priority",
            ],
        ),
    ];
    // IBT: the fix's cf_check function starts with endbr64 in Debian's
    // binary; the loader writes its jump after it (verify checks the room).
    let syms = create_diff_object::XenSyms::load(&s.xen_syms).unwrap();
    let cf = syms
        .resolve_runtime_name("common/event_fifo.c#evtchn_fifo_set_priority")
        .unwrap();
    assert_eq!(
        bytes_at(&s.xen_syms, cf.addr, 4),
        create_diff_object::abi::ENDBR64
    );
    for (name, patch, functions) in cases {
        let out = scratch.path().join(name);
        let started = Instant::now();
        let r = build_payload(&options(&tree, &s, &patch, &out))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "{name}: {:.1} s (base cached: {})",
            started.elapsed().as_secs_f64(),
            r.base_cached
        );
        assert_eq!(r.base_build_id, SHIPPED_ID, "{name}");
        assert_eq!(
            note_hex(&r.payload, ".livepatch.xen_depends"),
            SHIPPED_ID,
            "{name}"
        );
        let names: Vec<&str> = r.functions.iter().map(|f| f.name.as_str()).collect();
        assert!(!names.is_empty(), "{name}: no function patched");
        for f in functions {
            assert!(names.contains(f), "{name}: {f} not in {names:?}");
        }
        // Each replaced function is the shipped one: same size.
        for f in &r.functions {
            let shipped = syms
                .resolve_runtime_name(&f.name)
                .unwrap_or_else(|| panic!("{name}: {} not in the shipped xen-syms", f.name));
            assert_eq!(f.old_size, shipped.size, "{name}: {}", f.name);
        }
        verify_against_shipped(&r, &s);
        // And through the CLI, as a user checks a payload.
        let cli = support::verify_command(&r.payload, &s.xen_syms)
            .arg("--xen-tree")
            .arg(r.xen_syms.parent().unwrap())
            .output()
            .unwrap();
        assert!(
            cli.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&cli.stdout),
            String::from_utf8_lossy(&cli.stderr)
        );
    }
}

/// `len` bytes of xen-syms at virtual address `addr`.
fn bytes_at(path: &Path, addr: u64, len: usize) -> Vec<u8> {
    let data = fs::read(path).unwrap();
    let file = object::File::parse(&*data).unwrap();
    file.sections()
        .find_map(|s| {
            let off = addr.checked_sub(s.address())?;
            let d = s.data().ok()?;
            d.get(off as usize..off as usize + len).map(<[u8]>::to_vec)
        })
        .unwrap()
}

fn refused_fast(opts: &BuildOptions, what: &str) -> String {
    let started = Instant::now();
    let e = build_payload(opts).unwrap_err();
    let took = started.elapsed();
    assert!(matches!(e, Error::Mismatch(_)), "{what}: {e}");
    // Before any build: no compiler ran, no base was made.
    assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
    assert!(!opts.output.join("build.log").exists(), "{what}: {e}");
    e.to_string()
}

#[test]
#[ignore = "real-Xen tier: needs XSPLICE_DEBIAN_TREE, XSPLICE_DEBIAN_SHIPPED and XSPLICE_XEN_TREE (ci/test sets them)"]
fn mismatched_pairs_are_refused_before_any_build() {
    let (tree, s) = (debian_tree(), shipped());
    let upstream = xen_tree("XSPLICE_XEN_TREE");
    let scratch = tempfile::tempdir().unwrap();
    let patch = sample_patch("hello-world");

    // Debian's tree with a .config Debian did not build with.
    let config = scratch.path().join("other.config");
    let text = fs::read_to_string(&s.config).unwrap();
    assert!(text.contains("CONFIG_XEN_IBT=y"));
    fs::write(
        &config,
        text.replace("CONFIG_XEN_IBT=y", "# CONFIG_XEN_IBT is not set"),
    )
    .unwrap();
    let mut opts = options(&tree, &s, &patch, &scratch.path().join("a"));
    opts.config = Some(config);
    let e = refused_fast(&opts, "Debian tree, other .config");
    assert!(e.contains("CONFIG_XEN_IBT"), "{e}");

    // The upstream tree with Debian's binary.
    let opts = options(&upstream, &s, &patch, &scratch.path().join("b"));
    let e = refused_fast(&opts, "upstream tree, Debian's xen-syms");
    assert!(e.contains("xen_compile_by"), "{e}");

    // What a refusal after the base stage would name: where the two
    // binaries first differ.
    let d = xsplice_build::target::first_difference(&upstream.join("xen/xen-syms"), &s.xen_syms)
        .expect("the upstream and Debian binaries differ");
    assert!(d.contains("only in") || d.contains(" is at "), "{d}");

    // Debian's tree with the upstream tree's own binary.
    let mut opts = options(&tree, &s, &patch, &scratch.path().join("c"));
    opts.xen_syms = Some(upstream.join("xen/xen-syms"));
    opts.config = Some(upstream.join("xen/.config"));
    let e = refused_fast(&opts, "Debian tree, upstream xen-syms");
    assert!(e.contains("xen_compile_system"), "{e}");
}
