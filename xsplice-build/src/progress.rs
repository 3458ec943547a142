//! Progress lines (one per stage, with elapsed time, on stderr) and the
//! build log that collects every command's output.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::stages::StageTime;

/// `DIR/build.log`: all make/patch/ld/objcopy output and the diff findings.
pub struct Log {
    path: PathBuf,
    file: Mutex<File>,
    /// The first write to the log that failed: the log is cut from there.
    write_error: Mutex<Option<std::io::Error>>,
    /// Directories the run writes to, whose file systems a failed
    /// command may have filled (the cache; the log's own is always one).
    places: Mutex<Vec<PathBuf>>,
}

impl Log {
    pub fn create(path: &Path) -> Result<Log, Error> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let own = path.parent().map(Path::to_path_buf).into_iter().collect();
        Ok(Log {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            write_error: Mutex::new(None),
            places: Mutex::new(own),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line.
    pub fn line(&self, text: &str) {
        if let Ok(mut f) = self.file.lock() {
            if let Err(e) = writeln!(f, "{text}") {
                self.write_failed(e);
            }
        }
    }

    fn write_failed(&self, e: std::io::Error) {
        if let Ok(mut first) = self.write_error.lock() {
            first.get_or_insert(e);
        }
    }

    /// Why the log is incomplete, when a write to it failed (its lines,
    /// or a command's output, found the disk full).
    pub fn cut(&self) -> Option<String> {
        let first = self.write_error.lock().ok()?;
        let e = first.as_ref()?;
        Some(format!("{}: {e}", self.path.display()))
    }

    /// A directory the run writes to (see `places`).
    pub fn watch(&self, dir: &Path) {
        if let Ok(mut places) = self.places.lock() {
            places.push(dir.to_path_buf());
        }
    }

    /// Why a command that failed may have failed for a full disk: the
    /// first line of its output (logged after `from`) quoting the
    /// system's message for ENOSPC, else a watched file system with no
    /// space left (the log itself may then hold no output).
    fn disk_full_evidence(&self, from: u64) -> Option<String> {
        let message = no_space_message();
        if let Some(line) = self.text_since(from).lines().find(|l| l.contains(&message)) {
            return Some(line.trim().to_string());
        }
        if let Some(cut) = self.cut() {
            return Some(cut);
        }
        let places = self.places.lock().ok()?;
        places
            .iter()
            .find(|d| free_bytes(d) == Some(0))
            .map(|d| format!("{}: the file system has no space left", d.display()))
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
        // Only a regular file ends (a log sent to a device may not).
        if !std::fs::metadata(&self.path).is_ok_and(|m| m.is_file()) {
            return String::new();
        }
        let data = std::fs::read(&self.path).unwrap_or_default();
        let start = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(data.len());
        String::from_utf8_lossy(&data[start..]).into_owned()
    }

    /// Run `cmd` with its output appended to the log; fail with `what` if it fails.
    pub fn run(&self, cmd: &mut Command, what: &str) -> Result<(), Error> {
        self.line(&format!("$ {}", describe(cmd)));
        let from = self.position();
        let start = Instant::now();
        let out = self.handle()?;
        let err = self.handle()?;
        die_with_this_process(cmd);
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
            if let Some(evidence) = self.disk_full_evidence(from) {
                return Err(Error::DiskFull {
                    what: format!("{what} ({status})"),
                    evidence,
                    log: Some(self.path.clone()),
                });
            }
            Err(Error::Command {
                what: format!("{what} ({status})"),
                log: Some(self.path.clone()),
            })
        }
    }
}

/// Have the kernel SIGKILL `cmd` when this process dies (killed, too):
/// a copy or make left running after the run would go on writing into
/// the cache. The command stays in this process's group, so a signal to
/// the group (a terminal's Ctrl-C) reaches it as well.
fn die_with_this_process(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and makes only
    // async-signal-safe system calls.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the request took effect.
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

/// The system's own words for ENOSPC, as programs print them
/// (`strerror`), without the "(os error N)" the standard library adds.
fn no_space_message() -> String {
    let text = std::io::Error::from_raw_os_error(libc::ENOSPC).to_string();
    match text.split_once(" (os error") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

/// The bytes an unprivileged writer may still use on `dir`'s file system.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a zeroed struct the call fills.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
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

/// How a long step shows how far it is: a bar on a terminal, a plain line
/// every [`PLAIN_EVERY`] otherwise (a log, a CI job), nothing with `-q`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    Bar,
    Lines,
    Nothing,
}

/// How often a plain progress line is printed when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Show {
    /// For this process: from `-q` and whether stderr is a terminal.
    pub fn for_stderr(quiet: bool) -> Show {
        if quiet {
            Show::Nothing
        } else if std::io::stderr().is_terminal() {
            Show::Bar
        } else {
            Show::Lines
        }
    }

    /// A line before a long step (nothing with `-q`).
    pub fn say(self, log: &Log, text: &str) {
        log.line(&format!("# {text}"));
        if self != Show::Nothing {
            eprintln!("xsplice-build: {text}");
        }
    }

    /// Follow the compiles `log` records from now on, against an
    /// estimated `total`, until the returned watch is dropped.
    pub fn watch_compiles(self, log: &Log, stage: &'static str, total: u64) -> Option<Watch> {
        if self == Show::Nothing {
            return None;
        }
        let mut file = File::open(log.path()).ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || follow(file, self, stage, total, &stopped));
        Some(Watch {
            stop,
            thread: Some(thread),
        })
    }
}

