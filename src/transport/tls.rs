//! TLS for QUIC: rustls with the ring provider, chosen explicitly (no process-wide default provider is
//! installed or needed), TLS 1.3 only.
//!
//! The server uses a configured PEM certificate, or a self-signed one created in the data directory on first
//! start. Clients verify the relay either against a CA file or by pinning the SHA-256 of its certificate;
//! there is deliberately no mode that skips verification.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::TlsConfig;

/// The ring provider; every rustls config in the crate is built from it.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path}: no {what} found in PEM file")]
    Pem { path: PathBuf, what: &'static str },
    /// rustls refused the certificate, key or settings.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A `--server-cert-sha256` value is not 64 hex digits.
    #[error("certificate fingerprint must be 64 hex digits (colons allowed), got {0:?}")]
    BadFingerprint(String),
}

/// The relay's certificate chain and key.
#[derive(Debug)]
pub struct Identity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where the certificate came from (logged).
    pub source: PathBuf,
}

impl Identity {
    /// SHA-256 of the end-entity certificate, the value clients pin.
    pub fn sha256(&self) -> [u8; 32] {
        sha256(&self.certs[0])
    }
}

pub fn sha256(der: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

/// Lower-case hex without separators.
pub fn fingerprint_hex(fp: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(fp)
}

/// Parses a fingerprint as printed by the server (colons and case are ignored).
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], TlsError> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    data_encoding::HEXLOWER
        .decode(hex.as_bytes())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| TlsError::BadFingerprint(s.to_string()))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Io {
        path: path.to_owned(),
        source: e,
    })
}

fn load_pem(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&read(cert)?)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Pem {
        path: key.to_owned(),
        what: "private key",
    })?;
    Ok(Identity {
        certs,
        key,
        source: cert.to_owned(),
    })
}

/// Loads the configured certificate, or the self-signed one in `data_dir/tls/` (creating it first).
pub fn load_or_create_identity(cfg: &TlsConfig, data_dir: &Path) -> Result<Identity, TlsError> {
    if !cfg.cert_file.is_empty() {
        return load_pem(Path::new(&cfg.cert_file), Path::new(&cfg.key_file));
    }
    let dir = data_dir.join("tls");
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !cert_path.exists() || !key_path.exists() {
        let names: Vec<String> = cfg
            .self_signed_names
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let key = RingKey::generate()?;
        let cert = rcgen::CertificateParams::new(names)?.self_signed(&key)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e| TlsError::Io { path, source: e }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        crate::server::write_private(&key_path, key.pem().as_bytes()).map_err(io(&key_path))?;
        std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
        tracing::info!(path = %cert_path.display(), "created self-signed certificate");
    }
    load_pem(&cert_path, &key_path)
}

/// An ECDSA P-256 key made and used with ring, for rcgen to sign the self-signed certificate with. (rcgen's
/// own key generation takes whichever crypto backend the dependency graph enabled for it; str0m's DTLS enables
/// aws-lc-rs, and the relay's TLS stays on ring.)
struct RingKey {
    pair: ring::signature::EcdsaKeyPair,
    pkcs8: Vec<u8>,
    rng: ring::rand::SystemRandom,
}

impl RingKey {
    fn generate() -> Result<RingKey, rcgen::Error> {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING as ALG};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ALG, &rng).map_err(|_| rcgen::Error::RemoteKeyError)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ALG, pkcs8.as_ref(), &rng)
            .map_err(|_| rcgen::Error::RemoteKeyError)?;
        Ok(RingKey {
            pair,
            pkcs8: pkcs8.as_ref().to_vec(),
            rng,
        })
    }

    /// The private key as PEM (`PRIVATE KEY`, PKCS#8).
    fn pem(&self) -> String {
        let b64 = data_encoding::BASE64.encode(&self.pkcs8);
        let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END PRIVATE KEY-----\n");
        out
    }
}

impl rcgen::PublicKeyData for RingKey {
    fn der_bytes(&self) -> &[u8] {
        use ring::signature::KeyPair;
        self.pair.public_key().as_ref()
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RingKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.pair
            .sign(&self.rng, msg)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// rustls server config for QUIC with the given ALPN.
pub fn server_config(id: &Identity, alpn: &[u8]) -> Result<rustls::ServerConfig, TlsError> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(id.certs.clone(), id.key.clone_key())?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// How a client decides to trust the relay.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// The end-entity certificate's SHA-256 must equal this (self-signed relays).
    Pin([u8; 32]),
    /// The chain must verify against the CA certificates in this PEM file, for the server name.
    CaFile(PathBuf),
}

/// rustls client config for QUIC.
pub fn client_config(trust: &ServerTrust, alpn: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut cfg = match trust {
        ServerTrust::Pin(fp) => builder
            .dangerous() // not dangerous: the pin is checked below, and the handshake signature too
            .with_custom_certificate_verifier(Arc::new(PinVerifier {
                pin: *fp,
                algs: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        ServerTrust::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&read(path)?).filter_map(Result::ok) {
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: path.clone(),
                    what: "CA certificate",
                });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// Accepts exactly the certificate whose SHA-256 is pinned, and checks the handshake signature with it.
#[derive(Debug)]
struct PinVerifier {
    pin: [u8; 32],
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if sha256(end_entity) == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate fingerprint does not match the pinned SHA-256".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not used".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TlsLayer;

    #[test]
    fn self_signed_identity_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsLayer::default().resolve();
        let a = load_or_create_identity(&cfg, dir.path()).unwrap();
        let b = load_or_create_identity(&cfg, dir.path()).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        server_config(&a, b"x").unwrap();
        let fp = fingerprint_hex(&a.sha256());
        let with_colons: String = fp
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&with_colons).unwrap(), a.sha256());
        assert!(parse_fingerprint("abc").is_err());
        client_config(&ServerTrust::Pin(a.sha256()), b"x").unwrap();
        client_config(&ServerTrust::CaFile(dir.path().join("tls/cert.pem")), b"x").unwrap();
    }
}
