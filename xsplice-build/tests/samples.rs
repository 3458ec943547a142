//! Fast tier for `xsplice-build samples` and the files it builds from:
//! samples.list parsing and ordering, name rules, the build-id chain check,
//! the payload reader, the shape of every sample diff (no Xen tree here, so
//! hunks are checked for consistency instead of applied), the hooks
//! template (identical to the copy hooks.diff adds; compiles into the hook
//! sections the loader reads), and the e2e script's expectations matching
//! what the hooks sample prints.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::write::{Object as WObject, Relocation, StandardSection, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, Object, ObjectSection, RelocationFlags, SectionKind,
    SymbolFlags, SymbolKind, SymbolScope,
};
use support::project;
use xsplice_build::samples::{self, Built, PayloadInfo, Sample};

fn patches_dir() -> PathBuf {
    project().join("sample-patches")
}

fn names(list: &[Sample]) -> Vec<&str> {
    list.iter().map(|s| s.name.as_str()).collect()
}

#[test]
fn project_list_loads_in_stacking_order() {
    let list = samples::load(&patches_dir()).expect("sample-patches/samples.list loads");
    assert_eq!(names(&list), support::SAMPLES);
    let bye = &list[1];
    assert_eq!(bye.depends.as_deref(), Some("hello-world"));
    assert!(!bye.replace);
    assert!(list[2].replace && list[2].depends.is_none());
    for s in [&list[0], &list[3], &list[4], &list[5]] {
        assert!(
            s.depends.is_none() && !s.replace,
            "{} should stack on the hypervisor only",
            s.name
        );
    }
}

#[test]
fn dependencies_come_first_whatever_the_file_order() {
    let list = samples::parse_list("c depends=b\nb depends=a\nx\na\n").unwrap();
    assert_eq!(names(&list), ["x", "a", "b", "c"]);
}

#[test]
fn comments_and_blank_lines_are_ignored() {
    let list = samples::parse_list("# header\n\n  one   # trailing\n\ttwo replace\n").unwrap();
    assert_eq!(names(&list), ["one", "two"]);
    assert!(list[1].replace);
}

#[test]
fn bad_lists_are_refused_with_the_reason() {
    let cases: &[(&str, &str)] = &[
        ("a\na\n", "listed twice"),
        ("a frobnicate\n", "unknown option"),
        ("a depends=b\n", "not listed"),
        ("a depends=a\n", "depends on itself"),
        ("a depends=b\nb depends=a\n", "cycle"),
        ("a\nb depends=a replace\n", "replace payload"),
        ("a depends=x depends=y\nx\ny\n", "more than one"),
        ("hello.world\n", "'.'"),
        ("# nothing\n", "names no sample"),
    ];
    for (text, want) in cases {
        let err = samples::parse_list(text).expect_err(text);
        assert!(
            err.contains(want),
            "{text:?}: error {err:?} should mention {want:?}"
        );
    }
}

#[test]
fn names_follow_the_payload_name_rules() {
    assert!(samples::check_name("xsa-123_v2").is_ok());
    assert!(samples::check_name("").is_err());
    assert!(samples::check_name("a b").is_err());
    assert!(samples::check_name("a/b").is_err());
    // The loader's buffer holds 128 bytes with the NUL.
    assert!(samples::check_name(&"n".repeat(127)).is_ok());
    assert!(samples::check_name(&"n".repeat(128)).is_err());
}

#[test]
fn select_pulls_in_what_a_sample_stacks_on() {
    let list = samples::load(&patches_dir()).unwrap();
    let sel = samples::select(&list, &["bye-world".to_string()]).unwrap();
    assert_eq!(names(&sel), ["hello-world", "bye-world"]);
    let sel = samples::select(&list, &["hooks".to_string(), "hello-world".to_string()]).unwrap();
    assert_eq!(names(&sel), ["hello-world", "hooks"]);
    assert_eq!(samples::select(&list, &[]).unwrap().len(), list.len());
    assert!(samples::select(&list, &["nope".to_string()])
        .unwrap_err()
        .contains("nope"));
}

