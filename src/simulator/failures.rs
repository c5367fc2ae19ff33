//! Failure injection: which objects the simulator makes fail, and how.
//!
//! Tests hold the plan and change it while the simulator runs; the
//! `simulate` command fills it from flags. An object can also ask for a
//! failure itself with the annotation `simulator.partnercloud.io/fail`
//! (values below), which is handy with `kubectl annotate`.

use std::collections::BTreeSet;
use std::sync::RwLock;

pub const ANNOTATION: &str = "simulator.partnercloud.io/fail";

/// The name that stands for every object of a namespace in a plan.
const EVERY: &str = "*";

/// How an object fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// A DataVolume import answers 404 on every attempt.
    Import404,
    /// A VirtualMachineSnapshot ends `Failed`.
    SnapshotFails,
    /// A VirtualMachineSnapshot stays `InProgress` forever.
    SnapshotStuck,
    /// A VirtualMachineSnapshot succeeds without the guest agent (crash-consistent).
    NoGuestAgent,
    /// A VirtualMachine crash-loops instead of starting.
    StartFails,
}

impl Failure {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "import-404" => Some(Self::Import404),
            "snapshot-fails" => Some(Self::SnapshotFails),
            "snapshot-stuck" => Some(Self::SnapshotStuck),
            "no-guest-agent" => Some(Self::NoGuestAgent),
            "start-fails" => Some(Self::StartFails),
            _ => None,
        }
    }
}

/// Object names (namespace/name) and the failures injected into them.
#[derive(Debug, Default)]
pub struct FailurePlan {
    entries: RwLock<BTreeSet<(String, Failure)>>,
}

impl FailurePlan {
    /// Makes `namespace/name` fail with `failure`.
    pub fn inject(&self, namespace: &str, name: &str, failure: Failure) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert((format!("{namespace}/{name}"), failure));
    }

    /// Makes every object in `namespace` fail with `failure` (for objects
    /// whose names a test cannot know in advance, like a backup's).
    pub fn inject_namespace(&self, namespace: &str, failure: Failure) {
        self.inject(namespace, EVERY, failure);
    }

    /// Stops injecting `failure` into `namespace/name`.
    pub fn heal(&self, namespace: &str, name: &str, failure: Failure) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(format!("{namespace}/{name}"), failure));
    }

    /// Whether the object should fail this way, by plan or by its own annotation.
    pub fn applies(
        &self,
        namespace: &str,
        name: &str,
        annotations: Option<&std::collections::BTreeMap<String, String>>,
        failure: Failure,
    ) -> bool {
        let by_annotation = annotations
            .and_then(|a| a.get(ANNOTATION))
            .is_some_and(|v| {
                v.split(',')
                    .any(|f| Failure::parse(f.trim()) == Some(failure))
            });
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        by_annotation
            || entries.contains(&(format!("{namespace}/{name}"), failure))
            || entries.contains(&(format!("{namespace}/{EVERY}"), failure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_and_annotation_both_inject() {
        let plan = FailurePlan::default();
        assert!(!plan.applies("ns", "a", None, Failure::SnapshotFails));
        plan.inject("ns", "a", Failure::SnapshotFails);
        assert!(plan.applies("ns", "a", None, Failure::SnapshotFails));
        assert!(!plan.applies("ns", "b", None, Failure::SnapshotFails));
        plan.heal("ns", "a", Failure::SnapshotFails);
        assert!(!plan.applies("ns", "a", None, Failure::SnapshotFails));
        let annotations = std::collections::BTreeMap::from([(
            ANNOTATION.to_string(),
            "start-fails, snapshot-stuck".to_string(),
        )]);
        assert!(plan.applies("ns", "c", Some(&annotations), Failure::SnapshotStuck));
        assert!(!plan.applies("ns", "c", Some(&annotations), Failure::Import404));
        plan.inject_namespace("ns2", Failure::SnapshotStuck);
        assert!(plan.applies("ns2", "any", None, Failure::SnapshotStuck));
        assert!(!plan.applies("ns", "any", None, Failure::SnapshotStuck));
        plan.heal("ns2", "*", Failure::SnapshotStuck);
        assert!(!plan.applies("ns2", "any", None, Failure::SnapshotStuck));
    }
}
