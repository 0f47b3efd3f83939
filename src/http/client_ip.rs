//! The client's address: the TCP peer, or, behind a known number of trusted proxies, the
//! X-Forwarded-For entry the outermost trusted proxy appended.

use std::net::IpAddr;

/// Finds who is asking. `forwarded_for` are the X-Forwarded-For header lines in the order
/// they arrived (a proxy may append a line rather than extend the last one); `None` stands
/// for a line that is not text, which makes the whole header untrustworthy.
///
/// Each trusted proxy appends the address it received the request from, so with
/// `trusted_proxies` = N the right-most N-1 entries were added by the inner proxies and the
/// N-th from the right is what the outermost one saw. Everything left of it is whatever the
/// client chose to send, so it is never read. Too few entries, or one that is not an IP
/// address, falls back to the peer.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = Option<&'a str>>,
    trusted_proxies: usize,
) -> IpAddr {
    let peer = peer.to_canonical();
    if trusted_proxies == 0 {
        return peer;
    }
    let mut lines = Vec::new();
    for line in forwarded_for {
        match line {
            Some(l) => lines.push(l),
            None => return peer,
        }
    }
    let joined = lines.join(",");
    if joined.trim().is_empty() {
        return peer;
    }
    joined
        .rsplit(',')
        .nth(trusted_proxies - 1)
        .and_then(|entry| entry.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PEER: &str = "10.0.0.1";

    fn from(lines: &[&str], proxies: usize) -> String {
        client_ip(ip(PEER), lines.iter().map(|l| Some(*l)), proxies).to_string()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(from(&["203.0.113.9"], 0), PEER);
    }

    #[test]
    fn one_proxy_means_the_right_most_entry() {
        assert_eq!(from(&["203.0.113.9"], 1), "203.0.113.9");
        assert_eq!(from(&["198.51.100.1, 203.0.113.9"], 1), "203.0.113.9");
    }

    #[test]
    fn rotating_the_left_most_entries_changes_nothing() {
        for forged in ["1.1.1.1", "2.2.2.2, 3.3.3.3", "not an address", "", "::1"] {
            let line = format!("{forged}, 203.0.113.9");
            assert_eq!(from(&[&line], 1), "203.0.113.9", "{line}");
            let line = format!("{forged}, 203.0.113.9, 192.168.1.2");
            assert_eq!(from(&[&line], 2), "203.0.113.9", "{line}");
        }
    }

    #[test]
    fn inner_proxies_are_skipped() {
        assert_eq!(
            from(&["198.51.100.1, 203.0.113.9, 192.168.1.2, 192.168.1.3"], 3),
            "203.0.113.9"
        );
    }

    #[test]
    fn all_header_lines_count_as_one_list() {
        assert_eq!(
            from(&["198.51.100.1", "203.0.113.9, 192.168.1.2"], 2),
            "203.0.113.9"
        );
        assert_eq!(from(&["198.51.100.1", "203.0.113.9"], 1), "203.0.113.9");
    }

    #[test]
    fn too_few_entries_fall_back_to_the_peer() {
        assert_eq!(from(&[], 1), PEER);
        assert_eq!(from(&[""], 1), PEER);
        assert_eq!(from(&["203.0.113.9"], 2), PEER);
    }

    #[test]
    fn anything_but_an_address_falls_back_to_the_peer() {
        for entry in [
            "unknown",
            "203.0.113.9:4711",
            "[2001:db8::1]",
            "203.0.113.9 extra",
            &"9".repeat(10_000),
        ] {
            assert_eq!(from(&[entry], 1), PEER, "{entry}");
        }
        assert_eq!(
            client_ip(ip(PEER), [Some("1.1.1.1"), None], 1).to_string(),
            PEER
        );
    }

    #[test]
    fn addresses_come_out_canonical() {
        assert_eq!(from(&[" 2001:DB8:0:0::1 "], 1), "2001:db8::1");
        assert_eq!(from(&["::ffff:203.0.113.9"], 1), "203.0.113.9");
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.1"), [], 0).to_string(),
            "10.0.0.1"
        );
    }
}
