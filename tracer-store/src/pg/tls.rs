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
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        verify_server_cert_signed_by_trust_anchor, verify_server_name,
    },
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
    server::ParsedCertificate,
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
    root: Option<Root>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Root {
    File(PathBuf),
    /// `sslrootcert=system` (libpq 16): the system's trusted roots.
    System,
}

/// Whether URL has the one shape this code, tokio-postgres and libpq all read alike: a
/// `postgresql://` (or `postgres://`) URL whose credentials (up to the first `@`) hold no
/// `/` or `?` and whose hosts hold no `@`. Elsewhere they differ (tokio-postgres takes the
/// first `@` anywhere as the end of the credentials), and a mode or a password could be
/// read from the wrong place; such characters must be written %40, %2F, %3F.
pub(crate) fn well_formed(url: &str) -> bool {
    let Some(p) = scheme_len(url) else {
        return false;
    };
    let rest = &url[p..];
    let hosts = match rest.find('@') {
        Some(at) if rest[..at].contains(['/', '?']) => return false,
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let end = hosts.find(['/', '?']).unwrap_or(hosts.len());
    !hosts[..end].contains('@')
}

/// The length of the URL's `postgresql://` or `postgres://`.
fn scheme_len(url: &str) -> Option<usize> {
    ["postgresql://", "postgres://"].iter().find(|p| url.starts_with(*p)).map(|p| p.len())
}

/// What a URL that is not `well_formed` gets told (it is never repeated: it may hold a
/// password).
pub(crate) const SHAPE: &str = "not a URL of the form postgresql://USER@HOST[:PORT]/DB[?PARAMS] \
     (an @, / or ? in the user or password is written %40, %2F, %3F)";

/// Where the query's `?` is, read as tokio-postgres reads a URL: the credentials up to the
/// first `@`, the hosts up to `/` or `?`, the database up to `?` (a `?` in a password is
/// the password's). None: no query.
pub(crate) fn query_start(url: &str) -> Option<usize> {
    let mut at = scheme_len(url)?;
    if let Some(i) = url[at..].find('@') {
        at += i + 1;
    }
    at += url[at..].find(['/', '?'])?;
    if url[at..].starts_with('/') {
        at += url[at..].find('?')?;
    }
    Some(at)
}

/// The URL's query parameters, each as written and with its key %-decoded (what
/// tokio-postgres compares); a key that does not decode is an error.
pub(crate) fn params(query: &str) -> Result<Vec<(String, &str)>, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let k = kv.split_once('=').map_or(kv, |(k, _)| k);
            let key = percent_decoded(k).map_err(|()| "a parameter name with a bad %-escape".to_owned())?;
            Ok((key, kv))
        })
        .collect()
}

/// The URL without its TLS parameters, and what they (or the environment) ask.
pub(crate) fn split(url: &str) -> Result<(String, Tls), String> {
    if !well_formed(url) {
        return Err(SHAPE.into());
    }
    let (base, query) = match query_start(url) {
        Some(q) => (&url[..q], &url[q + 1..]),
        None => (url, ""),
    };
    let (mut mode, mut root, mut rest) = (None, None, Vec::new());
    for (key, kv) in params(query)? {
        let value = || {
            let v = kv.split_once('=').map_or("", |(_, v)| v);
            percent_decoded(v).map_err(|()| format!("{key}: a value with a bad %-escape"))
        };
        match key.as_str() {
            "sslmode" => {
                let v = value()?;
                mode = Some(Mode::parse(&v).ok_or_else(|| format!("sslmode={v}: the mode is {MODES}"))?);
            }
            "sslrootcert" => root = Some(value()?),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!("{key}: client certificates are not supported; log in with a password (.pgpass)"));
            }
            "sslnegotiation" => return Err("sslnegotiation: not supported (TLS is asked for the usual way)".into()),
            _ => rest.push(kv),
        }
    }
    let mode = match mode {
        Some(m) => Some(m),
        None => match std::env::var("PGSSLMODE") {
            Ok(v) => Some(Mode::parse(&v).ok_or_else(|| format!("PGSSLMODE={v}: the mode is {MODES}"))?),
            Err(_) => None,
        },
    };
    let root = root.or_else(|| std::env::var("PGSSLROOTCERT").ok()).map(|r| match r.as_str() {
        "system" => Root::System,
        _ => Root::File(r.into()),
    });
    // The system's roots vouch for every name they signed: only the name check makes them a
    // check of the server (libpq 16 refuses weaker modes with them too).
    let mode = match (mode, &root) {
        (None, Some(Root::System)) => Mode::VerifyFull,
        (Some(m), Some(Root::System)) if m != Mode::VerifyFull => {
            return Err(
                "sslrootcert=system: only with sslmode=verify-full (the system's roots vouch for any name they signed)"
                    .into(),
            );
        }
        (m, _) => m.unwrap_or(Mode::Prefer),
    };
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, Tls { mode, root }))
}

