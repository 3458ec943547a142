//! `xsplice-build samples`: build every sample patch in `sample-patches/`
//! and check that the payloads chain the way the hypervisor requires.
//!
//! `sample-patches/samples.list` names the samples in build order, one a
//! line: `NAME [depends=OTHER] [replace]`. `NAME.diff` is the patch and
//! the payload is called `NAME`. `depends=OTHER` stacks the payload on
//! OTHER's (its `.livepatch.depends` is OTHER's build-id); `replace`
//! builds a replace-all payload. After building, every payload's notes are
//! read back from the ELF and checked: `.livepatch.xen_depends` is the
//! hypervisor's build-id, `.livepatch.depends` the build-id of what it
//! stacks on (the hypervisor when nothing), and no two payloads share an id.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind};
use xsplice_target::abi::{Abi, XEN_DEPENDS_SECTION};
use xsplice_target::notes::{self, BUILD_ID_SECTION};

/// The samples' layout: the section names come from the target catalogue.
const ABI: Abi = Abi::LivepatchV2;

use crate::build_id::BuildId;
use crate::error::Error;
use crate::error::{Problem, VerifyFailure};
use crate::options::BuildOptions;

/// The manifest file inside the patches directory.
pub const LIST_FILE: &str = "samples.list";

/// The project's own sample patches (found at run time, so editing a
/// sample needs no rebuild).
pub const DEFAULT_PATCHES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sample-patches");

/// Arguments of `xsplice-build samples`.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplesArgs {
    /// Top of the Xen source tree (the directory holding xen/); never modified.
    #[arg(short = 's', long, value_name = "XEN")]
    pub srcdir: PathBuf,
    /// Output directory: DIR/NAME.livepatch for each sample, DIR/NAME/ its build files.
    #[arg(short = 'o', long, value_name = "DIR", default_value = "samples-out")]
    pub output: PathBuf,
    /// Directory holding samples.list and the .diff files (default: the project's sample-patches/).
    #[arg(long, value_name = "DIR")]
    pub patches: Option<PathBuf>,
    /// Build only this sample and what it stacks on (repeatable).
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
    /// The xen-syms the payloads target (default: XEN/xen/xen-syms when it exists).
    #[arg(long, value_name = "FILE")]
    pub xen_syms: Option<PathBuf>,
    /// The target hypervisor's .config (default: XEN/xen/.config).
    #[arg(short = 'c', long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Parallel jobs for make and diffing (default: number of CPUs).
    #[arg(short = 'j', long = "cpus", value_name = "N", value_parser = crate::options::at_least_one)]
    pub cpus: Option<usize>,
    /// Base-build cache directory (shared with plain builds).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// One line of `samples.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Payload name; the patch is `NAME.diff`.
    pub name: String,
    /// The sample whose payload this one stacks on.
    pub depends: Option<String>,
    /// Build a replace-all payload.
    pub replace: bool,
}

/// Check a sample name: it becomes the payload name, so it must already be
/// what the build would make of the patch's basename (`[A-Za-z0-9_-]`) and
/// fit the loader's name buffer with its NUL.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty sample name".into());
    }
    if name.len() >= xsplice_target::abi::NAME_SIZE {
        return Err(format!(
            "sample name {name:?} is {} characters; the loader takes at most {}",
            name.len(),
            xsplice_target::abi::NAME_SIZE - 1
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "sample name {name:?} has {c:?}; use only A-Z a-z 0-9 _ -"
        ));
    }
    Ok(())
}

/// Parse `samples.list` text: names checked, options known, no duplicates,
/// every `depends=` names a sample, no cycles. Returns the samples in build
/// order (a sample after the one it stacks on, otherwise in file order).
pub fn parse_list(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples: Vec<Sample> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |msg: String| format!("{LIST_FILE} line {}: {msg}", i + 1);
        let mut words = line.split_whitespace();
        let Some(name) = words.next() else { continue };
        check_name(name).map_err(at)?;
        if samples.iter().any(|s| s.name == name) {
            return Err(at(format!("sample {name:?} is listed twice")));
        }
        let mut sample = Sample {
            name: name.to_string(),
            depends: None,
            replace: false,
        };
        for word in words {
            if word == "replace" {
                sample.replace = true;
            } else if let Some(dep) = word.strip_prefix("depends=") {
                if sample.depends.is_some() {
                    return Err(at(format!("{name}: more than one depends=")));
                }
                check_name(dep).map_err(at)?;
                if dep == name {
                    return Err(at(format!("{name} depends on itself")));
                }
                sample.depends = Some(dep.to_string());
            } else {
                return Err(at(format!(
                    "{name}: unknown option {word:?} (known: depends=NAME, replace)"
                )));
            }
        }
        if sample.replace && sample.depends.is_some() {
            return Err(at(format!(
                "{name}: a replace payload depends on the hypervisor only, not on another payload"
            )));
        }
        samples.push(sample);
    }
    if samples.is_empty() {
        return Err(format!("{LIST_FILE} names no sample"));
    }
    for s in &samples {
        if let Some(dep) = &s.depends {
            if !samples.iter().any(|o| &o.name == dep) {
                return Err(format!(
                    "{LIST_FILE}: {} depends on {dep:?}, which is not listed",
                    s.name
                ));
            }
        }
    }
    build_order(&samples)
}

