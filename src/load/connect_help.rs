//! What to do when a connection to the replica's server cannot be opened, shared by the
//! databases' own advice (`pg::error`, `mysql::error`, each chosen from its server's error
//! codes): a TLS failure found in the error's causes, in the parameter names of the database's
//! client, and the general checks.

use std::error::Error;

pub(crate) const WHERE: &str =
    "the connection string (`[database] url`, DAP_CONNECTION_STRING or --database)";

/// What to check when nothing more precise is known.
pub(crate) fn general() -> String {
    format!("check {WHERE} and that the server is running and reachable from here")
}

/// The help for a failed TLS handshake, in the parameter names of the database's client.
pub(crate) fn tls(e: &rustls::Error, ca: &str, chain_only: &str, client: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is for another host name: connect with a name the certificate holds, or use `{chain_only}` to check its chain only"
        ),
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => format!(
            "the server's certificate is not signed by a CA dap-run trusts: give the server's CA bundle (your provider publishes it, e.g. Amazon RDS's global-bundle.pem) with `{ca}=/path/to/ca.pem`"
        ),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired: renew it on the server".to_owned()
        }
        rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired
            | rustls::AlertDescription::HandshakeFailure
            | rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA,
        ) => format!(
            "the server refused the TLS handshake: it may want a client certificate (`{client}`) signed by a CA it trusts"
        ),
        _ => format!("check the TLS settings in {WHERE}"),
    }
}

/// The first error of type `T` among `e` and its causes, looking inside I/O errors (whose
/// `source` skips the error they wrap).
pub fn find<'a, T: Error + 'static>(e: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(t) = find::<T>(inner)
        {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_failure_inside_an_io_error_is_found_and_explained() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let e = mysql_async::Error::Io(mysql_async::IoError::Io(io));
        let help = crate::load::mysql::connect_help(&e);
        assert!(help.contains("`ssl-ca=/path/to/ca.pem`"), "{help}");
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(
            tls(&name, "sslrootcert", "sslmode=verify-ca", "x").contains("`sslmode=verify-ca`")
        );
        let no_tls =
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        assert!(
            crate::load::mysql::connect_help(&no_tls).starts_with("the server does not offer TLS")
        );
        assert!(find::<rustls::Error>(&std::io::Error::other("x")).is_none());
    }
}
