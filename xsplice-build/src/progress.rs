//! Progress lines (one per stage, with elapsed time, on stderr) and the
//! build log that collects every command's output.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use crate::{Error, StageTime};

/// `DIR/build.log`: all make/patch/ld/objcopy output and the diff findings.
pub struct Log {
    path: PathBuf,
    file: Mutex<File>,
}

impl Log {
    pub fn create(path: &Path) -> Result<Log, Error> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        Ok(Log {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line.
    pub fn line(&self, text: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{text}");
        }
    }

    fn handle(&self) -> Result<File, Error> {
        let f = self
            .file
            .lock()
            .map_err(|_| Error::Input(crate::error::Problem::LogPoisoned))?;
        f.try_clone().map_err(|e| Error::io(&self.path, e))
    }

    /// How many bytes the log holds so far (for [`Log::text_since`]).
    pub fn position(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// What was logged after `position` (a command's output).
    pub fn text_since(&self, position: u64) -> String {
        let data = std::fs::read(&self.path).unwrap_or_default();
        let start = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(data.len());
        String::from_utf8_lossy(&data[start..]).into_owned()
    }

    /// Run `cmd` with its output appended to the log; fail with `what` if it fails.
    pub fn run(&self, cmd: &mut Command, what: &str) -> Result<(), Error> {
        self.line(&format!("$ {}", describe(cmd)));
        let start = Instant::now();
        let out = self.handle()?;
        let err = self.handle()?;
        let status = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| Error::Command {
                what: format!(
                    "{what}: cannot run {}: {e}",
                    cmd.get_program().to_string_lossy()
                ),
                log: None,
            })?;
        self.line(&format!("# {:.2} s", start.elapsed().as_secs_f64()));
        if status.success() {
            Ok(())
        } else {
            self.line(&format!("# {what}: {status}"));
            Err(Error::Command {
                what: format!("{what} ({status})"),
                log: Some(self.path.clone()),
            })
        }
    }
}

/// A command as a shell-like line, for the log.
pub fn describe(cmd: &Command) -> String {
    let mut s = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!("(cd {}) ", dir.display()));
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Stage timer: prints `xsplice-build: STAGE: DETAIL (N.NN s)` when a stage ends.
pub struct Progress {
    quiet: bool,
    pub timings: Vec<StageTime>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            timings: Vec::new(),
        }
    }

    /// A warning: something the user must know about a payload that was
    /// built. Printed even with `--quiet`, which only silences progress.
    pub fn warn(&self, log: Option<&Log>, text: &str) {
        if let Some(log) = log {
            log.line(&format!("warning: {text}"));
        }
        eprintln!("xsplice-build: warning: {text}");
    }

    /// Run one stage; `f` returns its value and a one-line summary.
    pub fn stage<T>(
        &mut self,
        name: &'static str,
        log: Option<&Log>,
        f: impl FnOnce() -> Result<(T, String), Error>,
    ) -> Result<T, Error> {
        let start = Instant::now();
        if let Some(log) = log {
            log.line(&format!("== {name}"));
        }
        let result = f();
        let elapsed = start.elapsed();
        self.timings.push(StageTime {
            stage: name,
            elapsed,
        });
        let summary = match &result {
            Ok((_, detail)) => detail.clone(),
            Err(_) => "failed".to_string(),
        };
        let line = format!("{name}: {summary} ({:.2} s)", elapsed.as_secs_f64());
        if let Some(log) = log {
            log.line(&format!("== {line}"));
        }
        // A failed stage says nothing here: the error is the one line the user sees.
        if !self.quiet && result.is_ok() {
            eprintln!("xsplice-build: {line}");
        }
        result.map(|(v, _)| v)
    }
}