#[test]
fn load_refuses_unlisted_and_missing_diffs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("samples.list"), "one\n").unwrap();
    fs::write(dir.path().join("one.diff"), "").unwrap();
    assert!(samples::load(dir.path()).is_ok());
    fs::write(dir.path().join("two.diff"), "").unwrap();
    let err = samples::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("two.diff is not listed"), "{err}");
    fs::write(dir.path().join("samples.list"), "one\ntwo\nthree\n").unwrap();
    let err = samples::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("three") && err.contains("missing"), "{err}");
}

// ---- build-id chain --------------------------------------------------------

fn built(
    name: &str,
    depends_on: Option<&str>,
    id: &str,
    depends: &str,
    xen_depends: &str,
) -> Built {
    Built {
        sample: Sample {
            name: name.into(),
            depends: depends_on.map(String::from),
            replace: false,
        },
        payload: PathBuf::from(format!("{name}.livepatch")),
        info: PayloadInfo {
            build_id: id.parse().unwrap(),
            depends: depends.parse().unwrap(),
            xen_depends: xen_depends.parse().unwrap(),
            ..PayloadInfo::default()
        },
    }
}

#[test]
fn chain_accepts_a_correct_stack() {
    let b = [
        built("hello", None, "aa01", "ee", "ee"),
        built("bye", Some("hello"), "aa02", "aa01", "ee"),
        built("other", None, "aa03", "ee", "ee"),
    ];
    assert_eq!(
        samples::check_chain(&b, &"ee".parse().unwrap()),
        Vec::<String>::new()
    );
}

#[test]
fn chain_finds_each_kind_of_break() {
    let b = [
        built("hello", None, "aa01", "ee", "ff"), // wrong xen_depends
        built("bye", Some("hello"), "aa02", "ee", "ee"), // depends on Xen, not hello
        built("solo", None, "aa03", "aa01", "ee"), // depends on a payload, not Xen
        built("twin", None, "aa03", "ee", "ee"),  // same id as solo
        built("lost", Some("gone"), "aa05", "ee", "ee"), // dependency not built
    ];
    let problems = samples::check_chain(&b, &"ee".parse().unwrap()).join("\n");
    for want in [
        "hello: .livepatch.xen_depends is ff",
        "bye: .livepatch.depends is ee, expected hello's build-id aa01",
        "solo: .livepatch.depends is aa01, expected the hypervisor's build-id ee",
        "twin and solo have the same build-id aa03",
        "lost: stacks on gone, which was not built",
    ] {
        assert!(problems.contains(want), "missing {want:?} in:\n{problems}");
    }
}

// ---- payload reader ----------------------------------------------------------

fn note(id: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&4u32.to_le_bytes());
    n.extend_from_slice(&(id.len() as u32).to_le_bytes());
    n.extend_from_slice(&3u32.to_le_bytes());
    n.extend_from_slice(b"GNU\0");
    n.extend_from_slice(id);
    n
}

/// A minimal payload-shaped object: three notes, a text function, a
/// function table of two entries whose name pointers are relocated
/// against a string section.
fn synthetic_payload() -> Vec<u8> {
    let mut obj = WObject::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    for (name, id) in [
        (".note.gnu.build-id", [1u8; 20]),
        (".livepatch.depends", [2; 20]),
        (".livepatch.xen_depends", [3; 20]),
    ] {
        let sec = obj.add_section(Vec::new(), name.as_bytes().to_vec(), SectionKind::Note);
        obj.append_section_data(sec, &note(&id), 4);
    }
    let text = obj.section_id(StandardSection::Text);
    obj.append_section_data(text, &[0xc3; 16], 16);
    let text_sym = obj.add_symbol(Symbol {
        name: b"new_code".to_vec(),
        value: 0,
        size: 16,
        kind: SymbolKind::Text,
        scope: SymbolScope::Compilation,
        weak: false,
        section: SymbolSection::Section(text),
        flags: SymbolFlags::None,
    });
    let strs = obj.add_section(
        Vec::new(),
        b".livepatch.strings".to_vec(),
        SectionKind::ReadOnlyString,
    );
    obj.append_section_data(strs, b"first_func\0common/x.c#second\0", 1);
    let strs_sym = obj.section_symbol(strs);
    let funcs = obj.add_section(Vec::new(), b".livepatch.funcs".to_vec(), SectionKind::Data);
    obj.append_section_data(funcs, &[0u8; 208], 8);
    let abs64 = RelocationFlags::Elf {
        r_type: object::elf::R_X86_64_64,
    };
    for (entry, addend) in [(1u64, 11i64), (0, 0)] {
        obj.add_relocation(
            funcs,
            Relocation {
                offset: entry * 104,
                symbol: strs_sym,
                addend,
                flags: abs64,
            },
        )
        .unwrap();
        obj.add_relocation(
            funcs,
            Relocation {
                offset: entry * 104 + 8,
                symbol: text_sym,
                addend: 0,
                flags: abs64,
            },
        )
        .unwrap();
    }
    obj.write().unwrap()
}

