//! Xen's recorded Kbuild commands: after building a target, make writes
//! the command it ran to `.TARGET.cmd` beside it, as one makefile line
//! `cmd_TARGET := COMMAND` (the `$` of the shell command doubled, `#`
//! written `$(pound)`). The one reader of those records: the base build's
//! link graph and replays, the layout check's debug compile and the ABI
//! probe all take their commands from here, split into words by `shlex`
//! (POSIX shell quoting).

use std::path::{Path, PathBuf};

/// The record of `target` (a path relative to `xen/`): `DIR/.NAME.cmd`.
pub fn record_path(xen_dir: &Path, target: &str) -> PathBuf {
    let p = Path::new(target);
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
    xen_dir.join(dir).join(format!(".{name}.cmd"))
}

/// Why a record gives no command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandProblem {
    /// The record has no `cmd_TARGET := ` line.
    Missing,
    /// The command holds a make reference (`$(VAR)`), which only make can expand.
    MakeReference,
}

/// The command recorded for `target` in a record's text, as the shell runs it.
pub fn command(record: &str, target: &str) -> Result<String, CommandProblem> {
    let prefix = format!("cmd_{target} := ");
    let line = record
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .ok_or(CommandProblem::Missing)?;
    unescape_make(line).ok_or(CommandProblem::MakeReference)
}

/// The first command a record holds, whatever its target (records name
/// the target as make spelled it, which may differ from the file's path).
pub fn first_command(record: &str) -> Option<String> {
    let line = record.lines().find(|l| l.starts_with("cmd_"))?;
    let (_, command) = line.split_once(" := ")?;
    unescape_make(command)
}

/// A recorded command as make passes it to the shell: kbuild writes `$`
/// as `$$` and `#` as `$(pound)`; any other `$` would be a make
/// reference, which a reader cannot expand.
fn unescape_make(line: &str) -> Option<String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix("(pound)") {
            out.push('#');
            rest = r;
        } else {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// A shell command split into words as the shell would (quotes removed).
pub fn words(command: &str) -> Result<Vec<String>, String> {
    shlex::split(command).ok_or_else(|| "unbalanced quotes or a trailing backslash".to_string())
}

/// Words joined into one shell command line, each quoted where needed.
pub fn join(words: &[String]) -> Result<String, String> {
    shlex::try_join(words.iter().map(String::as_str)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_beside_their_target() {
        assert_eq!(
            record_path(Path::new("/x/xen"), "common/kernel.o"),
            Path::new("/x/xen/common/.kernel.o.cmd")
        );
        assert_eq!(
            record_path(Path::new("/x/xen"), "prelink.o"),
            Path::new("/x/xen/.prelink.o.cmd")
        );
    }

    #[test]
    fn commands_are_read_as_the_shell_runs_them() {
        let rec = "cmd_a.o := gcc -DX='$$y' -DH='$(pound)' -c a.c -o a.o\n\nsource_a.o := a.c\n";
        assert_eq!(
            command(rec, "a.o").unwrap(),
            "gcc -DX='$y' -DH='#' -c a.c -o a.o"
        );
        assert_eq!(command(rec, "b.o"), Err(CommandProblem::Missing));
        assert_eq!(
            command("cmd_a.o := gcc $(CFLAGS) -c a.c\n", "a.o"),
            Err(CommandProblem::MakeReference)
        );
        assert_eq!(
            first_command("x := y\ncmd_./a.o := ld -r -o a.o b.o\n").unwrap(),
            "ld -r -o a.o b.o"
        );
    }

    #[test]
    fn words_follow_shell_quoting() {
        assert_eq!(
            words("gcc -c 'a b' \"c\\\"d\" e\\ f  -o x").unwrap(),
            ["gcc", "-c", "a b", "c\"d", "e f", "-o", "x"]
        );
        assert!(words("gcc 'oops").is_err());
        let w = words("gcc '-DX=$y' -o '/tmp/o u/t.o'").unwrap();
        assert_eq!(words(&join(&w).unwrap()).unwrap(), w);
    }
}
