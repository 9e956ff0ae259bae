//! `--tls`: the client configuration every bench connection shares.
//!
//! Whom to trust is never left to a default: `--tls-ca=PEM` trusts the certificates
//! in that file (a self-signed server's own, or its CA), `--tls-insecure` accepts any
//! certificate (the traffic is still encrypted the same way, so the cost measured is
//! the same; only who is on the other end is not checked) and must be asked for. The
//! name checked against the certificate is `--tls-server-name` (`localhost` unless
//! given), not `--host`, since the bench connects by address.
//!
//! The trust choices, the configuration and the `--tls-insecure` verifier are
//! `chat-client`'s ([`chat_client::tls`]); the bench only turns session resumption
//! off. TLS 1.3 and 1.2 as rustls offers them (ring provider); the server picks.
//! Sessions are not resumed: every connection does a full handshake, as that many
//! distinct clients would. The handshake happens during setup (connect → joined),
//! never in a measured run. The record layer itself is in [`crate::conn`].

use std::sync::Arc;

pub use chat_client::tls::Trust;
use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;

/// What every TLS connection of a run is made from.
#[derive(Debug, Clone)]
pub struct TlsPlan {
    /// The shared client configuration.
    pub config: Arc<ClientConfig>,
    /// The name the server's certificate must carry.
    pub server_name: ServerName<'static>,
}

impl TlsPlan {
    /// A plan trusting `trust`, checking certificates against `server_name`, or why
    /// not (naming the flag or the file).
    pub fn new(trust: Trust<'_>, server_name: &str) -> Result<Self, String> {
        let server_name = chat_client::tls::server_name(server_name, None)
            .map_err(|e| format!("--tls-server-name: {e}"))?;
        Ok(Self {
            config: client_config(trust)?,
            server_name,
        })
    }

    /// A client connection for one socket, its `ClientHello` already queued.
    pub fn connect(&self) -> Result<rustls::ClientConnection, rustls::Error> {
        rustls::ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
    }
}

/// `chat-client`'s configuration for `trust`, without session resumption: thousands
/// of "clients" in one process would otherwise resume each other's sessions, which
/// real clients cannot.
pub fn client_config(trust: Trust<'_>) -> Result<Arc<ClientConfig>, String> {
    let flag = match trust {
        Trust::File(_) => "--tls-ca",
        Trust::Anyone => "--tls-insecure",
        Trust::System => "--tls",
    };
    let shared = chat_client::tls::client_config(trust).map_err(|e| format!("{flag}: {e}"))?;
    let mut config = ClientConfig::clone(&shared);
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn names_are_checked_and_files_must_hold_certificates() {
        assert!(TlsPlan::new(Trust::Anyone, "localhost").is_ok());
        assert!(matches!(
            TlsPlan::new(Trust::Anyone, "127.0.0.1")
                .unwrap()
                .server_name,
            ServerName::IpAddress(_)
        ));
        let why = TlsPlan::new(Trust::Anyone, "not a name!").unwrap_err();
        assert!(why.contains("--tls-server-name"), "{why}");
        let why =
            TlsPlan::new(Trust::File(Path::new("/nonexistent/ca.pem")), "localhost").unwrap_err();
        assert!(why.contains("--tls-ca"), "{why}");
    }

    #[test]
    fn sessions_are_not_resumed() {
        let plan = TlsPlan::new(Trust::Anyone, "localhost").unwrap();
        assert!(plan.connect().unwrap().is_handshaking());
        // Resumption::disabled() keeps no sessions, so every handshake is a full one.
        assert_eq!(
            format!("{:?}", plan.config.resumption),
            format!("{:?}", Resumption::disabled())
        );
    }
}
