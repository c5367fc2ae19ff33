//! Picking free loopback ports for the components.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use super::Error;

/// The loopback address every component binds to.
pub(crate) const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The ports of one control plane.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
    pub controller_manager: u16,
}

impl Ports {
    /// Asks the kernel for four distinct free ports on 127.0.0.1.
    ///
    /// All listeners are held until every port is known, so the four differ; they are released
    /// before the components bind them, which leaves a small window for another process to take
    /// one — acceptable for tests, and the component then fails loudly.
    pub fn pick() -> Result<Self, Error> {
        let listeners = (0..4)
            .map(|_| TcpListener::bind(SocketAddr::new(LOOPBACK, 0)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::io("binding 127.0.0.1:0 to pick a free port"))?;
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().map(|addr| addr.port()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::io("reading the address of a picked port"))?;
        Ok(Self {
            etcd_client: ports[0],
            etcd_peer: ports[1],
            apiserver: ports[2],
            controller_manager: ports[3],
        })
    }
}

#[cfg(test)]
impl Ports {
    /// Fixed small ports, for tests of command lines.
    pub fn fixture() -> Self {
        Self {
            etcd_client: 1,
            etcd_peer: 2,
            apiserver: 3,
            controller_manager: 4,
        }
    }
}

/// `http://127.0.0.1:<port>` or `https://…`.
pub(crate) fn loopback_url(scheme: &str, port: u16) -> String {
    format!("{scheme}://{LOOPBACK}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picked_ports_are_distinct() {
        let ports = Ports::pick().unwrap();
        let mut all = [
            ports.etcd_client,
            ports.etcd_peer,
            ports.apiserver,
            ports.controller_manager,
        ];
        all.sort_unstable();
        assert!(all.windows(2).all(|pair| pair[0] != pair[1]), "{all:?}");
        assert!(all[0] > 0);
    }

    #[test]
    fn urls_are_on_loopback() {
        assert_eq!(loopback_url("https", 6443), "https://127.0.0.1:6443");
    }
}