/// `%XX` escapes decoded.
fn percent_decoded(v: &str) -> Result<String, ()> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(v.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(())?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

impl Tls {
    /// `allow`/`prefer`: a failed handshake is tried again without TLS, as libpq does.
    pub(crate) fn falls_back(&self) -> bool {
        matches!(self.mode, Mode::Allow | Mode::Prefer)
    }

    /// The connector for these settings. Fails before any connection when a checking mode
    /// has no root certificate or the file holds none.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // libpq's default root certificate, used when it exists.
        let home_root = std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.exists())
            .map(Root::File);
        let roots = match (self.mode, self.root.clone().or(home_root)) {
            (Mode::VerifyCa | Mode::VerifyFull, None) => {
                return Err(format!(
                    "sslmode={}: no root certificate to check the server's against: give sslrootcert=FILE (or ~/.postgresql/root.crt)",
                    if self.mode == Mode::VerifyCa { "verify-ca" } else { "verify-full" }
                ));
            }
            (Mode::VerifyCa | Mode::VerifyFull | Mode::Require, Some(r)) => Some(Arc::new(roots(&r)?)),
            _ => None,
        };
        let verifier = Arc::new(Verifier { provider: provider.clone(), roots, name: self.mode == Mode::VerifyFull });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }
}

/// The root certificates: a PEM file's, or the system's.
fn roots(root: &Root) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match root {
        Root::File(path) => {
            let what = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| what(&e))? {
                store.add(cert.map_err(|e| what(&e))?).map_err(|e| what(&e))?;
            }
            if store.is_empty() {
                return Err(what(&"no certificate in it"));
            }
        }
        Root::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert=system: no trusted root certificate found on this system {:?}",
                    found.errors
                ));
            }
        }
    }
    Ok(store)
}

/// What a mode checks of the server's certificate: the chain against the roots (`roots`),
/// and the name (`name`, verify-full), or nothing (prefer, require without a root: encrypted,
/// whoever the server is, as libpq). The handshake's signatures are always checked against
/// the certificate sent.
#[derive(Debug)]
struct Verifier {
    provider: Arc<CryptoProvider>,
    roots: Option<Arc<RootCertStore>>,
    name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        let algs = self.provider.signature_verification_algorithms.all;
        verify_server_cert_signed_by_trust_anchor(&cert, roots, intermediates, now, algs)?;
        if self.name {
            verify_server_name(&cert, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
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
        assert_eq!(tls.root, Some(Root::File("/a b/ca.pem".into())));
        let e = split("postgresql://u@h/db?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode=verify") && e.contains("verify-full"), "{e}");
        assert!(split("postgresql://u@h/db?sslcert=/c.pem").unwrap_err().contains("client certificates"));
        assert!(split("postgresql://u@h/db?sslrootcert=%zz").unwrap_err().contains("%-escape"));
        assert!(split("postgresql://u@h/db?sslnegotiation=direct").unwrap_err().contains("sslnegotiation"));
    }

    /// What tokio-postgres reads as `sslmode` is what is read here: a %-escaped key, an
    /// escaped `?` in the password.
    #[test]
    fn the_mode_is_read_where_the_client_library_reads_it() {
        for url in [
            "postgresql://u:pw@h/db?ssl%6Dode=require",
            "postgresql://u:hun%3Fter2@h/db?sslmode=require",
            "postgres://u:a%3Fsslmode=disable@h/db?sslmode=require",
            "postgresql://u@h:5432?sslmode=require",
        ] {
            let (rest, tls) = split(url).unwrap();
            assert_eq!(tls.mode, Mode::Require, "{url}");
            assert!(!rest.ends_with("require"), "{url} -> {rest}");
        }
    }

    /// Shapes the client library reads otherwise than libpq (the first `@` anywhere ends
    /// its credentials): refused, never read with the mode or password elsewhere.
    #[test]
    fn urls_read_differently_by_the_libraries_are_refused() {
        for url in [
            "host=h user=u password=pw dbname=db sslmode=require",
            "postgresql://localhost/db?sslmode=verify-full&application_name=me@127.0.0.1:5/db",
            "postgresql://h?application_name=me@x",
            "postgresql://u:p@ss@h/db?sslmode=require",
        ] {
            assert_eq!(split(url).unwrap_err(), SHAPE, "{url}");
        }
        assert!(well_formed("postgresql://u:p%40ss@h/db?application_name=me@laptop"));
        assert!(well_formed("postgresql://u@%2Frun%2Fpostgresql:5432/db"));
    }

    #[test]
    fn system_roots_check_the_name() {
        let (_, tls) = split("postgresql://u@h/db?sslrootcert=system").unwrap();
        assert_eq!((tls.mode, tls.root), (Mode::VerifyFull, Some(Root::System)));
        for weaker in ["require", "verify-ca", "prefer"] {
            let e = split(&format!("postgresql://u@h/db?sslrootcert=system&sslmode={weaker}")).unwrap_err();
            assert!(e.contains("verify-full"), "{e}");
        }
    }

    #[test]
    fn an_unreadable_root_certificate_fails_before_connecting() {
        let (_, tls) = split("postgresql://u@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem").unwrap();
        let e = tls.connector().err().expect("no root file");
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
