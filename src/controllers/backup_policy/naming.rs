//! Names and labels of what a policy creates.
//!
//! A snapshot's name is a pure function of (server, policy, slot), so a
//! retried reconcile or a second replica computes the same name and the API
//! server refuses the duplicate: one backup per server per slot without any
//! lock. Names are readable (`erp-nightly-202601050200-1a2b3c4d`), DNS-1123
//! labels of at most 63 characters, and carry a short hash of the full
//! inputs, so truncating long server or policy names never makes two
//! different backups collide.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// Label: the policy that made a backup.
pub const POLICY_LABEL: &str = "partnercloud.io/backup-policy";
/// Label: the server a backup is of.
pub const SERVER_LABEL: &str = "partnercloud.io/server";
/// The UID of the server a backup was taken of (the same label a server's
/// disks carry).
pub const SERVER_UID_LABEL: &str = crate::controllers::labels::SERVER_UID;
/// Label: the slot a backup belongs to, as [`slot_label`].
pub const SLOT_LABEL: &str = "partnercloud.io/slot";
/// Label: who manages the object (the Kubernetes recommended label).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "partnercloud";

/// Label: what started a backup, [`TRIGGER_SCHEDULE`] or [`TRIGGER_RUN_NOW`].
pub const TRIGGER_LABEL: &str = "partnercloud.io/trigger";
/// A backup of a schedule slot.
pub const TRIGGER_SCHEDULE: &str = "schedule";
/// A backup asked for with the run-now annotation.
pub const TRIGGER_RUN_NOW: &str = "run-now";
/// Label: the role of a restore drill's temporary server, [`DRILL_ROLE`].
pub const ROLE_LABEL: &str = "partnercloud.io/role";
/// Value of [`ROLE_LABEL`] on a restore drill's temporary server. Such a
/// server is never itself selected for backups.
pub const DRILL_ROLE: &str = "restore-drill";
/// Label on a drill server: the server whose backup it restores. Not
/// [`SERVER_LABEL`], which would make the drill look like a child of it.
pub const DRILL_OF_LABEL: &str = "partnercloud.io/drill-of";

/// Annotation on snapshots and drill servers: when the policy started it,
/// by the controller's clock (deadlines count from here, so they are
/// measured with the same clock as `now`).
pub const STARTED_AT_ANNOTATION: &str = "partnercloud.io/started-at";
/// Annotation on snapshots: how many disks the server had, i.e. how many
/// volumes the snapshot must hold to be good.
pub const EXPECTED_VOLUMES_ANNOTATION: &str = "partnercloud.io/expected-volumes";
/// Annotation on snapshots: the run-now token that asked for it.
pub const RUN_NOW_TOKEN_ANNOTATION: &str = "partnercloud.io/run-now-token";
/// Annotation on snapshots: the slot ([`slot_label`]) of the restore drill
/// that judged it; on drill servers, the drill slot they belong to.
pub const DRILL_ANNOTATION: &str = "partnercloud.io/drill";
/// Annotation on snapshots: `Verified` or `Failed`.
pub const DRILL_RESULT_ANNOTATION: &str = "partnercloud.io/drill-result";
/// Annotation on snapshots: when the drill finished (RFC 3339).
pub const DRILL_TIME_ANNOTATION: &str = "partnercloud.io/drill-time";
/// Annotation on snapshots: why the drill failed.
pub const DRILL_MESSAGE_ANNOTATION: &str = "partnercloud.io/drill-message";
/// Annotation on drill servers: the snapshot restored.
pub const DRILL_SNAPSHOT_ANNOTATION: &str = "partnercloud.io/drill-snapshot";

/// Longest DNS-1123 label, and longest label value.
const MAX_LEN: usize = 63;
/// Hex digits of the hash in a name: 32 bits, enough to tell apart names
/// whose readable part is the same (only after truncation).
const HASH_LEN: usize = 8;

/// The VirtualMachineSnapshot name for one server's backup in one slot:
/// `<server>-<policy>-<yyyymmddhhmm UTC>-<hash>`.
pub fn snapshot_name(server: &str, policy: &str, slot: DateTime<Utc>) -> String {
    let hash = short_hash(&["snapshot", server, policy, &slot_label(slot)]);
    let stamp = minute_stamp(slot);
    // Room left for "<server>-<policy>" once "-<stamp>-<hash>" is in.
    let room = MAX_LEN - (1 + stamp.len() + 1 + HASH_LEN);
    let (server, policy) = share(&dns_part(server), &dns_part(policy), room - 1);
    join(&[&server, &policy, &stamp, &hash])
}

/// The name of the temporary server a restore drill starts from a server's
/// backup: `<server>-drill-<hash>`. Deterministic in (server, policy, drill
/// slot) so a retried drill reuses its server. At most
/// [`SERVER_NAME_MAX`] characters, the longest name a VirtualServer may
/// have (it names the server's disks and services); the slot is in the
/// hash and in the drill's labels rather than spelled out, to leave the
/// room to the server's name.
pub fn drill_server_name(server: &str, policy: &str, drill_slot: DateTime<Utc>) -> String {
    let hash = short_hash(&["drill", server, policy, &slot_label(drill_slot)]);
    let room = SERVER_NAME_MAX - ("-drill-".len() + HASH_LEN);
    let server = truncate(&dns_part(server), room);
    join(&[&server, "drill", &hash])
}

