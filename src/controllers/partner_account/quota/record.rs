//! The record of an admission: the size a server was admitted at, kept
//! where the decision is kept so the next decision (or the next replica)
//! counts it without deciding again.
//!
//! **Where it is kept matters.** It lives in the VirtualServer's
//! `status.admitted` ([`AdmittedSize`]). An annotation would have been
//! convenient, but partner admins may update VirtualServers, so they could
//! write an inflated record and then resize up to it without a decision.
//! Status is a subresource the client-admin role may only read (see
//! `manifests/rbac/`), so only the operator writes the record.
//!
//! [`encode`] renders a record as one line, `cores=4,memory=8Gi,storage=620Gi`
//! (for messages and logs); [`decode`] reads that form back: every key present
//! once, any order, sizes in any quantity notation.

use std::fmt;

use super::Resources;
use crate::api::quantity::{Bytes, QuantityError, parse_bytes};
use crate::api::virtual_server::AdmittedSize;

/// Why a record could not be read. A record that cannot be read is treated
/// as absent: the server is decided again (counted once, never partly).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("admission record {0:?}: every entry must be key=value")]
    Malformed(String),
    #[error("admission record lacks {0}")]
    Missing(&'static str),
    #[error("admission record names {0:?} twice")]
    Duplicate(String),
    #[error("admission record has unknown key {0:?}")]
    Unknown(String),
    #[error("admission record cores {0:?} is not a whole number")]
    Cores(String),
    #[error("admission record {key}: {source}")]
    Quantity {
        key: &'static str,
        #[source]
        source: QuantityError,
    },
}

/// A server's admitted size as a record (its `servers` count is implied).
pub struct Record<'a>(pub &'a Resources);

impl fmt::Display for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cores={},memory={},storage={}",
            self.0.cores,
            Bytes(self.0.memory),
            Bytes(self.0.storage)
        )
    }
}

/// A server's admitted size as its `status.admitted`.
pub fn to_status(size: &Resources) -> AdmittedSize {
    AdmittedSize {
        cores: u32::try_from(size.cores).unwrap_or(u32::MAX),
        memory: Bytes(size.memory).to_string(),
        storage: Bytes(size.storage).to_string(),
    }
}

/// Reads `status.admitted` back into one server's size.
pub fn from_status(record: &AdmittedSize) -> Result<Resources, RecordError> {
    let bytes = |value: &str, key: &'static str| {
        parse_bytes(value).map_err(|source| RecordError::Quantity { key, source })
    };
    Ok(Resources {
        servers: 1,
        cores: u64::from(record.cores),
        memory: bytes(&record.memory, "memory")?,
        storage: bytes(&record.storage, "storage")?,
    })
}

/// Writes a server's admitted size as one line.
pub fn encode(size: &Resources) -> String {
    Record(size).to_string()
}

