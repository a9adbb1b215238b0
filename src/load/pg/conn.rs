//! PostgreSQL connections: the driver's configuration built from the connection string as
//! [`crate::load::target`] read it (never from the string again), and TLS through rustls with
//! libpq's `sslmode` rules. The driver's errors become [`DbError`]s here, saying what failed
//! (their text and retry rules are in [`super::error`]).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::{SslMode as PgSslMode, TargetSessionAttrs};
use tokio_postgres::{Client, NoTls};

use crate::load::DbError;
use crate::load::target::{PgServer, Roots, SslMode, Tls};

/// Opens a connection. `sslmode` decides TLS: `disable`, `prefer` (the default), `require`,
/// `verify-ca`, `verify-full`, as libpq (see [`tls_config`]).
pub async fn connect(server: &PgServer) -> Result<Client, DbError> {
    let config = config(server);
    let fail = |source| DbError::from(super::error::PgError::Connect { source });
    if server.tls.mode == SslMode::Disable {
        let (client, conn) = config.connect(NoTls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    } else {
        let tls = tls_config(&server.tls)?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls);
        let (client, conn) = config.connect(tls).await.map_err(fail)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }
}

/// The driver's configuration, from the parsed connection string.
fn config(s: &PgServer) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(&s.host);
    if let Some(p) = s.port {
        c.port(p);
    }
    if let Some(u) = &s.user {
        c.user(u);
    }
    if let Some(p) = &s.password {
        c.password(p.expose());
    }
    if let Some(d) = &s.database {
        c.dbname(d);
    }
    let o = &s.options;
    if let Some(a) = o.hostaddr {
        c.hostaddr(a);
    }
    c.application_name(o.application_name.as_deref().unwrap_or("dap-run"));
    if let Some(t) = o.connect_timeout {
        c.connect_timeout(t);
    }
    if let Some(opts) = &o.options {
        c.options(opts);
    }
    if let Some(k) = o.keepalives {
        c.keepalives(k);
    }
    if let Some(i) = o.keepalives_idle {
        c.keepalives_idle(i);
    }
    if o.read_write {
        c.target_session_attrs(TargetSessionAttrs::ReadWrite);
    }
    c.ssl_mode(match s.tls.mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    c
}

/// TLS as libpq does it: `prefer` and `require` encrypt without checking the certificate,
/// `verify-ca` checks its chain against the CA roots (the `sslrootcert` file, else the
/// platform's), `verify-full` also the host name; `sslcert` and `sslkey` give the server a
/// client certificate.
fn tls_config(tls: &Tls) -> Result<rustls::ClientConfig, DbError> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let fail = |what: String| {
        move |e: rustls::Error| DbError::Tls {
            what,
            source: Box::new(e),
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = match &tls.roots {
        Roots::System => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(fail("the platform's certificate verifier".into()))?,
        ),
        Roots::File(path) => {
            let what = format!("the CA certificates of `{}`", path.display());
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| DbError::Tls {
                    what: what.clone(),
                    source: Box::new(e),
                })?;
            if certs.is_empty() {
                return Err(DbError::Tls {
                    what,
                    source: "no PEM certificate in the file".into(),
                });
            }
            for c in certs {
                roots.add(c).map_err(fail(what.clone()))?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| DbError::Tls {
                what,
                source: Box::new(e),
            })?
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(fail("the TLS protocol versions".into()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Libpq {
            inner: verifier,
            mode: tls.mode,
        }));
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some(client) => {
            let what = format!("the client certificate `{}`", client.cert.display());
            let chain = CertificateDer::pem_file_iter(&client.cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| DbError::Tls {
                    what: what.clone(),
                    source: Box::new(e),
                })?;
            let key = PrivateKeyDer::from_pem_file(&client.key).map_err(|e| DbError::Tls {
                what: format!("the client key `{}`", client.key.display()),
                source: Box::new(e),
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(fail(what))
        }
    }
}

/// libpq's certificate rules over a verifier: `prefer` and `require` accept any certificate,
/// `verify-ca` the chain whatever the name, `verify-full` the chain and the name.
#[derive(Debug)]
struct Libpq {
    inner: Arc<dyn ServerCertVerifier>,
    mode: SslMode,
}

impl ServerCertVerifier for Libpq {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        if self.mode < SslMode::VerifyCa {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(NotValidForName))
            | Err(rustls::Error::InvalidCertificate(NotValidForNameContext { .. }))
                if self.mode == SslMode::VerifyCa =>
            {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