/// The longest VirtualServer name (its CRD refuses longer ones).
pub const SERVER_NAME_MAX: usize = 40;

/// The labels every backup snapshot carries, so the controller lists a
/// policy's backups (and one server's) by label.
pub fn snapshot_labels(
    server: &str,
    policy: &str,
    slot: DateTime<Utc>,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (POLICY_LABEL.to_string(), label_value(policy)),
        (SERVER_LABEL.to_string(), label_value(server)),
        (SLOT_LABEL.to_string(), slot_label(slot)),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
    ])
}

/// Label selector for every backup of a policy.
pub fn policy_selector(policy: &str) -> String {
    format!("{POLICY_LABEL}={}", label_value(policy))
}

/// Label selector for the backups of one server by one policy.
pub fn server_selector(policy: &str, server: &str) -> String {
    format!(
        "{POLICY_LABEL}={},{SERVER_LABEL}={}",
        label_value(policy),
        label_value(server)
    )
}

/// A slot as a label value: `20260105T020000Z` (UTC, to the second).
pub fn slot_label(slot: DateTime<Utc>) -> String {
    slot.format(SLOT_FORMAT).to_string()
}

/// The slot a [`slot_label`] stands for.
pub fn parse_slot_label(label: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(label, SLOT_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

const SLOT_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Label selector for a policy's restore-drill servers.
pub fn drill_selector(policy: &str) -> String {
    format!(
        "{POLICY_LABEL}={},{ROLE_LABEL}={DRILL_ROLE}",
        label_value(policy)
    )
}

/// An object name as a label value. Names up to 63 characters are valid
/// label values as they are; longer ones (names may have 253) are cut and
/// given a hash of the whole name, so they stay distinct and selectable.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LEN {
        return name.to_string();
    }
    let hash = short_hash(&["label", name]);
    let head: String = name.chars().take(MAX_LEN - 1 - HASH_LEN).collect();
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{head}-{hash}")
}

/// `yyyymmddhhmm` in UTC: readable and sorts by time.
fn minute_stamp(slot: DateTime<Utc>) -> String {
    slot.format("%Y%m%d%H%M").to_string()
}

/// A name made fit for a DNS-1123 label part: lower case, every character
/// other than letters, digits and '-' (a '.' of a subdomain name) as '-'.
fn dns_part(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect()
}

/// At most `len` characters, never ending with '-' (it is followed by one).
fn truncate(part: &str, len: usize) -> String {
    part[..part.len().min(len)].trim_matches('-').to_string()
}

/// Shares `room` characters between two parts: each keeps up to half, and
/// what one does not use goes to the other.
fn share(a: &str, b: &str, room: usize) -> (String, String) {
    if a.len() + b.len() <= room {
        return (truncate(a, room), truncate(b, room));
    }
    let half = room / 2;
    let a_len = a.len().min(room - b.len().min(half));
    let b_len = room - a_len;
    (truncate(a, a_len), truncate(b, b_len))
}

/// Joins the non-empty parts with '-'.
fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("-")
}