#[test]
fn payload_reader_gets_ids_sections_and_function_names() {
    let bytes = synthetic_payload();
    let info = PayloadInfo::parse(&bytes).unwrap();
    assert_eq!(info.build_id, "01".repeat(20));
    assert_eq!(info.depends, "02".repeat(20));
    assert_eq!(info.xen_depends, "03".repeat(20));
    assert_eq!(info.functions, ["first_func", "common/x.c#second"]);
    assert_eq!(info.section_size(".livepatch.funcs"), Some(208));
}

#[test]
fn payload_reader_refuses_a_payload_without_notes() {
    let obj = WObject::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
    let err = PayloadInfo::parse(&obj.write().unwrap()).unwrap_err();
    assert!(err.contains(".note.gnu.build-id"), "{err}");
    assert!(PayloadInfo::parse(b"not an elf").is_err());
}

// ---- the sample diffs ------------------------------------------------------------

/// One file of a unified diff.
struct FilePatch {
    old: String,
    new: String,
    /// Added lines, per hunk, without the leading '+'.
    added: Vec<Vec<String>>,
}

/// Parse a unified diff strictly: text before the first header is a
/// description; every hunk's line counts must match its header.
fn parse_diff(text: &str) -> Result<Vec<FilePatch>, String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut files: Vec<FilePatch> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(old) = line.strip_prefix("--- ") {
            let new = lines
                .get(i + 1)
                .and_then(|l| l.strip_prefix("+++ "))
                .ok_or(format!("line {}: '---' without '+++'", i + 1))?;
            files.push(FilePatch {
                old: old.to_string(),
                new: new.to_string(),
                added: Vec::new(),
            });
            i += 2;
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@ -") {
            let file = files
                .last_mut()
                .ok_or(format!("line {}: hunk before any file header", i + 1))?;
            let count = |range: &str| -> Result<usize, String> {
                let mut parts = range.split(',');
                parts
                    .next()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or(format!("line {}: bad range {range:?}", i + 1))?;
                Ok(parts
                    .next()
                    .map(|c| {
                        c.parse::<usize>()
                            .map_err(|_| format!("line {}: bad count", i + 1))
                    })
                    .transpose()?
                    .unwrap_or(1))
            };
            let mut words = rest.split(' ');
            let mut old_left = count(words.next().unwrap_or(""))?;
            let mut new_left = count(
                words
                    .next()
                    .and_then(|w| w.strip_prefix('+'))
                    .ok_or(format!("line {}: bad hunk header", i + 1))?,
            )?;
            let mut added = Vec::new();
            i += 1;
            while old_left > 0 || new_left > 0 {
                let l = lines
                    .get(i)
                    .ok_or(format!("hunk ends early at line {}", i + 1))?;
                match l.chars().next() {
                    Some(' ') if old_left > 0 && new_left > 0 => {
                        old_left -= 1;
                        new_left -= 1;
                    }
                    Some('-') if old_left > 0 => old_left -= 1,
                    Some('+') if new_left > 0 => {
                        new_left -= 1;
                        added.push(l[1..].to_string());
                    }
                    Some('\\') => {}
                    _ => {
                        return Err(format!(
                            "line {}: {l:?} does not fit the hunk's counts",
                            i + 1
                        ))
                    }
                }
                i += 1;
            }
            file.added.push(added);
            continue;
        }
        let header_line = ["diff ", "index ", "new file mode", "\\"]
            .iter()
            .any(|p| line.starts_with(p));
        if !files.is_empty() && !line.is_empty() && !header_line {
            return Err(format!("line {}: unexpected {line:?} between hunks", i + 1));
        }
        i += 1;
    }
    Ok(files)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_sample_diff_is_a_well_formed_p1_patch_of_the_hypervisor() {
    for s in samples::load(&patches_dir()).unwrap() {
        let path = patches_dir().join(format!("{}.diff", s.name));
        let text = read(&path);
        assert!(!text.contains('\r'), "{}: CR characters", path.display());
        let files = parse_diff(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!files.is_empty(), "{}: no file patched", path.display());
        for f in &files {
            assert!(
                f.new.starts_with("b/xen/"),
                "{}: {} is not under b/xen/",
                path.display(),
                f.new
            );
            assert!(
                f.old == "/dev/null" || f.old == f.new.replacen("b/", "a/", 1),
                "{}: {} vs {}",
                path.display(),
                f.old,
                f.new
            );
            assert!(
                !f.added.is_empty(),
                "{}: {} has no hunk",
                path.display(),
                f.new
            );
        }
    }
}