/// Reads a record back into one server's size.
pub fn decode(text: &str) -> Result<Resources, RecordError> {
    let mut cores = None;
    let mut memory = None;
    let mut storage = None;
    for entry in text.trim().split(',') {
        let (key, value) = entry
            .split_once('=')
            .filter(|(_, value)| !value.contains('='))
            .ok_or_else(|| RecordError::Malformed(text.to_string()))?;
        let (key, value) = (key.trim(), value.trim());
        let slot = match key {
            "cores" => &mut cores,
            "memory" => &mut memory,
            "storage" => &mut storage,
            other => return Err(RecordError::Unknown(other.to_string())),
        };
        if slot.replace(value).is_some() {
            return Err(RecordError::Duplicate(key.to_string()));
        }
    }
    let cores = cores.ok_or(RecordError::Missing("cores"))?;
    let cores = match cores.parse::<u64>() {
        Ok(n) if !cores.starts_with('+') => n,
        _ => return Err(RecordError::Cores(cores.to_string())),
    };
    let bytes = |value: Option<&str>, key: &'static str| {
        parse_bytes(value.ok_or(RecordError::Missing(key))?)
            .map_err(|source| RecordError::Quantity { key, source })
    };
    Ok(Resources {
        servers: 1,
        cores,
        memory: bytes(memory, "memory")?,
        storage: bytes(storage, "storage")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::quota::test_support::{GI, server};

    #[test]
    fn status_record_round_trips_in_canonical_form() {
        let size = server(4, 8, 620);
        let record = to_status(&size);
        assert_eq!(record.cores, 4);
        assert_eq!(record.memory, "8Gi");
        assert_eq!(record.storage, "620Gi");
        assert_eq!(from_status(&record), Ok(size));
    }

    #[test]
    fn status_record_in_any_notation_reads_the_same_and_garbage_is_refused() {
        let record = AdmittedSize {
            cores: 4,
            memory: "8589934592".into(),
            storage: "634880Mi".into(),
        };
        assert_eq!(from_status(&record), Ok(server(4, 8, 620)));
        let bad = AdmittedSize {
            memory: "lots".into(),
            ..record
        };
        assert!(matches!(
            from_status(&bad),
            Err(RecordError::Quantity { key: "memory", .. })
        ));
    }

    #[test]
    fn record_is_one_readable_line() {
        assert_eq!(
            encode(&server(4, 8, 620)),
            "cores=4,memory=8Gi,storage=620Gi"
        );
    }

    #[test]
    fn what_is_written_reads_back_the_same() {
        for size in [
            server(1, 1, 1),
            server(128, 1024, 65536),
            Resources {
                servers: 1,
                cores: 3,
                memory: 1536 * (1 << 20),
                storage: 123_456_789,
            },
        ] {
            assert_eq!(decode(&encode(&size)), Ok(size));
        }
    }

    #[test]
    fn keys_may_come_in_any_order_and_any_notation() {
        assert_eq!(
            decode("storage=634880Mi, memory=8589934592 ,cores=4"),
            Ok(server(4, 8, 620))
        );
    }

    #[test]
    fn a_record_always_counts_exactly_one_server() {
        assert_eq!(decode("cores=1,memory=1Gi,storage=1Gi").unwrap().servers, 1);
        assert_eq!(decode("cores=1,memory=1Gi,storage=1Gi").unwrap().memory, GI);
    }

    #[test]
    fn incomplete_or_garbled_records_are_refused() {
        assert_eq!(
            decode("cores=4,memory=8Gi"),
            Err(RecordError::Missing("storage"))
        );
        assert_eq!(
            decode("memory=8Gi,storage=1Gi"),
            Err(RecordError::Missing("cores"))
        );
        assert!(matches!(decode(""), Err(RecordError::Malformed(_))));
        assert!(matches!(
            decode("cores=4;memory=8Gi"),
            Err(RecordError::Malformed(_))
        ));
        assert_eq!(
            decode("cores=4,cores=8,memory=8Gi,storage=1Gi"),
            Err(RecordError::Duplicate("cores".into()))
        );
        assert_eq!(
            decode("cores=4,memory=8Gi,storage=1Gi,gpus=1"),
            Err(RecordError::Unknown("gpus".into()))
        );
    }

    #[test]
    fn numbers_that_are_not_sizes_are_refused() {
        assert!(matches!(
            decode("cores=-1,memory=8Gi,storage=1Gi"),
            Err(RecordError::Cores(_))
        ));
        assert!(matches!(
            decode("cores=+1,memory=8Gi,storage=1Gi"),
            Err(RecordError::Cores(_))
        ));
        assert!(matches!(
            decode("cores=1.5,memory=8Gi,storage=1Gi"),
            Err(RecordError::Cores(_))
        ));
        assert!(matches!(
            decode("cores=1,memory=lots,storage=1Gi"),
            Err(RecordError::Quantity { key: "memory", .. })
        ));
        assert!(matches!(
            decode("cores=1,memory=1Gi,storage=0.5"),
            Err(RecordError::Quantity { key: "storage", .. })
        ));
    }
}
