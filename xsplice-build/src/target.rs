//! What a hypervisor binary says about how it was built, read offline from
//! its `xen-syms`: the build strings `common/version.c` returns (date,
//! time, compiler, version, and a distro's own strings such as Debian's
//! package version and maintainer), the `.config` embedded when
//! `CONFIG_HYPFS_CONFIG=y`, and the build-id. A distro's build recipe
//! takes its build strings from here, and a tree or `.config` that cannot
//! have produced the binary is refused before anything is built.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use object::{Object, ObjectSection, ObjectSymbol};

use xsplice_target::abi::ENDBR64;

use crate::error::Error;

/// Build facts of one xen-syms.
#[derive(Debug, Clone, Default)]
pub struct TargetFacts {
    pub path: PathBuf,
    pub build_id: Vec<u8>,
    /// Accessor function of `common/version.c` → the string it returns
    /// (`xen_compile_date` → `Sat Nov 29 13:52:25 UTC 2025`). Only the
    /// accessors this binary has (distro patches rename some).
    pub strings: BTreeMap<String, String>,
    /// Every build-string accessor function it defines, readable or not.
    pub accessors: std::collections::BTreeSet<String>,
    /// `xen_major_version()` and `xen_minor_version()`.
    pub version: Option<(u32, u32)>,
    /// The `.config` it was built with (`xen_config_data`, gzip), if embedded.
    pub config: Option<Vec<u8>>,
}

/// String accessors of `common/version.c` (upstream and distro variants).
pub fn is_string_accessor(name: &str) -> bool {
    name.starts_with("xen_compile")
        || matches!(
            name,
            "xen_compiler" | "xen_changeset" | "xen_extra_version" | "xen_build_info"
        )
}

impl TargetFacts {
    pub fn string(&self, accessor: &str) -> Option<&str> {
        self.strings.get(accessor).map(String::as_str)
    }

    /// `4.17.5` from the version accessors.
    pub fn full_version(&self) -> Option<String> {
        let (maj, min) = self.version?;
        Some(format!(
            "{maj}.{min}{}",
            self.string("xen_extra_version").unwrap_or("")
        ))
    }

    /// Read the facts of `path`. A binary without these symbols (not a
    /// Xen build, or a synthetic one) simply has fewer facts.
    pub fn read(path: &Path) -> Result<TargetFacts, Error> {
        let data = fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |what: String| {
            Error::Input(crate::error::Problem::XenSymsMalformed {
                path: path.to_path_buf(),
                what,
            })
        };
        let file = object::File::parse(&*data).map_err(|e| bad(format!("not an ELF file: {e}")))?;
        let build_id = file
            .build_id()
            .ok()
            .flatten()
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let image = Image::new(&file);
        let mut facts = TargetFacts {
            path: path.to_path_buf(),
            build_id,
            ..TargetFacts::default()
        };
        let mut config = (None, None);
        let mut version = (None, None);
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            if sym.is_undefined() {
                continue;
            }
            match name {
                "xen_major_version" => version.0 = image.returned_u32(sym.address()),
                "xen_minor_version" => version.1 = image.returned_u32(sym.address()),
                "xen_config_data" => config.0 = Some(sym.address()),
                "xen_config_data_size" => {
                    config.1 = image
                        .read(sym.address(), 4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                }
                n if is_string_accessor(n) && sym.is_global() => {
                    facts.accessors.insert(n.to_string());
                    if let Some(s) = image.returned_string(sym.address()) {
                        facts.strings.insert(n.to_string(), s);
                    }
                }
                _ => {}
            }
        }
        if let (Some(a), Some(b)) = version {
            facts.version = Some((a, b));
        }
        if let (Some(addr), Some(size)) = config {
            let gz = image
                .read(addr, u64::from(size))
                .ok_or_else(|| bad("xen_config_data lies outside the file's sections".into()))?;
            facts.config = Some(gunzip(gz).map_err(|e| bad(format!("xen_config_data: {e}")))?);
        }
        Ok(facts)
    }
}

/// The loaded sections of an executable, addressed by virtual address.
struct Image<'a> {
    sections: Vec<(u64, &'a [u8])>,
}

