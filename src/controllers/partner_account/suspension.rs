//! Suspension: which servers must be halted, and what runs again on resume.
//!
//! A server's effective run strategy is a pure function of three spec
//! fields — its own `spec.powerState`, its client's `suspended` and the
//! partner's `spec.suspended` — so suspending never writes to a server's
//! spec and resuming needs nothing stored: when both flags are false again,
//! the same function gives each server its own `powerState` back, and a
//! server stopped before the suspension stays stopped. Nothing is ever
//! deleted by a suspension; new servers and growth are refused meanwhile
//! (see [`crate::controllers::partner_account::quota::PoolLedger`]).

use std::fmt;

use crate::api::partner_account::{Client, PartnerAccountSpec};
use crate::api::virtual_server::PowerState;

/// Who suspended a client's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuspendedBy {
    /// `spec.clients[].suspended`.
    Client,
    /// `spec.suspended`, for all clients.
    Partner,
    /// Both: resuming needs both flags cleared.
    ClientAndPartner,
}

impl fmt::Display for SuspendedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SuspendedBy::Client => "client",
            SuspendedBy::Partner => "partner",
            SuspendedBy::ClientAndPartner => "client and partner",
        })
    }
}

/// Whether, and by whom, a client is suspended.
pub fn suspended_by(client_suspended: bool, partner_suspended: bool) -> Option<SuspendedBy> {
    match (client_suspended, partner_suspended) {
        (false, false) => None,
        (true, false) => Some(SuspendedBy::Client),
        (false, true) => Some(SuspendedBy::Partner),
        (true, true) => Some(SuspendedBy::ClientAndPartner),
    }
}

/// Whether, and by whom, `client` of `partner` is suspended.
pub fn client_suspension(partner: &PartnerAccountSpec, client: &Client) -> Option<SuspendedBy> {
    suspended_by(client.suspended, partner.suspended)
}

/// KubeVirt's `spec.runStrategy` for a VirtualMachine (we never set the
/// deprecated `spec.running`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStrategy {
    /// Keep the VM running; KubeVirt starts it again if it stops. This is
    /// what `powerState: Running` declares: the server is on, whatever
    /// happened inside; to turn it off, set `Stopped`.
    Always,
    /// Keep the VM stopped.
    Halted,
}

impl RunStrategy {
    /// The value as KubeVirt spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStrategy::Always => "Always",
            RunStrategy::Halted => "Halted",
        }
    }
}

/// A server's effective power, and why it differs from its own when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectivePower {
    pub run_strategy: RunStrategy,
    /// Set when a suspension overrides the server's own `powerState`
    /// (also for a server that was stopped anyway, so status can say it is
    /// held by the suspension).
    pub suspended_by: Option<SuspendedBy>,
}

/// The run strategy a server gets: `Halted` while its client or partner is
/// suspended, otherwise its own `powerState`.
pub fn effective_power(
    own: PowerState,
    client_suspended: bool,
    partner_suspended: bool,
) -> EffectivePower {
    let suspended_by = suspended_by(client_suspended, partner_suspended);
    let run_strategy = match (suspended_by, own) {
        (Some(_), _) | (None, PowerState::Stopped) => RunStrategy::Halted,
        (None, PowerState::Running) => RunStrategy::Always,
    };
    EffectivePower {
        run_strategy,
        suspended_by,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::partner_account::fixtures::{CONSOLIDATED_DELETE, partner};

    #[test]
    fn unsuspended_servers_follow_their_own_power_state() {
        assert_eq!(
            effective_power(PowerState::Running, false, false),
            EffectivePower {
                run_strategy: RunStrategy::Always,
                suspended_by: None
            }
        );
        assert_eq!(
            effective_power(PowerState::Stopped, false, false).run_strategy,
            RunStrategy::Halted
        );
    }

    #[test]
    fn client_suspension_halts_a_running_server() {
        let p = effective_power(PowerState::Running, true, false);
        assert_eq!(p.run_strategy, RunStrategy::Halted);
        assert_eq!(p.suspended_by, Some(SuspendedBy::Client));
    }

    #[test]
    fn partner_suspension_halts_every_clients_servers() {
        let p = effective_power(PowerState::Running, false, true);
        assert_eq!(p.run_strategy, RunStrategy::Halted);
        assert_eq!(p.suspended_by, Some(SuspendedBy::Partner));
    }

    #[test]
    fn resuming_restores_each_servers_own_state_with_nothing_stored() {
        // Suspend, then resume: the function of the (untouched) spec gives
        // back exactly what each server had before.
        for own in [PowerState::Running, PowerState::Stopped] {
            let before = effective_power(own, false, false);
            let during = effective_power(own, true, true);
            let after = effective_power(own, false, false);
            assert_eq!(during.run_strategy, RunStrategy::Halted);
            assert_eq!(after, before);
        }
    }

    #[test]
    fn resuming_only_one_of_two_suspensions_keeps_servers_halted() {
        let p = effective_power(PowerState::Running, true, false);
        assert_eq!(p.run_strategy, RunStrategy::Halted);
        let p = effective_power(PowerState::Running, false, true);
        assert_eq!(p.run_strategy, RunStrategy::Halted);
        assert_eq!(
            effective_power(PowerState::Running, true, true).suspended_by,
            Some(SuspendedBy::ClientAndPartner)
        );
    }

    #[test]
    fn a_stopped_server_under_suspension_is_reported_as_held() {
        let p = effective_power(PowerState::Stopped, true, false);
        assert_eq!(p.run_strategy, RunStrategy::Halted);
        assert_eq!(p.suspended_by, Some(SuspendedBy::Client));
    }

    #[test]
    fn run_strategies_are_spelled_as_kubevirt_spells_them() {
        assert_eq!(RunStrategy::Always.as_str(), "Always");
        assert_eq!(RunStrategy::Halted.as_str(), "Halted");
    }

    #[test]
    fn client_suspension_reads_the_spec() {
        let mut p = partner(CONSOLIDATED_DELETE).spec;
        // shop is suspended, school is not.
        assert_eq!(
            client_suspension(&p, &p.clients[0]),
            Some(SuspendedBy::Client)
        );
        assert_eq!(client_suspension(&p, &p.clients[1]), None);
        p.suspended = true;
        assert_eq!(
            client_suspension(&p, &p.clients[1]),
            Some(SuspendedBy::Partner)
        );
    }
}
