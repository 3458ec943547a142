//! Shared compiles across a fleet, on the synthetic Xen-like tree: two
//! "builders" with separate work, base-cache and ccache directories share
//! only a Redis server (started here on 127.0.0.1 and stopped at the end);
//! the second builder's base compiles are served from Redis, and its base
//! and payload are bit-identical to the first's and to a build without
//! ccache, under the same base-cache key. Then the compiles are
//! distributed through distccd (also on 127.0.0.1 only), with the same
//! bit-identical result. Needs ccache, redis-server and distcc (ci/setup).

mod support;

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::tree::copy_xenlike;
use support::xenlike_patch_file;

/// A server process, killed when the test ends (also on failure).
struct Service {
    child: Child,
    name: &'static str,
}

impl Drop for Service {
    fn drop(&mut self) {
        // The whole process group: distccd's workers outlive a killed parent.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg("--")
            .arg(format!("-{}", self.child.id()))
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped {}", self.name);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run ci/setup (this test does not skip)"
    );
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{what} did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_redis(dir: &Path) -> (Service, u16) {
    require("redis-server");
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting redis-server");
    let s = Service {
        child,
        name: "redis-server",
    };
    wait_for_port(port, "redis-server");
    (s, port)
}

fn start_distccd(dir: &Path) -> (Service, u16) {
    require("distccd");
    let port = free_port();
    // Its log goes to stderr, kept in a file of ours (distccd drops root).
    let log = fs::File::create(dir.join("distccd.log")).unwrap();
    let child = Command::new("distccd")
        .args(["--no-detach", "--daemon", "--listen", "127.0.0.1"])
        .args(["--port", &port.to_string(), "--allow", "127.0.0.1/32"])
        .args(["--log-stderr", "--log-level", "info", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("starting distccd");
    let s = Service {
        child,
        name: "distccd",
    };
    wait_for_port(port, "distccd");
    (s, port)
}

/// One builder: its own copy of the tree, base cache and ccache directory.
struct Builder {
    root: PathBuf,
}

impl Builder {
    fn new(top: &Path, name: &str) -> Builder {
        let root = top.join(name);
        fs::create_dir_all(&root).unwrap();
        copy_xenlike(&root, "src");
        Builder { root }
    }

    /// Build the kernel-scale patch; `env` configures ccache.
    fn build(&self, out: &str, ccache: bool, env: &[(&str, String)]) -> Value {
        let patch = xenlike_patch_file("kernel-scale");
        let out = self.root.join(out);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xsplice-build"));
        cmd.arg("-s")
            .arg(self.root.join("src"))
            .arg("-p")
            .arg(&patch)
            .arg("-o")
            .arg(&out)
            .arg("--json")
            .arg(out.join("report.json"))
            .arg("--cache-dir")
            .arg(self.root.join("base-cache"))
            .arg("-q")
            .env("CCACHE_DIR", self.root.join("ccache"))
            .env("CCACHE_NOHASHDIR", "1")
            .env("CCACHE_BASEDIR", &self.root);
        if ccache {
            cmd.arg("--ccache");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let o = cmd.output().unwrap();
        assert!(
            o.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap()
    }

    /// ccache's counters for this builder, as `key value` lines.
    fn stats(&self) -> String {
        let o = Command::new("ccache")
            .arg("--print-stats")
            .env("CCACHE_DIR", self.root.join("ccache"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    fn stat(&self, key: &str) -> u64 {
        let stats = self.stats();
        stats
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('\t')?;
                (k == key).then(|| v.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {key} in ccache stats:\n{stats}"))
    }
}

fn bytes(report: &Value, field: &str) -> Vec<u8> {
    let path = match field {
        "payload" => report["payload"].as_str().unwrap().to_string(),
        _ => report["base"]["xen_syms"].as_str().unwrap().to_string(),
    };
    fs::read(path).unwrap()
}

#[test]
fn builders_share_compiles_through_redis_and_distcc_bit_identically() {
    require("ccache");
    let top = tempfile::tempdir().unwrap();
    let (_redis, port) = start_redis(top.path());
    let remote = ("CCACHE_REMOTE_STORAGE", format!("redis://127.0.0.1:{port}"));

    // Reference: no ccache at all.
    let plain = Builder::new(top.path(), "plain").build("out", false, &[]);

    // Builder A fills Redis; builder B, sharing nothing else, is served from it.
    let a = Builder::new(top.path(), "a");
    let ra = a.build("out", true, std::slice::from_ref(&remote));
    let b = Builder::new(top.path(), "b");
    let rb = b.build("out", true, std::slice::from_ref(&remote));
    assert_eq!(ra["base"]["cached"], false);
    assert_eq!(rb["base"]["cached"], false, "B must build its own base");
    assert!(a.stat("remote_storage_miss") > 0, "{}", a.stats());
    let hits = b.stat("remote_storage_hit");
    let misses = b.stat("remote_storage_miss");
    assert!(hits > 0, "B got nothing from Redis:\n{}", b.stats());
    eprintln!("builder B: {hits} remote hit(s), {misses} miss(es)");

    // Same key, same base, same payload, with or without ccache.
    for r in [&ra, &rb] {
        assert_eq!(r["base"]["key"], plain["base"]["key"]);
        assert_eq!(r["base_build_id"], plain["base_build_id"]);
        assert_eq!(bytes(r, "xen_syms"), bytes(&plain, "xen_syms"));
        assert_eq!(bytes(r, "payload"), bytes(&plain, "payload"));
    }

    // Distributed: ccache hands its misses to distcc, which compiles on distccd.
    require("distcc");
    let (_distccd, dport) = start_distccd(top.path());
    let c = Builder::new(top.path(), "c");
    let rc = c.build(
        "out",
        true,
        &[
            ("CCACHE_PREFIX", "distcc".to_string()),
            ("DISTCC_HOSTS", format!("127.0.0.1:{dport}/2")),
            ("DISTCC_FALLBACK", "0".to_string()),
            ("DISTCC_SKIP_LOCAL_RETRY", "1".to_string()),
        ],
    );
    let log = fs::read_to_string(top.path().join("distccd.log")).unwrap_or_default();
    assert!(
        log.contains("COMPILE_OK") || log.contains("job complete"),
        "distccd compiled nothing:\n{log}"
    );
    assert_eq!(rc["base"]["key"], plain["base"]["key"]);
    assert_eq!(bytes(&rc, "xen_syms"), bytes(&plain, "xen_syms"));
    assert_eq!(bytes(&rc, "payload"), bytes(&plain, "payload"));
}