/// Order samples so that each comes after the one it stacks on; stable
/// otherwise. Fails on a dependency cycle.
pub fn build_order(samples: &[Sample]) -> Result<Vec<Sample>, String> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    while out.len() < samples.len() {
        let before = out.len();
        for s in samples {
            if done.contains(s.name.as_str()) {
                continue;
            }
            let ready = match &s.depends {
                Some(dep) => done.contains(dep.as_str()) || !samples.iter().any(|o| &o.name == dep),
                None => true,
            };
            if ready {
                done.insert(&s.name);
                out.push(s.clone());
            }
        }
        if out.len() == before {
            let stuck: Vec<&str> = samples
                .iter()
                .filter(|s| !done.contains(s.name.as_str()))
                .map(|s| s.name.as_str())
                .collect();
            return Err(format!(
                "dependency cycle among samples: {}",
                stuck.join(", ")
            ));
        }
    }
    Ok(out)
}

/// The samples needed to build `only` (each with what it stacks on), in
/// build order; all of them when `only` is empty.
pub fn select(ordered: &[Sample], only: &[String]) -> Result<Vec<Sample>, String> {
    if only.is_empty() {
        return Ok(ordered.to_vec());
    }
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for name in only {
        let mut cur = Some(name.clone());
        while let Some(n) = cur {
            let Some(s) = ordered.iter().find(|s| s.name == n) else {
                return Err(format!("no sample named {n:?} in {LIST_FILE}"));
            };
            if !wanted.insert(n) {
                break;
            }
            cur = s.depends.clone();
        }
    }
    Ok(ordered
        .iter()
        .filter(|s| wanted.contains(&s.name))
        .cloned()
        .collect())
}

/// Read `DIR/samples.list` and check it against the directory: every listed
/// sample has its `.diff`, and every `.diff` is listed (none is skipped quietly).
pub fn load(dir: &Path) -> Result<Vec<Sample>, Error> {
    let list = dir.join(LIST_FILE);
    let text = fs::read_to_string(&list).map_err(|e| Error::io(&list, e))?;
    let samples = parse_list(&text).map_err(|what| {
        Error::Input(Problem::SamplesList {
            dir: dir.to_path_buf(),
            what,
        })
    })?;
    for s in &samples {
        let diff = dir.join(format!("{}.diff", s.name));
        if !diff.is_file() {
            return Err(Error::Input(Problem::SampleMissing {
                list,
                name: s.name.clone(),
                diff,
            }));
        }
    }
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let file = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = file.strip_suffix(".diff") {
            if !samples.iter().any(|s| s.name == stem) {
                return Err(Error::Input(Problem::SampleUnlisted {
                    dir: dir.to_path_buf(),
                    list: dir.join(LIST_FILE),
                    file,
                }));
            }
        }
    }
    Ok(samples)
}

/// What a payload's ELF says about itself, read back from the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayloadInfo {
    /// `.note.gnu.build-id`.
    pub build_id: BuildId,
    /// `.livepatch.depends`.
    pub depends: BuildId,
    /// `.livepatch.xen_depends`.
    pub xen_depends: BuildId,
    /// Every section name with its size.
    pub sections: Vec<(String, u64)>,
    /// Names in the function table (`.livepatch.funcs`), in order.
    pub functions: Vec<String>,
}

impl PayloadInfo {
    /// Parse a payload file.
    pub fn read(path: &Path) -> Result<PayloadInfo, Error> {
        let data = fs::read(path).map_err(|e| Error::io(path, e))?;
        PayloadInfo::parse(&data).map_err(|what| {
            Error::Verify(VerifyFailure::Malformed {
                path: path.to_path_buf(),
                what,
            })
        })
    }

