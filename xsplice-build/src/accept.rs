//! The audited override: refusals a patch author checked by hand and
//! accepts (`--accept KIND:SUBJECT`, `--accept-reason TEXT`). An accept
//! names one refusal kind and one subject exactly (the refusal's `symbol`
//! as the report names it: a variable, a function, a type such as
//! `struct domain`); it matches every refusal with both, in any object.
//! The differ applies the accepts to its own refusals
//! (`create_diff_object::Options::accept`); the refusals decided over all
//! objects (boot-time set-up, type layouts) are split here. An accept that
//! matches nothing is bad input, so a stale one cannot linger in a pipeline.

use create_diff_object::{Accept, Refusal, RefusalKind};
use xsplice_target::accepted::{self, Accepted};

use crate::problem::Problem;

/// `KIND:SUBJECT` as given on the command line.
pub fn parse(s: &str) -> Result<Accept, String> {
    let Some((kind, subject)) = s.split_once(':') else {
        return Err(format!(
            "{s:?}: give KIND:SUBJECT, the refusal's kind and its subject exactly as the report names them"
        ));
    };
    let kind = RefusalKind::from_name(kind).ok_or_else(|| {
        let known: Vec<&str> = RefusalKind::ALL
            .iter()
            .filter(|k| k.acceptable())
            .map(|k| k.as_str())
            .collect();
        format!(
            "{kind:?} is not a refusal kind that can be accepted; the kinds: {}",
            known.join(", ")
        )
    })?;
    let accept = Accept {
        kind,
        subject: subject.to_string(),
    };
    check(&accept).map_err(|p| p.to_string())?;
    Ok(accept)
}

/// An accept the driver can honour: an acceptable kind, a subject that is
/// one exact name.
fn check(a: &Accept) -> Result<(), Problem> {
    let bad = |why: String| {
        Err(Problem::BadAccept {
            accept: show(a),
            why,
        })
    };
    if !a.kind.acceptable() {
        return bad(format!(
            "a {} refusal cannot be accepted: the payload would be incomplete without what it refuses",
            a.kind
        ));
    }
    if a.subject.is_empty() || !accepted::is_field(&a.subject) {
        return bad("the subject must be one name, exactly as the report's `symbol`".into());
    }
    if a.subject.contains(['*', '?']) {
        return bad("no patterns: give the subject exactly as the report's `symbol`".into());
    }
    Ok(())
}

/// `KIND:SUBJECT`, for messages.
pub fn show(a: &Accept) -> String {
    format!("{}:{}", a.kind, a.subject)
}

/// The options' accepts are usable and come with a one-line reason; the
/// diff stage, where they apply, is not skipped.
pub fn validate(accepts: &[Accept], reason: Option<&str>, skip_diff: bool) -> Result<(), Problem> {
    for a in accepts {
        check(a)?;
    }
    if skip_diff && !accepts.is_empty() {
        return Err(Problem::AcceptReason {
            why: "--accept applies in the diff stage, which --skip diff skips".into(),
        });
    }
    match (accepts.is_empty(), reason.map(str::trim)) {
        (true, None) => Ok(()),
        (true, Some(_)) => Err(Problem::AcceptReason {
            why: "--accept-reason without --accept".into(),
        }),
        (false, None) | (false, Some("")) => Err(Problem::AcceptReason {
            why: "--accept needs --accept-reason: why the refusal is safe and who checked it"
                .into(),
        }),
        (false, Some(r)) if !accepted::is_field(r) => Err(Problem::AcceptReason {
            why: "--accept-reason must be one line without tabs".into(),
        }),
        _ => Ok(()),
    }
}

/// Refusals with the object each was found in.
pub type ObjectRefusals = Vec<(String, Refusal)>;

/// Split refusals (with their objects) into the accepted and the rest.
pub fn split(refusals: ObjectRefusals, accepts: &[Accept]) -> (ObjectRefusals, ObjectRefusals) {
    refusals
        .into_iter()
        .partition(|(_, r)| r.kind.acceptable() && accepts.iter().any(|a| a.matches(r)))
}

/// The accepts that matched none of the accepted refusals.
pub fn unmatched(accepts: &[Accept], accepted: &[(String, Refusal)]) -> Vec<String> {
    accepts
        .iter()
        .filter(|a| !accepted.iter().any(|(_, r)| a.matches(r)))
        .map(show)
        .collect()
}

/// What the payload records: each accepted refusal with the reason.
pub fn records(accepted: &[(String, Refusal)], reason: &str) -> Vec<Accepted> {
    accepted
        .iter()
        .map(|(object, r)| Accepted {
            kind: r.kind.as_str().to_string(),
            subject: r.symbol.clone(),
            object: object.clone(),
            section: r.section.clone(),
            reason: reason.trim().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_are_exact_kind_and_subject() {
        let a = parse("layout_changed:struct domain").unwrap();
        assert_eq!(a.kind, RefusalKind::LayoutChanged);
        assert_eq!(a.subject, "struct domain");
        // The first colon separates: a subject may hold more.
        assert_eq!(parse("variable_moved:a:b").unwrap().subject, "a:b");
        assert!(parse("layout_changed")
            .unwrap_err()
            .contains("KIND:SUBJECT"));
        assert!(parse("no_such_kind:x")
            .unwrap_err()
            .contains("layout_changed"));
        assert!(parse("layout_changed:").is_err());
        assert!(parse("layout_changed:struct *")
            .unwrap_err()
            .contains("no patterns"));
        let e = parse("init_reference:adjust").unwrap_err();
        assert!(e.contains("cannot be accepted"), "{e}");
    }

    #[test]
    fn a_reason_is_required_and_one_line() {
        let a = [parse("initialiser_changed:counter").unwrap()];
        assert!(validate(&a, Some("checked by A. Author"), false).is_ok());
        assert!(validate(&a, Some("checked by A. Author"), true).is_err());
        assert!(validate(&a, None, false).is_err());
        assert!(validate(&a, Some("  "), false).is_err());
        assert!(validate(&a, Some("two\nlines"), false).is_err());
        assert!(validate(&[], Some("why"), false).is_err());
        assert!(validate(&[], None, false).is_ok());
    }
}
