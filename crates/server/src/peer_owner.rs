//! Which local user owns the other end of a TCP connection: the facts identd
//! (RFC 1413) serves, read from the kernel's TCP tables (`/proc/net/tcp`,
//! `/proc/net/tcp6`).
//!
//! A connection from this host has two sockets in those tables: ours (local = the
//! server's address, remote = the client's) and the client's (local = the client's
//! address, remote = ours). The client's line carries the uid of the process that
//! opened it. Only meaningful for connections from this host; for any other peer the
//! answer is `None`.
//!
//! Reading the tables costs time proportional to the number of sockets on the host, so
//! callers ask only when they need to (a `/shutdown`), not per connection.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The uid owning the client socket `peer` connected to `local` (our side), if this
/// host has it.
pub(crate) fn owner_of(peer: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if let Some(uid) = find_owner(&text, peer, local) {
            return Ok(Some(uid));
        }
    }
    Ok(None)
}

/// The uid on the line of `text` (a TCP table) whose local address is `peer` and
/// remote address is `local`.
fn find_owner(text: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid …
        let (from, to, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (same(parse_address(from)?, peer) && same(parse_address(to)?, local))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// Whether two addresses are the same, an IPv4 address matching its IPv6-mapped form.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && canonical(a.ip()) == canonical(b.ip())
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6). The address is written as
/// 32-bit words in the host's byte order; the port in plain hex.
fn parse_address(field: &str) -> Option<SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_tables_formats() {
        // Little-endian hosts (as this one): 127.0.0.1 is 0100007F.
        if cfg!(target_endian = "little") {
            assert_eq!(
                parse_address("0100007F:1F90"),
                Some("127.0.0.1:8080".parse().unwrap())
            );
            assert_eq!(
                parse_address("00000000000000000000000001000000:0016"),
                Some("[::1]:22".parse().unwrap())
            );
            assert_eq!(
                parse_address("0000000000000000FFFF00000100007F:1F90"),
                Some("[::ffff:127.0.0.1]:8080".parse().unwrap())
            );
        }
        assert_eq!(parse_address("zz:1"), None);
        assert_eq!(parse_address("0100007F"), None);
    }

    #[test]
    fn finds_the_line_of_the_clients_socket() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2328 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0 20 4 30 10 -1
   1: 0100007F:D431 0100007F:2328 01 00000000:00000000 00:00000000 00000000 65534        0 2 1 0 20 4 30 10 -1
";
        if cfg!(target_endian = "little") {
            let server: SocketAddr = "127.0.0.1:9000".parse().unwrap();
            let client: SocketAddr = "127.0.0.1:54321".parse().unwrap();
            assert_eq!(find_owner(table, client, server), Some(65534));
            assert_eq!(find_owner(table, server, client), Some(0), "the other side");
            let stranger: SocketAddr = "127.0.0.1:1".parse().unwrap();
            assert_eq!(find_owner(table, stranger, server), None);
        }
    }

    #[test]
    fn finds_a_real_connection_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        assert_eq!(owner_of(peer, local).unwrap(), Some(me));
    }
}