    /// Parse a payload's bytes.
    pub fn parse(data: &[u8]) -> Result<PayloadInfo, String> {
        let file = object::File::parse(data).map_err(|e| format!("not an ELF file: {e}"))?;
        let note = |name: &str| -> Result<BuildId, String> {
            let sec = file
                .section_by_name(name)
                .ok_or_else(|| format!("no {name} section"))?;
            let bytes = sec.data().map_err(|e| format!("{name}: {e}"))?;
            let id = notes::build_id_in(bytes).map_err(|e| format!("{name}: {e}"))?;
            if id.is_empty() {
                return Err(format!("{name}: empty build-id"));
            }
            Ok(BuildId::from_bytes(id))
        };
        let mut info = PayloadInfo {
            build_id: note(BUILD_ID_SECTION)?,
            depends: note(ABI.depends_section())?,
            xen_depends: note(XEN_DEPENDS_SECTION)?,
            ..PayloadInfo::default()
        };
        for sec in file.sections() {
            let name = sec.name().map_err(|e| format!("section name: {e}"))?;
            info.sections.push((name.to_string(), sec.size()));
        }
        if let Some(funcs) = file.section_by_name(ABI.entry_format().section) {
            info.functions = function_names(&file, &funcs)?;
        }
        Ok(info)
    }

    pub fn section_size(&self, name: &str) -> Option<u64> {
        self.sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| *s)
    }
}

/// The `name` strings of a function table: the relocations in it that
/// point at data (the other pointers, `new_addr`/`old_addr`, point at code
/// or at the hypervisor), read as C strings, in table order.
fn function_names(
    file: &object::File<'_>,
    funcs: &object::Section<'_, '_>,
) -> Result<Vec<String>, String> {
    let table = ABI.entry_format().section;
    let mut relocs: Vec<(u64, String)> = Vec::new();
    for (offset, reloc) in funcs.relocations() {
        let RelocationTarget::Symbol(idx) = reloc.target() else {
            continue;
        };
        let sym = file
            .symbol_by_index(idx)
            .map_err(|e| format!("{table} relocation at {offset:#x}: {e}"))?;
        let Some(sec_idx) = sym.section_index() else {
            continue;
        };
        let sec = file
            .section_by_index(sec_idx)
            .map_err(|e| format!("section of {:?}: {e}", sym.name()))?;
        if matches!(sec.kind(), SectionKind::Text) {
            continue;
        }
        let bytes = sec.data().map_err(|e| format!("{:?}: {e}", sec.name()))?;
        let start = i64::try_from(sym.address())
            .ok()
            .and_then(|a| a.checked_add(reloc.addend()))
            .and_then(|a| usize::try_from(a).ok())
            .ok_or_else(|| format!("{table} relocation at {offset:#x}: bad target offset"))?;
        let tail = bytes
            .get(start..)
            .ok_or_else(|| format!("{table} relocation at {offset:#x} points past its section"))?;
        let len = tail
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("function name at {offset:#x} is not NUL-terminated"))?;
        relocs.push((offset, String::from_utf8_lossy(&tail[..len]).into_owned()));
    }
    relocs.sort();
    Ok(relocs.into_iter().map(|(_, n)| n).collect())
}

/// One built sample.
#[derive(Debug, Clone)]
pub struct Built {
    pub sample: Sample,
    /// `DIR/NAME.livepatch`.
    pub payload: PathBuf,
    pub info: PayloadInfo,
}

/// Check the build-id chain of built samples against the hypervisor's id:
/// returns every problem found (empty: all good).
pub fn check_chain(built: &[Built], xen_build_id: &BuildId) -> Vec<String> {
    let mut problems = Vec::new();
    let by_name: BTreeMap<&str, &Built> =
        built.iter().map(|b| (b.sample.name.as_str(), b)).collect();
    let mut ids: BTreeMap<&BuildId, &str> = BTreeMap::new();
    for b in built {
        let name = &b.sample.name;
        if b.info.xen_depends != *xen_build_id {
            problems.push(format!(
                "{name}: {XEN_DEPENDS_SECTION} is {}, the hypervisor's build-id is {xen_build_id}",
                b.info.xen_depends
            ));
        }
        let (want, what) = match &b.sample.depends {
            Some(dep) => match by_name.get(dep.as_str()) {
                Some(d) => (&d.info.build_id, format!("{dep}'s build-id")),
                None => {
                    problems.push(format!("{name}: stacks on {dep}, which was not built"));
                    continue;
                }
            },
            None => (xen_build_id, "the hypervisor's build-id".to_string()),
        };
        if b.info.depends != *want {
            problems.push(format!(
                "{name}: {} is {}, expected {what} {want}",
                ABI.depends_section(),
                b.info.depends
            ));
        }
        if b.info.build_id == *xen_build_id {
            problems.push(format!("{name}: its build-id is the hypervisor's"));
        }
        if let Some(other) = ids.insert(&b.info.build_id, name) {
            problems.push(format!(
                "{name} and {other} have the same build-id {}",
                b.info.build_id
            ));
        }
    }
    problems
}