/// FNV-1a (64 bit) over the parts, each followed by a 0 byte so that
/// ("ab", "c") and ("a", "bc") differ; the low 32 bits in hex. Implemented
/// here because it must never change between builds, platforms or
/// releases (std's hashers are randomly keyed and may change).
fn short_hash(parts: &[&str]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{:08x}", hash & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn slot(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, h, m, 0).unwrap()
    }

    fn is_dns_label(name: &str) -> bool {
        let bytes = name.as_bytes();
        !name.is_empty()
            && name.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
    }

    fn is_label_value(value: &str) -> bool {
        let bytes = value.as_bytes();
        value.is_empty()
            || (value.len() <= 63
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric())
    }

    #[test]
    fn the_hash_is_fnv1a_and_pinned_forever() {
        // Published FNV-1a 64 test vectors (empty input and "a"), checked
        // through the same arithmetic without the separator byte.
        let fnv = |data: &[u8]| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in data {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        };
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            short_hash(&["a"]),
            format!("{:08x}", fnv(b"a\0") & 0xffff_ffff)
        );
        // The name of a real backup must never change between releases,
        // or retries after an upgrade would take a second snapshot.
        assert_eq!(
            snapshot_name("erp", "nightly", slot(2, 0)),
            "erp-nightly-202601050200-bf3b5a67"
        );
    }

    #[test]
    fn the_same_inputs_give_the_same_name() {
        assert_eq!(
            snapshot_name("erp", "nightly", slot(2, 0)),
            snapshot_name("erp", "nightly", slot(2, 0))
        );
    }

    #[test]
    fn a_different_slot_server_or_policy_gives_a_different_name() {
        let base = snapshot_name("erp", "nightly", slot(2, 0));
        assert_ne!(base, snapshot_name("erp", "nightly", slot(2, 1)));
        assert_ne!(base, snapshot_name("erp2", "nightly", slot(2, 0)));
        assert_ne!(base, snapshot_name("erp", "hourly", slot(2, 0)));
        // Moving the dash between server and policy is a different pair.
        assert_ne!(
            snapshot_name("a-b", "c", slot(2, 0)),
            snapshot_name("a", "b-c", slot(2, 0))
        );
        // A "run now" a few seconds into a scheduled minute is its own backup.
        assert_ne!(
            base,
            snapshot_name(
                "erp",
                "nightly",
                slot(2, 0) + chrono::TimeDelta::seconds(17)
            )
        );
    }

    #[test]
    fn long_names_are_truncated_to_a_valid_label_and_stay_distinct() {
        let long_server = "accounting-server-of-a-very-long-client-name-for-testing";
        let long_policy = "nightly-backups-with-a-policy-name-that-goes-on-and-on";
        let a = snapshot_name(long_server, long_policy, slot(2, 0));
        let b = snapshot_name(&format!("{long_server}x"), long_policy, slot(2, 0));
        for name in [&a, &b] {
            assert!(is_dns_label(name), "{name}");
            assert_eq!(name.len(), 63, "{name}");
            assert!(name.contains("-202601050200-"), "{name}");
        }
        assert_ne!(a, b);
        assert!(a.starts_with("accounting-server-of"), "{a}");
    }

    #[test]
    fn a_short_policy_leaves_its_room_to_a_long_server_name() {
        let server = "a".repeat(60);
        let name = snapshot_name(&server, "daily", slot(2, 0));
        assert!(is_dns_label(&name), "{name}");
        assert!(
            name.starts_with(&format!("{}-daily-", "a".repeat(35))),
            "{name}"
        );
        assert_eq!(name.len(), 63);
    }

    #[test]
    fn dots_and_capitals_in_names_become_a_valid_label() {
        let name = snapshot_name("erp.client.example", "Nightly", slot(2, 0));
        assert!(is_dns_label(&name), "{name}");
        assert!(name.starts_with("erp-client-example-nightly-"), "{name}");
    }

    #[test]
    fn a_truncation_ending_on_a_dash_is_trimmed() {
        // The cut would fall right after "x-".
        let server = format!("{}-tail", "x".repeat(19));
        let name = snapshot_name(&server, &"p".repeat(40), slot(2, 0));
        assert!(is_dns_label(&name), "{name}");
        assert!(!name.contains("--"), "{name}");
    }

    #[test]
    fn drill_server_names_are_deterministic_valid_and_distinct() {
        let a = drill_server_name("erp", "nightly", slot(4, 0));
        assert!(a.starts_with("erp-drill-"), "{a}");
        assert_eq!(a.len(), "erp-drill-".len() + HASH_LEN);
        assert_eq!(a, drill_server_name("erp", "nightly", slot(4, 0)));
        assert_ne!(a, drill_server_name("erp", "weekly", slot(4, 0)));
        assert_ne!(a, drill_server_name("erp", "nightly", slot(5, 0)));
        let long = drill_server_name(&"s".repeat(100), "nightly", slot(4, 0));
        assert!(is_dns_label(&long), "{long}");
        assert_eq!(long.len(), SERVER_NAME_MAX);
        assert_ne!(
            long,
            drill_server_name(&"s".repeat(101), "nightly", slot(4, 0))
        );
    }

    #[test]
    fn every_snapshot_carries_policy_server_slot_and_manager_labels() {
        let labels = snapshot_labels("erp", "nightly", slot(2, 0));
        assert_eq!(labels[POLICY_LABEL], "nightly");
        assert_eq!(labels[SERVER_LABEL], "erp");
        assert_eq!(labels[SLOT_LABEL], "20260105T020000Z");
        assert_eq!(labels[MANAGED_BY_LABEL], "partnercloud");
        assert!(labels.values().all(|v| is_label_value(v)));
    }

    #[test]
    fn long_names_become_valid_distinct_label_values() {
        let long = format!("{}.example.com", "server".repeat(12));
        let value = label_value(&long);
        assert!(is_label_value(&value), "{value}");
        assert_ne!(value, label_value(&format!("{long}x")));
        assert_eq!(value, label_value(&long));
        assert_eq!(label_value("erp"), "erp");
        let exactly_63 = "a".repeat(63);
        assert_eq!(label_value(&exactly_63), exactly_63);
    }

    #[test]
    fn slot_labels_read_back_as_their_slot() {
        let t = slot(2, 30) + chrono::TimeDelta::seconds(17);
        assert_eq!(parse_slot_label(&slot_label(t)), Some(t));
        assert_eq!(parse_slot_label("yesterday"), None);
    }

    #[test]
    fn selectors_use_the_label_values() {
        assert_eq!(
            drill_selector("nightly"),
            "partnercloud.io/backup-policy=nightly,partnercloud.io/role=restore-drill"
        );
        assert_eq!(
            policy_selector("nightly"),
            "partnercloud.io/backup-policy=nightly"
        );
        assert_eq!(
            server_selector("nightly", "erp"),
            "partnercloud.io/backup-policy=nightly,partnercloud.io/server=erp"
        );
    }
}
