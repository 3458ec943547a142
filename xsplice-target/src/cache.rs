//! Where the tools keep what they cache (base builds, probe results) when
//! no directory is given: `$XSPLICE_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/xsplice-build`, else `~/.cache/xsplice-build`. The
//! driver's `--cache-dir` comes first; the ABI probe keeps its results
//! under `probe/` there.

use std::path::PathBuf;

/// The default cache directory and what chose it, as a hint naming the
/// option or variable a user changes to move it; `None` when neither
/// variable nor `HOME` is set.
pub fn default_dir() -> Option<(PathBuf, &'static str)> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("XSPLICE_CACHE_DIR") {
        return Some((p, "XSPLICE_CACHE_DIR (or --cache-dir)"));
    }
    if let Some(p) = env("XDG_CACHE_HOME") {
        return Some((
            p.join("xsplice-build"),
            "--cache-dir or XSPLICE_CACHE_DIR (it is under XDG_CACHE_HOME)",
        ));
    }
    env("HOME").map(|home| {
        (
            home.join(".cache/xsplice-build"),
            "--cache-dir or XSPLICE_CACHE_DIR (it is under HOME)",
        )
    })
}
