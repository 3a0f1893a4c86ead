//! TLS for every PostgreSQL connection, with libpq's `sslmode` meanings (rustls on ring):
//! - `disable`: never;
//! - `allow`, `prefer` (the default, as in libpq): when the server offers it, unverified;
//! - `require`: TLS or no connection; the certificate is checked against a root certificate
//!   when one is given or `~/.postgresql/root.crt` exists (libpq does the same);
//! - `verify-ca`: signed by the root certificate;
//! - `verify-full`: that, and issued for the host the URL names.
//!
//! `sslmode=` and `sslrootcert=` come from the URL, else from `PGSSLMODE` / `PGSSLROOTCERT`.
//! tokio-postgres knows only disable, prefer and require and no root certificate, so both are
//! taken out of the URL here and the checks are rustls's.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use postgres::config::SslMode;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};
use tokio_postgres_rustls::MakeRustlsConnect;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

const MODES: &str = "disable, allow, prefer, require, verify-ca or verify-full";

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => return None,
        })
    }

    /// What tokio-postgres asks of the server (`allow` tries TLS first, as `prefer` does).
    pub(crate) fn ssl_mode(self) -> SslMode {
        match self {
            Mode::Disable => SslMode::Disable,
            Mode::Allow | Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Tls {
    pub mode: Mode,
    root: Option<PathBuf>,
}

/// The URL without `sslmode`/`sslrootcert`, and what they (or the environment) ask.
pub(crate) fn split(url: &str) -> Result<(String, Tls), String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root, mut rest) = (None, None, Vec::new());
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslmode" => mode = Some(Mode::parse(v).ok_or_else(|| format!("sslmode={v}: the mode is {MODES}"))?),
            "sslrootcert" => root = Some(PathBuf::from(percent_decoded(v)?)),
            "sslcert" | "sslkey" => {
                return Err(format!("{k}: client certificates are not supported; log in with a password (.pgpass)"));
            }
            _ => rest.push(kv),
        }
    }
    let mode = match (mode, std::env::var("PGSSLMODE")) {
        (Some(m), _) => m,
        (None, Ok(v)) => Mode::parse(&v).ok_or_else(|| format!("PGSSLMODE={v}: the mode is {MODES}"))?,
        (None, Err(_)) => Mode::Prefer,
    };
    let root = root.or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, Tls { mode, root }))
}

/// `%XX` escapes of a URL parameter (a path may need them).
fn percent_decoded(v: &str) -> Result<String, String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = v.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| format!("sslrootcert={v}: a bad %-escape"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("sslrootcert={v}: not UTF-8"))
}

impl Tls {
    /// The connector for these settings. Fails before any connection when a checking mode
    /// has no root certificate or the file holds none.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // libpq's default root certificate, used when it exists.
        let home_root =
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")).filter(|p| p.exists());
        let root = self.root.clone().or(home_root).map(|p| match p.to_str() {
            // libpq 16's word for the system's trusted roots.
            Some("system") => PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            _ => p,
        });
        let chain = match (self.mode, root) {
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={}: no root certificate to check the server's against: give sslrootcert=FILE (or ~/.postgresql/root.crt)",
                    if self.mode == Mode::VerifyCa { "verify-ca" } else { "verify-full" }
                ));
            }
            (Mode::VerifyCa | Mode::VerifyFull | Mode::Require, Some(r)) => Some(webpki(&r, &provider)?),
            _ => None,
        };
        let verifier = Arc::new(Verifier { provider: provider.clone(), chain, name: self.mode == Mode::VerifyFull });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// rustls's own check of the chain and the name, against the roots in `path`.
fn webpki(path: &Path, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>, String> {
    let what = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
        roots.add(cert.map_err(|e| what(&e))?).map_err(|e| what(&e))?;
    }
    if roots.is_empty() {
        return Err(what(&"no certificate in it"));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().map_err(|e| what(&e))
}

/// What a mode checks of the server's certificate: the chain against the roots (`chain`),
/// and the name (`name`, verify-full), or nothing (prefer, require without a root: encrypted,
/// whoever the server is, as libpq). The handshake's signatures are always checked against
/// the certificate sent.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    chain: Option<Arc<WebPkiServerVerifier>>,
    name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // rustls checks the name after the chain: a name error means the chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.name => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_root_leave_the_url_and_bad_values_are_named() {
        let (url, tls) =
            split("postgresql://u@h/db?connect_timeout=3&sslmode=verify-full&sslrootcert=/a%20b/ca.pem").unwrap();
        assert_eq!(url, "postgresql://u@h/db?connect_timeout=3");
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.root.as_deref(), Some(Path::new("/a b/ca.pem")));
        let e = split("postgresql://u@h/db?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode=verify") && e.contains("verify-full"), "{e}");
        assert!(split("postgresql://u@h/db?sslcert=/c.pem").unwrap_err().contains("client certificates"));
        assert!(split("postgresql://u@h/db?sslrootcert=%zz").unwrap_err().contains("%-escape"));
    }

    #[test]
    fn an_unreadable_root_certificate_fails_before_connecting() {
        let (_, tls) = split("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = tls.connector().err().expect("no root file");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
