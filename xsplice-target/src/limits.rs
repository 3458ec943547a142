//! What an input file may be, checked before it is read: a regular file
//! (a FIFO would block, a device such as `/dev/zero` never ends, a
//! directory is not data) no larger than the bound of its role. Files are
//! read through a bounded reader, so one that grows while it is read is
//! still refused instead of filling memory. Outputs are written atomically
//! (a temporary file in the same directory, then a rename), so a failure
//! never leaves a truncated file, and never over one of the inputs.
//!
//! The bounds (docs/limits.md): a payload, the loader's 2 MiB
//! (`LIVEPATCH_MAX_SIZE`); an object file, 256 MiB; xen-syms, 512 MiB;
//! a patch or .config, 64 MiB. Measured on Xen 4.17 (defconfig): xen-syms
//! 3 MiB, `prelink.o` 5.2 MiB; objects compiled with `-g` (what
//! `CONFIG_DEBUG_INFO` adds) are 6.5-8x larger, so about 40 MiB for a
//! debug xen-syms or `prelink.o`: the bounds leave more than 6x room.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

pub use crate::bounds::{InputProblem, Role};
use crate::error::Error;

fn refused(path: &Path, problem: InputProblem) -> Error {
    Error::Refused {
        path: path.to_path_buf(),
        problem,
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// Refuse `path` unless it is a regular file within `role`'s bound
/// (following symbolic links). Reads nothing.
pub fn check_input(path: &Path, role: Role) -> Result<u64, Error> {
    let meta = fs::metadata(path).map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(refused(
            path,
            InputProblem::NotRegular {
                kind: kind_of(meta.file_type()),
            },
        ));
    }
    if meta.len() > role.limit() {
        return Err(refused(
            path,
            InputProblem::TooLarge {
                size: meta.len(),
                role,
            },
        ));
    }
    Ok(meta.len())
}

/// Read `path` whole after [`check_input`], never more than `role`'s bound.
pub fn read_input(path: &Path, role: Role) -> Result<Vec<u8>, Error> {
    let len = check_input(path, role)?;
    let file = fs::File::open(path).map_err(|e| io(path, e))?;
    // What was opened may not be what was checked (replaced meanwhile).
    let meta = file.metadata().map_err(|e| io(path, e))?;
    if !meta.is_file() {
        return Err(refused(
            path,
            InputProblem::NotRegular {
                kind: kind_of(meta.file_type()),
            },
        ));
    }
    let limit = role.limit();
    let mut data = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| io(path, e))?;
    if data.len() as u64 > limit {
        return Err(refused(
            path,
            InputProblem::TooLarge {
                size: data.len() as u64,
                role,
            },
        ));
    }
    Ok(data)
}

/// Whether `a` and `b` are the same file (device and inode, through links).
/// `false` when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuse an `output` that is one of `inputs`.
pub fn check_output(output: &Path, inputs: &[&Path]) -> Result<(), Error> {
    match inputs.iter().find(|i| same_file(output, i)) {
        Some(input) => Err(refused(
            output,
            InputProblem::OutputIsInput {
                input: input.to_path_buf(),
            },
        )),
        None => Ok(()),
    }
}

/// The first character of `path` that Xen's build refuses in the
/// directory it builds in: its top Makefile stops with "source directory
/// cannot contain spaces or colons" when the path splits into more than
/// one word on whitespace or `:`. Checked on the path as given and as
/// resolved (make sees the resolved one); a relative path is taken from
/// the current directory.
pub fn unbuildable_path_char(path: &Path) -> Option<char> {
    let bad = |p: &Path| {
        p.to_string_lossy()
            .chars()
            .find(|c| c.is_whitespace() || *c == ':')
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    bad(&absolute).or_else(|| std::fs::canonicalize(path).ok().and_then(|p| bad(&p)))
}

/// Write `data` to `path` atomically: a temporary file in the same
/// directory, renamed over `path` once complete. Mode 0644.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| io(path, e))?;
    tmp.write_all(data).map_err(|e| io(path, e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| io(path, e))?;
    tmp.persist(path).map_err(|e| io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_and_sizes_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_input(dir.path(), Role::Object).unwrap_err();
        assert!(
            matches!(&e, Error::Refused { problem: InputProblem::NotRegular { kind }, .. } if *kind == "a directory"),
            "{e}"
        );
        let e = read_input(Path::new("/dev/zero"), Role::Payload).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        // A sparse file bigger than the bound: refused by its size, unread.
        let big = dir.path().join("big");
        fs::File::create(&big)
            .unwrap()
            .set_len(Role::Payload.limit() + 1)
            .unwrap();
        let e = read_input(&big, Role::Payload).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Refused {
                    problem: InputProblem::TooLarge { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("2 MiB"), "{e}");
        assert_eq!(
            read_input(&big, Role::Object).unwrap().len() as u64,
            2 * 1024 * 1024 + 1
        );
    }

    #[test]
    fn outputs_never_overwrite_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.o");
        fs::write(&a, b"input").unwrap();
        let link = dir.path().join("link.o");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        assert!(check_output(&a, &[&a]).is_err());
        assert!(check_output(&link, &[&a]).is_err());
        assert!(check_output(&dir.path().join("new.o"), &[&a]).is_ok());
        write_atomic(&dir.path().join("new.o"), b"out").unwrap();
        assert_eq!(fs::read(dir.path().join("new.o")).unwrap(), b"out");
        let leftovers = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 3, "no temporary file left behind");
    }
}
