//! TLS for `chat-client --tls`: which servers to trust, and the name to check.
//!
//! By default the server's certificate must chain to one of the system's trusted
//! roots (`/etc/ssl/certs`, through `rustls-native-certs`) and name the host it was
//! asked for (`--ip`, or `--server-name` when connecting by address to a name).
//! `--ca=PEM` trusts those certificates instead (a self-signed server's own, say).
//! `--insecure` accepts any certificate — the connection is still encrypted, but
//! anyone in between can read it — and says so; it is refused unless asked for.
//!
//! No I/O here beyond reading the PEM file and the system's roots; the handshake runs
//! in [`crate::connection`].

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whom to trust; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust<'a> {
    /// The system's roots.
    System,
    /// The certificates in this PEM file.
    File(&'a Path),
    /// Anyone (`--insecure`).
    Anyone,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `trust`, or why not.
pub fn client_config(trust: Trust<'_>) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match trust {
        Trust::Anyone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth(),
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "no trusted root certificates on this system (install ca-certificates, or give --ca=PEM)"
                        .into(),
                );
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::File(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<_, _>>())
                .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("no usable certificate in {}", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: `server_name` if given, else the
/// host connected to (a DNS name or an IP address).
pub fn server_name(host: &str, server_name: Option<&str>) -> Result<ServerName<'static>, String> {
    let name = server_name.unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|_| {
        format!("{name:?} is not a host name or address to check a certificate against")
    })
}

/// `--insecure`: every certificate is taken, its signatures are still checked (so the
/// handshake is a real one with whoever holds the key).
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
    fn names_and_addresses_are_checked_as_given() {
        assert!(matches!(
            server_name("127.0.0.1", None),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1", Some("chat.example.org")),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("not a name!", None).is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_that_names_it() {
        let missing = Path::new("/nonexistent/ca.pem");
        let error = client_config(Trust::File(missing)).unwrap_err();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        let empty =
            std::env::temp_dir().join(format!("chat-client-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let error = client_config(Trust::File(&empty)).unwrap_err();
        let _ = std::fs::remove_file(&empty);
        assert!(error.contains("no usable certificate"), "{error}");
    }
}
