//! A build-id: the bytes of a GNU build-id note, written as hex where a
//! person or a program reads it (`readelf -n`, `xen-livepatch`, the JSON
//! report). One type for every build-id the driver holds or is given
//! (`--depends`, `--xen-depends`), parsed where it enters.

use std::fmt;
use std::str::FromStr;

use create_diff_object::notes::{from_hex, to_hex};

use crate::problem::BuildIdProblem;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BuildId(Vec<u8>);

impl BuildId {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        BuildId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Hex digits, whole bytes, a length a build-id note can have
/// (`xsplice_target::notes::BUILD_ID_LEN`); surrounding blanks ignored.
impl FromStr for BuildId {
    type Err = BuildIdProblem;

    fn from_str(s: &str) -> Result<Self, BuildIdProblem> {
        let s = s.trim();
        let digits = s.len();
        if let Some(c) = s.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(BuildIdProblem::NotHex(c));
        }
        if digits % 2 == 1 {
            return Err(BuildIdProblem::OddDigits(digits));
        }
        if !xsplice_target::notes::BUILD_ID_LEN.contains(&(digits / 2)) {
            return Err(BuildIdProblem::Length(digits / 2));
        }
        from_hex(s)
            .map(BuildId)
            .map_err(|e| BuildIdProblem::Decode(e.to_string()))
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuildId({self})")
    }
}

/// Compared with its hex form, as tests and pipelines hold it.
impl PartialEq<str> for BuildId {
    fn eq(&self, hex: &str) -> bool {
        to_hex(&self.0) == *hex
    }
}

impl PartialEq<&str> for BuildId {
    fn eq(&self, hex: &&str) -> bool {
        self == *hex
    }
}

impl PartialEq<String> for BuildId {
    fn eq(&self, hex: &String) -> bool {
        self == hex.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        let id: BuildId = " 00ff10aB00ff10ab00ff10ab00ff10ab00ff10ab\n"
            .parse()
            .unwrap();
        assert_eq!(id.as_bytes().len(), 20);
        assert_eq!(id, "00ff10ab00ff10ab00ff10ab00ff10ab00ff10ab");
        assert!(matches!(
            "abc".parse::<BuildId>(),
            Err(BuildIdProblem::OddDigits(3))
        ));
        assert!(matches!(
            "zz".parse::<BuildId>(),
            Err(BuildIdProblem::NotHex('z'))
        ));
        assert!(matches!(
            "".parse::<BuildId>(),
            Err(BuildIdProblem::Length(0))
        ));
    }
}
