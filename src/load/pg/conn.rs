//! PostgreSQL connections: the connection string (with the official client's `ssl` parameter),
//! TLS through rustls with libpq's `sslmode` rules. The driver's errors become
//! [`DbError`]s here, saying what failed (their text and retry rules are in `db_error`).

use tokio_postgres::{Client, NoTls};

use crate::load::DbError;
use crate::load::db_error::{Engine, UrlProblem};

/// Opens a connection. `sslmode` (or the official client's `ssl`) decides TLS: `disable`,
/// `prefer` (the default), `require`, `verify-ca`, `verify-full`; TLS is rustls with the
/// platform's certificate verifier, so any TLS connection verifies the server.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    let what = crate::load::mask(url);
    let bad = |problem| DbError::BadUrl {
        engine: Engine::Postgres,
        problem,
    };
    let mut parsed = url::Url::parse(url).map_err(|e| bad(UrlProblem::Parse(e)))?;
    let mut ssl = None;
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| {
            if k == "ssl" || k == "sslmode" {
                ssl = Some(v.into_owned());
                None
            } else {
                Some((k.into_owned(), v.into_owned()))
            }
        })
        .collect();
    parsed.set_query(None);
    if !pairs.is_empty() {
        parsed.query_pairs_mut().extend_pairs(pairs);
    }
    let mut config: tokio_postgres::Config = parsed
        .as_str()
        .parse()
        .map_err(|e| bad(UrlProblem::Postgres(e)))?;
    if config.get_application_name().is_none() {
        config.application_name("dap-run");
    }
    let ssl = ssl.unwrap_or_else(|| "prefer".to_owned());
    let mode = match ssl.as_str() {
        "disable" | "false" => tokio_postgres::config::SslMode::Disable,
        "allow" | "prefer" => tokio_postgres::config::SslMode::Prefer,
        "require" | "verify-ca" | "verify-full" | "true" => {
            tokio_postgres::config::SslMode::Require
        }
        other => {
            return Err(bad(UrlProblem::UnknownSslMode {
                value: other.to_owned(),
            }));
        }
    };
    config.ssl_mode(mode);
    let fail = |source| DbError::PgConnect {
        target: what.clone(),
        source,
    };
    if mode == tokio_postgres::config::SslMode::Disable {
        let (client, conn) = config.connect(NoTls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    } else {
        let tls = tls_config(&ssl)?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let (client, conn) = config.connect(tls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

/// TLS as libpq does it: `prefer` and `require` encrypt without checking the certificate,
/// `verify-ca` checks the chain against the platform's roots, `verify-full` also the host name.
fn tls_config(mode: &str) -> Result<rustls::ClientConfig, DbError> {
    use rustls_platform_verifier::BuilderVerifierExt as _;
    let fail = |source| DbError::Tls { source };
    let verifier = rustls_platform_verifier::Verifier::new(
        rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider())),
    )
    .map_err(fail)?;
    match mode {
        "verify-full" => Ok(rustls::ClientConfig::builder()
            .with_platform_verifier()
            .map_err(fail)?
            .with_no_client_auth()),
        _ => Ok(rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Libpq {
                inner: verifier,
                check_chain: mode == "verify-ca",
            }))
            .with_no_client_auth()),
    }
}

/// libpq's `require`/`verify-ca` certificate rules over the platform verifier.
#[derive(Debug)]
struct Libpq {
    inner: rustls_platform_verifier::Verifier,
    check_chain: bool,
}

impl rustls::client::danger::ServerCertVerifier for Libpq {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(rustls::client::danger::ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Maps a driver error to a [`DbError`] saying what was being done.
pub(super) fn db_err(what: &'static str) -> impl Fn(tokio_postgres::Error) -> DbError + Copy {
    move |source| DbError::Postgres { what, source }
}
