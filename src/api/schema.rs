//! Schema pieces shared by the custom resources: how quantities, names and
//! addresses look in the OpenAPI schema, and the CEL rules that check them at
//! admission. Every message names the field it is about, because the API
//! server shows it to the person who ran `kubectl apply`.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A size such as `40Gi`, as a string (the form people write in YAML).
/// Whether it is a quantity at all is checked by a CEL rule with a readable
/// message; see [`quantity_rule`].
pub fn quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 32,
    })
}

/// Same as [`quantity`] for an optional field.
pub fn optional_quantity(generator: &mut SchemaGenerator) -> Schema {
    quantity(generator)
}

/// CEL: the value is a well-formed size within `[min, max]`, not in
/// milli-units or a bare fraction, and a whole number of bytes (`0.5Gi`
/// passes, `1.1Gi` does not).
///
/// CEL has no exact "is whole" test for quantities: `isInteger()` refuses
/// `0.5Gi` (kept in decimal form), and a float is inexact (`1023.5Gi` comes
/// out a hair off). So the size's float is truncated to an integer and
/// subtracted from the size in exact quantity arithmetic: the difference is
/// a whole number (0, or 1 either way where the float was a hair off) for
/// a whole-byte size, and a fraction otherwise. The range checks come first
/// so that `int()` never sees a value it cannot hold. The operator's exact
/// parser still checks every size at run time, naming the field.
pub fn quantity_rule(min: &str, max: &str) -> String {
    let off = "quantity(self).sub(int(quantity(self).asApproximateFloat()))";
    format!(
        "isQuantity(self) && !self.endsWith('m') && !self.matches('^[+-]?[0-9]*[.][0-9]+$') && quantity(self).compareTo(quantity('{min}')) >= 0 && quantity(self).compareTo(quantity('{max}')) <= 0 && ({off}.compareTo(quantity('0')) == 0 || {off}.compareTo(quantity('1')) == 0 || {off}.compareTo(quantity('-1')) == 0)"
    )
}

/// The message paired with [`quantity_rule`].
pub fn quantity_message(field: &str, min: &str, max: &str) -> kube::core::Message {
    kube::core::Message::Message(format!(
        "{field} must be a whole number of bytes between {min} and {max}, written like 40Gi or 512Mi"
    ))
}

/// A DNS-1123 label (lower case letters, digits and '-'), as used for names
/// that become parts of Kubernetes object names.
pub const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// A hex-encoded SHA-256 digest.
pub const SHA256: &str = "^[a-f0-9]{64}$";

/// An HTTP(S) URL the importer can fetch.
pub const HTTP_URL_RULE: &str =
    "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHostname() != ''";

/// One field of a 5-field cron expression, from its number (or name) pattern:
/// `*`, `N`, `N-M`, each optionally `/step`, joined by commas.
fn cron_field(number: &str) -> String {
    let item = format!("(\\*|{number}(-{number})?)(/[0-9]{{1,2}})?");
    format!("{item}(,{item})*")
}

/// The regular expression a `spec.schedule` must match: five fields
/// (minute hour day-of-month month day-of-week) with their value ranges, or
/// one of the `@hourly`-style macros. Six-field (seconds) forms are refused.
pub fn cron_regex() -> String {
    let minute = cron_field("[0-5]?[0-9]");
    let hour = cron_field("(1?[0-9]|2[0-3])");
    let day = cron_field("([1-9]|[12][0-9]|3[01])");
    let month = cron_field("([1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)");
    let weekday = cron_field("([0-7]|SUN|MON|TUE|WED|THU|FRI|SAT)");
    format!(
        "^(?i)((@(hourly|daily|midnight|weekly|monthly|yearly|annually))|({minute}) +({hour}) +({day}) +({month}) +({weekday}))$"
    )
}

/// CEL rule for a schedule field: the value matches [`cron_regex`].
pub fn cron_rule() -> String {
    format!("self.matches('{}')", cron_regex().replace('\\', "\\\\"))
}

/// CEL rule: the value is one of the IANA time zone names this build knows.
pub fn time_zone_rule() -> String {
    let names: Vec<String> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| format!("'{}'", tz.name()))
        .collect();
    format!("self in [{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron_matches(expr: &str) -> bool {
        // RE2 (the API server's engine) and the regex crate agree on the
        // subset used here: groups, classes, alternation, counted repeats.
        regex::Regex::new(&cron_regex()).unwrap().is_match(expr)
    }

    #[test]
    fn cron_accepts_five_field_forms_and_macros() {
        for ok in [
            "0 2 * * *",
            "*/15 * * * *",
            "30 1 1,15 * MON-FRI",
            "0 3 * * sun",
            "0 0 1 jan *",
            "5 4  * * 0",
            "@daily",
            "@hourly",
            "59 23 31 12 7",
        ] {
            assert!(cron_matches(ok), "{ok:?} should be accepted");
        }
    }

    #[test]
    fn cron_refuses_six_fields_ranges_and_garbage() {
        for bad in [
            "0 0 2 * * *",
            "0 2 * *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 0 * *",
            "0 0 32 * *",
            "0 0 * 13 *",
            "0 0 * * 8",
            "every day",
            "@reboot",
            "",
            " 0 2 * * *",
        ] {
            assert!(!cron_matches(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn time_zone_rule_lists_iana_zones_only() {
        let rule = time_zone_rule();
        for zone in [
            "'UTC'",
            "'Europe/Moscow'",
            "'Asia/Yekaterinburg'",
            "'America/New_York'",
        ] {
            assert!(rule.contains(zone), "{zone} missing");
        }
        assert!(!rule.contains("Mars"));
    }
}
