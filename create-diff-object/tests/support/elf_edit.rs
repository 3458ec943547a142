//! Byte-level ELF64 editing for tests that damage objects and payloads:
//! field offsets found by reading the headers directly (never through the
//! code under test, and tolerant of a file another edit already damaged),
//! little-endian reads and writes. Used by create-diff-object's
//! robustness tests and by xsplice-build's verify mutations.

/// Section headers of a payload, read directly from its bytes (the tests
/// edit bytes; they must not depend on the code under test to find them).
#[derive(Debug, Clone)]
pub struct Sec {
    pub index: usize,
    pub hdr: usize,
    pub name: String,
    pub sh_type: u32,
    pub offset: usize,
    pub size: usize,
    pub link: usize,
    pub info: usize,
}

pub fn rd32(d: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(d[o..o + 4].try_into().unwrap())
}

pub fn rd64(d: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(d[o..o + 8].try_into().unwrap())
}

pub fn wr16(d: &mut [u8], o: usize, v: u16) {
    d[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

pub fn wr32(d: &mut [u8], o: usize, v: u32) {
    d[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

pub fn wr64(d: &mut [u8], o: usize, v: u64) {
    d[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn sections(d: &[u8]) -> Vec<Sec> {
    let shoff = rd64(d, 40) as usize;
    let shnum = u16::from_le_bytes([d[60], d[61]]) as usize;
    let shstrndx = u16::from_le_bytes([d[62], d[63]]) as usize;
    let str_off = rd64(d, shoff + shstrndx * 64 + 24) as usize;
    (0..shnum)
        .map(|i| {
            let h = shoff + i * 64;
            let name_off = str_off + rd32(d, h) as usize;
            let end = d[name_off..].iter().position(|&b| b == 0).unwrap();
            Sec {
                index: i,
                hdr: h,
                name: String::from_utf8_lossy(&d[name_off..name_off + end]).into_owned(),
                sh_type: rd32(d, h + 4),
                offset: rd64(d, h + 24) as usize,
                size: rd64(d, h + 32) as usize,
                link: rd32(d, h + 40) as usize,
                info: rd32(d, h + 44) as usize,
            }
        })
        .collect()
}

pub fn section(d: &[u8], name: &str) -> Sec {
    sections(d)
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// File offsets of the relocation entries patching section `target`.
pub fn relas_for(d: &[u8], target: &str) -> Vec<usize> {
    let t = section(d, target);
    sections(d)
        .into_iter()
        .filter(|s| s.sh_type == 4 && s.info == t.index)
        .flat_map(|s| (0..s.size / 24).map(move |i| s.offset + i * 24))
        .collect()
}

/// The relocation entry patching `offset` of `target`.
pub fn rela_at(d: &[u8], target: &str, offset: u64) -> usize {
    relas_for(d, target)
        .into_iter()
        .find(|&r| rd64(d, r) == offset)
        .unwrap_or_else(|| panic!("no relocation at {target}+{offset:#x}"))
}

/// (file offset of the entry, name) of every symbol.
pub fn symbols(d: &[u8]) -> Vec<(usize, String, u16)> {
    let symtab = sections(d).into_iter().find(|s| s.sh_type == 2).unwrap();
    let strtab = &sections(d)[symtab.link];
    (0..symtab.size / 24)
        .map(|i| {
            let e = symtab.offset + i * 24;
            let n = strtab.offset + rd32(d, e) as usize;
            let end = d[n..].iter().position(|&b| b == 0).unwrap();
            let shndx = u16::from_le_bytes([d[e + 6], d[e + 7]]);
            (
                e,
                String::from_utf8_lossy(&d[n..n + end]).into_owned(),
                shndx,
            )
        })
        .collect()
}

pub fn symbol_index(d: &[u8], name: &str) -> usize {
    symbols(d)
        .iter()
        .position(|(_, n, _)| n == name)
        .unwrap_or_else(|| panic!("no symbol {name}"))
}

/// Replace every occurrence of `from` in section `sec` with `to` (same length).
pub fn rename_in(d: &mut [u8], sec: &str, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let s = section(d, sec);
    let bytes = &mut d[s.offset..s.offset + s.size];
    let mut hits = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from.as_bytes() {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            hits += 1;
        }
        i += 1;
    }
    assert!(hits > 0, "{from} not in {sec}");
}
