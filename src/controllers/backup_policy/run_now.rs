//! "Run now": the explicit way to take a backup outside the schedule.
//!
//! A person (or a pipeline) sets the annotation to any new token, e.g. the
//! current time: `kubectl annotate bp nightly partnercloud.io/run-now=$(date +%s) --overwrite`.
//! The controller runs once per distinct token and records the token it
//! honoured in `status.lastRunNowToken`. A token, not a boolean, because a
//! boolean would have to be cleared by the controller (a write racing the
//! user's) and could not ask twice for the same thing by accident.

/// The annotation that asks for a run outside the schedule.
pub const RUN_NOW_ANNOTATION: &str = "partnercloud.io/run-now";

/// The token to run for now, if the annotation asks for a run that has not
/// been honoured yet. Surrounding whitespace is ignored and an empty value
/// asks for nothing, so `run-now=""` is a safe way to leave the annotation
/// in place.
pub fn run_now(annotation_token: Option<&str>, last_token: Option<&str>) -> Option<String> {
    let token = annotation_token.map(str::trim).filter(|t| !t.is_empty())?;
    if last_token.map(str::trim) == Some(token) {
        return None;
    }
    Some(token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_runs_once() {
        assert_eq!(run_now(Some("1767225600"), None), Some("1767225600".into()));
        assert_eq!(run_now(Some("1767225600"), Some("1767225600")), None);
    }

    #[test]
    fn a_different_token_runs_again() {
        assert_eq!(
            run_now(Some("second"), Some("first")),
            Some("second".into())
        );
    }

    #[test]
    fn going_back_to_an_older_token_runs_again() {
        // Only the last honoured token is remembered: a token that differs
        // from it is a new request, even if it was used long ago.
        assert_eq!(run_now(Some("first"), Some("second")), Some("first".into()));
    }

    #[test]
    fn no_annotation_or_an_empty_one_asks_for_nothing() {
        assert_eq!(run_now(None, None), None);
        assert_eq!(run_now(None, Some("first")), None);
        assert_eq!(run_now(Some(""), None), None);
        assert_eq!(run_now(Some("   "), Some("first")), None);
    }

    #[test]
    fn whitespace_around_a_token_does_not_make_it_new() {
        assert_eq!(run_now(Some(" abc \n"), None), Some("abc".into()));
        assert_eq!(run_now(Some(" abc \n"), Some("abc")), None);
    }
}