#[test]
fn diff_parser_catches_a_miscounted_hunk() {
    let good = "--- a/xen/x.c\n+++ b/xen/x.c\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n";
    assert!(parse_diff(good).is_ok());
    let bad = "--- a/xen/x.c\n+++ b/xen/x.c\n@@ -1,3 +1,2 @@\n a\n-b\n+c\n";
    assert!(parse_diff(bad).is_err());
}

#[test]
fn world_samples_return_their_strings() {
    for (name, string) in [
        ("hello-world", "Hello World"),
        ("bye-world", "Bye World"),
        ("replace-world", "Replace World"),
        ("hooks", "Hooks World"),
    ] {
        let files = parse_diff(&read(&patches_dir().join(format!("{name}.diff")))).unwrap();
        let added: Vec<&String> = files
            .iter()
            .flat_map(|f| f.added.iter().flatten())
            .collect();
        assert!(
            added
                .iter()
                .any(|l| l.trim() == format!("return \"{string}\";")),
            "{name}.diff should return {string:?}"
        );
        // Xen's XENVER_extraversion buffer holds 15 characters and a NUL.
        assert!(
            string.len() <= 15,
            "{string:?} would be cut by XENVER_extraversion"
        );
    }
}

fn template() -> String {
    read(&project().join("templates/livepatch-hooks.h"))
}

#[test]
fn hooks_diff_carries_the_template_unchanged() {
    let template = template();
    let want: Vec<&str> = template.lines().collect();
    let files = parse_diff(&read(&patches_dir().join("hooks.diff"))).unwrap();
    let found = files.iter().flat_map(|f| f.added.iter()).any(|hunk| {
        hunk.windows(want.len())
            .any(|w| w.iter().map(String::as_str).eq(want.iter().copied()))
    });
    assert!(found, "hooks.diff must add templates/livepatch-hooks.h verbatim (regenerate it after editing the template)");
}

#[test]
fn hooks_diff_uses_each_hook_kind_and_includes_the_template() {
    let files = parse_diff(&read(&patches_dir().join("hooks.diff"))).unwrap();
    let added: String = files
        .iter()
        .flat_map(|f| f.added.iter().flatten())
        .map(|l| format!("{l}\n"))
        .collect();
    for m in [
        "LOAD",
        "UNLOAD",
        "PREAPPLY",
        "POSTAPPLY",
        "PREREVERT",
        "POSTREVERT",
    ] {
        assert!(
            added.contains(&format!("LIVEPATCH_{m}_HOOK(sample_")),
            "hooks.diff does not use LIVEPATCH_{m}_HOOK"
        );
    }
    let header_added = files
        .iter()
        .any(|f| f.new == "b/xen/common/livepatch-hooks.h");
    assert!(
        !header_added || added.contains("#include \"livepatch-hooks.h\""),
        "the header is added but not included"
    );
}

#[test]
fn e2e_expects_what_the_hooks_sample_prints() {
    let script = read(&project().join("ci/e2e-qemu"));
    let diff = read(&patches_dir().join("hooks.diff"));
    let expected: Vec<&str> = script
        .lines()
        .filter_map(|l| l.find("xsplice sample hooks: ").map(|at| &l[at..]))
        .collect();
    assert!(
        expected.len() >= 6,
        "ci/e2e-qemu should expect the six hook messages, found {expected:?}"
    );
    for line in expected {
        let line = line.trim_end_matches('"');
        // The script expects the message with the payload name filled in.
        let printed = line
            .strip_suffix(" for hooks")
            .map(|m| format!("{m} for %s"))
            .unwrap_or_else(|| format!("{line}\\n"));
        assert!(
            diff.contains(&printed),
            "ci/e2e-qemu expects {line:?}, which hooks.diff does not print ({printed:?})"
        );
    }
}

