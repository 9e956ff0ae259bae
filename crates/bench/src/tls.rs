//! `--tls`: the client configuration every bench connection shares.
//!
//! Whom to trust is never left to a default: `--tls-ca=PEM` trusts the certificates
//! in that file (a self-signed server's own, or its CA), `--tls-insecure` accepts any
//! certificate (the traffic is still encrypted the same way, so the cost measured is
//! the same; only who is on the other end is not checked) and must be asked for. The
//! name checked against the certificate is `--tls-server-name` (`localhost` unless
//! given), not `--host`, since the bench connects by address.
//!
//! TLS 1.3 and 1.2 as rustls offers them (ring provider); the server picks. Sessions
//! are not resumed: every connection does a full handshake, as that many distinct
//! clients would. The handshake happens during setup (connect → joined), never in a
//! measured run. The record layer itself is in [`crate::conn`].

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whom the bench trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    /// The certificates in this PEM file (`--tls-ca`).
    File(&'a Path),
    /// Any certificate (`--tls-insecure`).
    Anyone,
}

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
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            format!("--tls-server-name={server_name:?} is not a host name or address")
        })?;
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

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `trust`, without session resumption.
pub fn client_config(trust: Trust<'_>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let mut config = match trust {
        Trust::Anyone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
        Trust::File(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| {
                    format!(
                        "--tls-ca: cannot read certificates from {}: {e}",
                        path.display()
                    )
                })?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "--tls-ca: no usable certificate in {}",
                    path.display()
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    // Thousands of "clients" in one process would otherwise resume each other's
    // sessions, which real clients cannot.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// `--tls-insecure`: every certificate is taken; its signatures are still checked, so
/// the handshake is a real one with whoever holds the key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