/// A running progress display; dropping it ends the display.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a build-log line is one compile: kbuild's quiet `  CC      x.o`
/// / `  AS      x.o`, or a compiler command line (`... -c x.c -o x.o`).
pub fn is_compile_line(line: &str) -> bool {
    let t = line.trim();
    match t.split_whitespace().next() {
        Some("CC" | "AS") => true,
        _ => t.contains(" -c ") && t.ends_with(".o"),
    }
}

/// `1 min 30 s`, `45 s`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

fn follow(mut file: File, show: Show, stage: &'static str, total: u64, stop: &AtomicBool) {
    let start = Instant::now();
    let bar = (show == Show::Bar).then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        // Short enough for an 80-column terminal with 4-digit counts.
        if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
            "{stage}: [{{bar:20}}] {{pos}}/{{len}} objects, {{elapsed}} elapsed, about {{eta}} left"
        )) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut compiled: u64 = 0;
    let mut partial = String::new();
    let mut last_line = Instant::now();
    let mut buf = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        buf.clear();
        if file.read_to_end(&mut buf).is_ok() && !buf.is_empty() {
            partial.push_str(&String::from_utf8_lossy(&buf));
            while let Some(end) = partial.find('\n') {
                if is_compile_line(&partial[..end]) {
                    compiled += 1;
                }
                partial.drain(..=end);
            }
        }
        // The estimate may fall short: the count never runs past it.
        let total = total.max(compiled);
        match &bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(compiled);
            }
            None if last_line.elapsed() >= PLAIN_EVERY && !stopping => {
                last_line = Instant::now();
                let elapsed = start.elapsed();
                let left = (compiled > 0)
                    .then(|| elapsed.mul_f64((total - compiled) as f64 / compiled as f64));
                eprintln!(
                    "xsplice-build: {stage}: {compiled}/{total} objects compiled, {} elapsed{}",
                    duration_text(elapsed),
                    left.map(|l| format!(", about {} left", duration_text(l)))
                        .unwrap_or_default()
                );
            }
            None => {}
        }
        if stopping {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            timings: Vec::new(),
        }
    }

    /// How this run shows a long step's progress.
    pub fn show(&self) -> Show {
        Show::for_stderr(self.quiet)
    }

    /// A warning: something the user must know about a payload that was
    /// built. Printed even with `--quiet`, which only silences progress.
    pub fn warn(&self, log: Option<&Log>, text: &str) {
        if let Some(log) = log {
            log.line(&format!("warning: {text}"));
        }
        eprintln!("xsplice-build: warning: {text}");
    }

    /// A line of the run's summary (what the payload patches): in the
    /// log, and on stderr unless quiet.
    pub fn note(&self, log: Option<&Log>, text: &str) {
        if let Some(log) = log {
            log.line(text);
        }
        if !self.quiet {
            eprintln!("xsplice-build: {text}");
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles as kbuild prints them quietly and as a plain Makefile
    /// echoes them; host tools, links and generated files are not counted.
    #[test]
    fn compile_lines_are_counted() {
        for yes in [
            "  CC      common/version.o",
            "  AS      arch/x86/entry.o",
            "gcc -O2 -c common/kernel.c -o common/kernel.o",
        ] {
            assert!(is_compile_line(yes), "{yes}");
        }
        for no in [
            "  HOSTCC  tools/kconfig/conf.o",
            "  LD      prelink.o",
            "  GEN     arch/x86/include/asm/asm-offsets.h",
            "ld --build-id=sha1 -o xen-syms common/kernel.o",
            "",
        ] {
            assert!(!is_compile_line(no), "{no}");
        }
        assert_eq!(duration_text(Duration::from_secs(95)), "1 min 35 s");
        assert_eq!(duration_text(Duration::from_secs(7)), "7 s");
    }

    /// A log on a full device (/dev/full fails every write with ENOSPC)
    /// says it is cut, and a command that fails then is a full disk
    /// (the log could hold none of its output), not a bare exit status.
    #[test]
    fn a_log_on_a_full_disk_says_so_and_failures_are_disk_full() {
        let log = Log::create(Path::new("/dev/full")).unwrap();
        assert_eq!(log.cut(), None);
        log.line("something");
        let cut = log.cut().unwrap();
        assert!(
            cut.starts_with("/dev/full: No space left on device"),
            "{cut}"
        );
        let e = log
            .run(Command::new("sh").args(["-c", "exit 1"]), "a step")
            .unwrap_err();
        assert!(e.is_disk_full(), "{e}");
        assert!(
            e.to_string().starts_with(
                "a step (exit status: 1): no space left on device: /dev/full: No space"
            ),
            "{e}"
        );
    }

    /// A failed command whose output quotes the system's ENOSPC message
    /// is a full disk, quoting that line; other failures are not.
    #[test]
    fn a_command_failing_for_space_is_disk_full() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::create(&dir.path().join("build.log")).unwrap();
        let e = log
            .run(
                Command::new("sh").args([
                    "-c",
                    "echo compiling; echo 'cc1: error writing x.o: No space left on device' >&2; exit 1",
                ]),
                "patched build",
            )
            .unwrap_err();
        assert!(e.is_disk_full());
        assert!(
            e.to_string().contains(
                "patched build (exit status: 1): no space left on device: cc1: error writing x.o: No space left on device"
            ),
            "{e}"
        );
        let e = log
            .run(Command::new("sh").args(["-c", "exit 2"]), "make")
            .unwrap_err();
        assert!(
            !e.is_disk_full() && matches!(e, Error::Command { .. }),
            "{e}"
        );
        let io = Error::io("/x", std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(io.is_disk_full());
    }
}
