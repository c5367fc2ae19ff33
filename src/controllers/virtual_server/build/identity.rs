//! A server's machine identity: MAC address and firmware (SMBIOS) UUID.
//!
//! Both are derived from the VirtualServer's UID, so every server has its
//! own identity from the start — a hot copy or a restore never boots with its
//! source's MAC or UUID — and repeated reconciles render the same values.

use sha2::{Digest, Sha256};

/// The identity the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub mac: String,
    pub uuid: String,
}

pub fn for_server(uid: &str) -> Identity {
    let digest = Sha256::digest(format!("partnercloud/identity/{uid}").as_bytes());
    // Locally administered (bit 1 set), unicast (bit 0 clear).
    let mac_bytes = [
        (digest[0] & 0xfc) | 0x02,
        digest[1],
        digest[2],
        digest[3],
        digest[4],
        digest[5],
    ];
    let mac = mac_bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let mut u = [0u8; 16];
    u.copy_from_slice(&digest[16..32]);
    u[6] = (u[6] & 0x0f) | 0x80; // version 8: custom, name-derived
    u[8] = (u[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = u.iter().map(|b| format!("{b:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    Identity { mac, uuid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_distinct_per_server() {
        let a = for_server("2c6c7d53-7f7e-4f3e-9a43-0d7ad1f0b9a1");
        let again = for_server("2c6c7d53-7f7e-4f3e-9a43-0d7ad1f0b9a1");
        let b = for_server("9b1d0e4a-0000-4000-8000-000000000002");
        assert_eq!(a, again);
        assert_ne!(a.mac, b.mac);
        assert_ne!(a.uuid, b.uuid);
    }

    #[test]
    fn mac_is_locally_administered_unicast_and_uuid_well_formed() {
        let id = for_server("any");
        let first = u8::from_str_radix(&id.mac[0..2], 16).unwrap();
        assert_eq!(first & 0x03, 0x02);
        assert_eq!(id.mac.len(), 17);
        assert_eq!(id.uuid.len(), 36);
        assert_eq!(&id.uuid[14..15], "8");
        assert!(matches!(&id.uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
