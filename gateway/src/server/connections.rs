//! Counts open client connections, in all and per client address, and refuses one more
//! beyond either bound. A client is an IPv4 address or an IPv6 /64 (one host commonly holds
//! a whole /64). The per-client map holds only clients with an open connection, so it is
//! bounded by the total.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every connection slot is taken.
    Total,
    /// This client holds its share already.
    PerClient,
}

impl Refusal {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerClient => "per_client",
        }
    }
}

/// The client a connection is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of a peer address: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

#[derive(Default)]
struct Counts {
    total: u32,
    per_client: HashMap<ClientKey, u32>,
}

/// Open connections and their bounds.
pub struct ConnectionGate {
    max_total: u32,
    max_per_client: u32,
    counts: Mutex<Counts>,
}

/// One admitted connection; gives its slot back when dropped.
pub struct ConnectionSlot {
    gate: Arc<ConnectionGate>,
    client: ClientKey,
}

impl ConnectionGate {
    /// A gate admitting `max_total` connections, `max_per_client` of them per client.
    pub fn new(max_total: u32, max_per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_client,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `peer`, or says why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let client = ClientKey::of(peer);
        let mut counts = self.counts.lock();
        if counts.total >= self.max_total {
            return Err(Refusal::Total);
        }
        let held = counts.per_client.entry(client).or_insert(0);
        if *held >= self.max_per_client {
            return Err(Refusal::PerClient);
        }
        *held += 1;
        counts.total += 1;
        Ok(ConnectionSlot {
            gate: Arc::clone(self),
            client,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> u32 {
        self.counts.lock().total
    }

    /// Clients with a connection open now.
    pub fn clients(&self) -> usize {
        self.counts.lock().per_client.len()
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.gate.counts.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_client.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                counts.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn refuses_a_client_over_its_share_and_admits_others() {
        let gate = ConnectionGate::new(10, 2);
        let a1 = gate.admit(ip("10.0.0.1")).unwrap();
        let _a2 = gate.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.1")).err(), Some(Refusal::PerClient));
        let _b = gate.admit(ip("10.0.0.2")).unwrap();
        drop(a1);
        assert!(gate.admit(ip("10.0.0.1")).is_ok());
    }

    #[test]
    fn refuses_everyone_when_full_and_forgets_clients_that_left() {
        let gate = ConnectionGate::new(2, 5);
        let a = gate.admit(ip("10.0.0.1")).unwrap();
        let b = gate.admit(ip("10.0.0.2")).unwrap();
        assert_eq!(gate.admit(ip("10.0.0.3")).err(), Some(Refusal::Total));
        drop((a, b));
        assert_eq!((gate.open(), gate.clients()), (0, 0));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let gate = ConnectionGate::new(10, 1);
        let _a = gate.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            gate.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::PerClient)
        );
        assert!(gate.admit(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = gate.admit(ip("192.0.2.7")).unwrap();
        assert_eq!(
            gate.admit(ip("::ffff:192.0.2.7")).err(),
            Some(Refusal::PerClient)
        );
    }
}