impl<'a> Image<'a> {
    fn new(file: &object::File<'a>) -> Image<'a> {
        let sections = file
            .sections()
            .filter(|s| s.address() != 0)
            .filter_map(|s| s.data().ok().map(|d| (s.address(), d)))
            .collect();
        Image { sections }
    }

    fn read(&self, addr: u64, len: u64) -> Option<&'a [u8]> {
        self.sections.iter().find_map(|(start, data)| {
            let off = addr.checked_sub(*start)?;
            let end = off.checked_add(len)?;
            data.get(usize::try_from(off).ok()?..usize::try_from(end).ok()?)
        })
    }

    /// The code of a function, past an `endbr64`.
    fn code(&self, addr: u64) -> Option<(u64, &'a [u8])> {
        let head = self.read(addr, 16)?;
        if head.starts_with(&ENDBR64) {
            Some((addr + 4, &head[4..]))
        } else {
            Some((addr, head))
        }
    }

    /// What `const char *f(void) { return "..."; }` returns: compiled as
    /// `lea disp32(%rip), %rax` first.
    fn returned_string(&self, addr: u64) -> Option<String> {
        let (at, code) = self.code(addr)?;
        if code.get(..3)? != [0x48, 0x8d, 0x05] {
            return None;
        }
        let disp = i32::from_le_bytes(code.get(3..7)?.try_into().ok()?);
        let target = (at + 7).checked_add_signed(i64::from(disp))?;
        let (start, data) = self
            .sections
            .iter()
            .find(|(s, d)| target >= *s && target - *s < d.len() as u64)?;
        let tail = &data[usize::try_from(target - start).ok()?..];
        let end = tail.iter().position(|&b| b == 0)?;
        String::from_utf8(tail[..end].to_vec()).ok()
    }