/// What `build_all` did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The payloads built, in build order.
    pub built: Vec<Built>,
    /// Each failure: the sample's name (or "build-id chain") and why.
    pub failed: Vec<(String, Error)>,
}

/// Build the samples (in order, each stacked payload after the one it
/// depends on) and check the chain. Samples whose dependency failed are
/// not attempted.
pub fn build_all(args: &SamplesArgs, log: &dyn Fn(&str)) -> Result<Outcome, Error> {
    let dir = args
        .patches
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATCHES_DIR));
    let samples = select(&load(&dir)?, &args.only)
        .map_err(|what| Error::Input(Problem::SampleSelection(what)))?;
    // A tree every sample would refuse (not a Xen tree, an unsupported
    // release) is refused once.
    crate::tree::check_tree(&args.srcdir)?;
    let xen_syms = args.xen_syms.clone().or_else(|| {
        let p = args.srcdir.join("xen").join("xen-syms");
        p.is_file().then_some(p)
    });
    fs::create_dir_all(&args.output).map_err(|e| Error::io(&args.output, e))?;

    let mut built: Vec<Built> = Vec::new();
    let mut failed: Vec<(String, Error)> = Vec::new();
    let mut xen_build_id: Option<BuildId> = None;
    for sample in &samples {
        let depends = match &sample.depends {
            Some(dep) => match built.iter().find(|b| &b.sample.name == dep) {
                Some(b) => Some(b.info.build_id.clone()),
                None => {
                    let e = Error::Input(Problem::SampleDependencyFailed {
                        sample: sample.name.clone(),
                        dependency: dep.clone(),
                    });
                    failed.push((sample.name.clone(), e));
                    continue;
                }
            },
            None => None,
        };
        log(&format!(
            "samples: building {}{}",
            sample.name,
            match (&depends, sample.replace) {
                (Some(id), _) => format!(" (depends on {id})"),
                (None, true) => " (replace)".to_string(),
                (None, false) => String::new(),
            }
        ));
        let opts = BuildOptions {
            config: args.config.clone(),
            jobs: args.cpus.unwrap_or(0),
            xen_syms: xen_syms.clone(),
            depends,
            name: Some(sample.name.clone()),
            replace: sample.replace,
            cache_dir: args.cache_dir.clone(),
            quiet: args.quiet,
            ..BuildOptions::new(
                args.srcdir.clone(),
                dir.join(format!("{}.diff", sample.name)),
                args.output.join(&sample.name),
            )
        };
        let result = match crate::pipeline::build_payload(&opts) {
            Ok(r) => r,
            Err(e) => {
                failed.push((sample.name.clone(), e));
                continue;
            }
        };
        let payload = args.output.join(format!("{}.livepatch", sample.name));
        fs::copy(&result.payload, &payload).map_err(|e| Error::io(&payload, e))?;
        let info = PayloadInfo::read(&payload)?;
        if xen_build_id.is_none() {
            xen_build_id = Some(match &xen_syms {
                Some(p) => BuildId::from_bytes(
                    notes::build_id_of_file(p)
                        .map_err(|e| Error::Verify(VerifyFailure::BuildId(e)))?,
                ),
                None => result.base_build_id.clone(),
            });
        }
        println!("{}", payload.display());
        built.push(Built {
            sample: sample.clone(),
            payload,
            info,
        });
    }
    if let Some(xen_id) = &xen_build_id {
        for problem in check_chain(&built, xen_id) {
            failed.push((
                "build-id chain".to_string(),
                Error::Verify(VerifyFailure::Chain(problem)),
            ));
        }
    }
    Ok(Outcome { built, failed })
}

/// Run `xsplice-build samples`; returns the exit code.
pub fn run(args: &SamplesArgs) -> i32 {
    let quiet = args.quiet;
    let log = move |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    match build_all(args, &log) {
        Ok(Outcome { built, failed }) => {
            for (name, e) in &failed {
                eprintln!("xsplice-build samples: {name}: {e}");
            }
            log(&format!(
                "samples: {} built, {} failed",
                built.len(),
                failed.len()
            ));
            match failed.first() {
                None => crate::exit::BUILT,
                Some(_) => crate::exit::ERROR,
            }
        }
        Err(e) => {
            eprintln!("xsplice-build samples: {e}");
            crate::exit::ERROR
        }
    }
}