// ---- the template compiles into the loader's sections ------------------------------

/// Just enough of Xen's headers for the template: the hook types, not the macros.
const STUB_HEADERS: &[(&str, &str)] = &[
    (
        "xen/lib.h",
        "#define __section(s) __attribute__((__section__(s)))\n",
    ),
    ("xen/livepatch.h", ""),
    ("public/sysctl.h", ""),
    (
        "xen/livepatch_payload.h",
        "typedef struct payload livepatch_payload_t;\n\
         typedef void livepatch_loadcall_t(void);\n\
         typedef void livepatch_unloadcall_t(void);\n\
         typedef int livepatch_precall_t(livepatch_payload_t *arg);\n\
         typedef int livepatch_actioncall_t(livepatch_payload_t *arg);\n\
         typedef void livepatch_postcall_t(livepatch_payload_t *arg);\n",
    ),
];

#[test]
fn template_macros_fill_the_hook_sections() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in STUB_HEADERS {
        let p = dir.path().join("include").join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    fs::write(dir.path().join("livepatch-hooks.h"), template()).unwrap();
    let src = dir.path().join("hooks.c");
    fs::write(
        &src,
        "#include \"livepatch-hooks.h\"\n\
         static void on_load(void) {}\n\
         static void on_load2(void) {}\n\
         static void on_unload(void) {}\n\
         static int pre(livepatch_payload_t *p) { (void)p; return 0; }\n\
         static int act(livepatch_payload_t *p) { (void)p; return 0; }\n\
         static void post(livepatch_payload_t *p) { (void)p; }\n\
         LIVEPATCH_LOAD_HOOK(on_load);\n\
         LIVEPATCH_LOAD_HOOK(on_load2);\n\
         LIVEPATCH_UNLOAD_HOOK(on_unload);\n\
         LIVEPATCH_PREAPPLY_HOOK(pre);\n\
         LIVEPATCH_APPLY_HOOK(act);\n\
         LIVEPATCH_POSTAPPLY_HOOK(post);\n\
         LIVEPATCH_PREREVERT_HOOK(pre);\n\
         LIVEPATCH_REVERT_HOOK(act);\n\
         LIVEPATCH_POSTREVERT_HOOK(post);\n",
    )
    .unwrap();
    let out = dir.path().join("hooks.o");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args([
            "-c",
            "-O2",
            "-Wall",
            "-Werror",
            "-ffunction-sections",
            "-fdata-sections",
            "-I",
        ])
        .arg(dir.path().join("include"))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(status.success(), "the template does not compile");
    let data = fs::read(&out).unwrap();
    let file = object::File::parse(&*data).unwrap();
    for (section, pointers) in [
        ("load", 2),
        ("unload", 1),
        ("preapply", 1),
        ("apply", 1),
        ("postapply", 1),
        ("prerevert", 1),
        ("revert", 1),
        ("postrevert", 1),
    ] {
        let name = format!(".livepatch.hooks.{section}");
        let sec = file
            .section_by_name(&name)
            .unwrap_or_else(|| panic!("no {name} section"));
        assert_eq!(
            sec.size(),
            8 * pointers,
            "{name}: one 8-byte pointer per hook"
        );
        assert_eq!(
            sec.relocations().count() as u64,
            pointers,
            "{name}: each pointer is relocated against its function"
        );
    }
}

#[test]
fn e2e_loads_the_samples_this_list_builds() {
    let script = read(&project().join("ci/e2e-qemu"));
    let list = samples::load(&patches_dir()).unwrap();
    // The "ours" role table: name=([hello]=hello-world [bye]=bye-world ...).
    let start = script
        .find("name=([hello]=")
        .expect("ci/e2e-qemu has the role table");
    let table = &script[start..start + script[start..].find(')').unwrap()];
    let used: Vec<&str> = table
        .split_whitespace()
        .filter_map(|w| w.split(']').nth(1))
        .map(|n| n.trim_start_matches('='))
        .collect();
    let mut used: Vec<&str> = used;
    let mut built: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    used.sort();
    built.sort();
    assert_eq!(
        used, built,
        "ci/e2e-qemu loads exactly the samples samples.list builds"
    );
}