    /// What `unsigned int f(void) { return N; }` returns: `mov $N, %eax` first.
    fn returned_u32(&self, addr: u64) -> Option<u32> {
        let (_, code) = self.code(addr)?;
        match code.first()? {
            0xb8 => Some(u32::from_le_bytes(code.get(1..5)?.try_into().ok()?)),
            _ => None,
        }
    }
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run gzip: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("gzip: no stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| format!("gzip: {e}"))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "not gzip data: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The `CONFIG_*` settings of a `.config`, comments and blank lines left
/// out (`# CONFIG_X is not set` counts as unset).
pub fn config_settings(config: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(config)
        .lines()
        .filter_map(|l| l.trim().split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The first difference between two configs' settings, described.
pub fn first_config_difference(ours: &[u8], theirs: &[u8]) -> Option<String> {
    let a = config_settings(ours);
    let b = config_settings(theirs);
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let found = keys.into_iter().find_map(|k| {
        let (x, y) = (a.get(k), b.get(k));
        (x != y).then(|| {
            let show = |v: Option<&String>| v.map_or("not set".to_string(), |v| v.clone());
            format!(
                "{k} is {} in the .config but {} in xen-syms",
                show(x),
                show(y)
            )
        })
    });
    found
}

/// Where two hypervisor binaries first differ, for a refusal's message:
/// the first symbol (by address) whose address or size differs or that
/// only one has, else the first differing byte of a loaded section and
/// the symbol it falls in. `None` when neither is found.
pub fn first_difference(ours: &Path, theirs: &Path) -> Option<String> {
    use xsplice_target::XenSyms;
    let (a, b) = (XenSyms::load(ours).ok()?, XenSyms::load(theirs).ok()?);
    let layout = |x: &XenSyms| -> BTreeMap<String, (u64, u64)> {
        x.symbols()
            .iter()
            .map(|s| (x.runtime_name(s), (s.addr, s.size)))
            .collect()
    };
    let (la, lb) = (layout(&a), layout(&b));
    // By address; at one address a symbol only one side has (the cause)
    // before those it moved.
    let mut diffs: Vec<(u64, u8, String)> = Vec::new();
    for (name, &(addr, size)) in &la {
        match lb.get(name) {
            Some(&(addr2, size2)) if (addr2, size2) != (addr, size) => diffs.push((
                addr.min(addr2),
                1,
                format!(
                    "{name} is at {addr:#x} ({size} bytes) in the rebuilt base, at {addr2:#x} ({size2} bytes) in xen-syms"
                ),
            )),
            None => diffs.push((
                addr,
                0,
                format!("{name} ({addr:#x}) is only in the rebuilt base"),
            )),
            _ => {}
        }
    }
    for (name, &(addr, _)) in &lb {
        if !la.contains_key(name) {
            diffs.push((addr, 0, format!("{name} ({addr:#x}) is only in xen-syms")));
        }
    }
    if let Some((_, _, d)) = diffs.into_iter().min() {
        return Some(d);
    }
    // Same layout: the first differing byte of the loaded image.
    let (da, db) = (fs::read(ours).ok()?, fs::read(theirs).ok()?);
    let (fa, fb) = (
        object::File::parse(&*da).ok()?,
        object::File::parse(&*db).ok()?,
    );
    for sa in fa.sections().filter(|s| s.address() != 0) {
        let name = sa.name().ok()?;
        let sb = fb.section_by_name(name)?;
        let (xa, xb) = (sa.data().ok()?, sb.data().ok()?);
        if let Some(i) = xa.iter().zip(xb).position(|(p, q)| p != q) {
            let at = sa.address() + i as u64;
            let sym = a
                .symbols()
                .iter()
                .filter(|s| s.addr <= at && at < s.addr + s.size.max(1))
                .map(|s| a.runtime_name(s))
                .next()
                .unwrap_or_else(|| "no symbol".into());
            return Some(format!("first differing byte at {at:#x} in {name} ({sym})"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_difference_names_the_first_option() {
        let a = b"# comment\nCONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n";
        let b = b"CONFIG_A=y\n\nCONFIG_B=n\n";
        assert_eq!(
            first_config_difference(a, b).unwrap(),
            "CONFIG_B is y in the .config but n in xen-syms"
        );
        let c = b"CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=1\n";
        assert_eq!(
            first_config_difference(a, c).unwrap(),
            "CONFIG_D is not set in the .config but 1 in xen-syms"
        );
        assert!(first_config_difference(a, b"CONFIG_B=y\nCONFIG_A=y").is_none());
    }

    #[test]
    fn unreadable_binaries_are_errors_and_bare_ones_have_no_facts() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        fs::write(&junk, b"\x7fELF not really").unwrap();
        let e = TargetFacts::read(&junk).unwrap_err().to_string();
        assert!(e.contains("not an ELF file"), "{e}");
        assert!(TargetFacts::read(&dir.path().join("missing")).is_err());
        // An ELF file without Xen's build-string functions: no facts, no error.
        let mut obj = object::write::Object::new(
            object::BinaryFormat::Elf,
            object::Architecture::X86_64,
            object::Endianness::Little,
        );
        obj.add_section(vec![], b".text".to_vec(), object::SectionKind::Text);
        let bare = dir.path().join("bare.o");
        fs::write(&bare, obj.write().unwrap()).unwrap();
        let f = TargetFacts::read(&bare).unwrap();
        assert!(f.strings.is_empty() && f.accessors.is_empty());
        assert!(f.version.is_none() && f.config.is_none() && f.build_id.is_empty());
        assert!(gunzip(b"not gzip").is_err());
    }

    #[test]
    fn accessors_are_read_past_endbr64() {
        // lea 0x9(%rip),%rax ; ret ; pad ; "hi\0" at 0x1000 + 4 + 7 + 9.
        let mut text = ENDBR64.to_vec();
        text.extend([0x48, 0x8d, 0x05, 9, 0, 0, 0, 0xc3]);
        text.resize(20, 0x90);
        text.extend(b"hi\0");
        let img = Image {
            sections: vec![(0x1000, &text[..])],
        };
        assert_eq!(img.returned_string(0x1000).as_deref(), Some("hi"));
        let mov = [0xb8, 17, 0, 0, 0, 0xc3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let img = Image {
            sections: vec![(0x2000, &mov[..])],
        };
        assert_eq!(img.returned_u32(0x2000), Some(17));
        assert_eq!(img.returned_string(0x2000), None);
    }
}
