//! What to do when a connection to the replica's server cannot be opened: the `= help:` line
//! of [`DbError::PgConnect`](super::DbError::PgConnect) and
//! [`DbError::MysqlConnect`](super::DbError::MysqlConnect), chosen from the kind of failure
//! (the server's error code, a TLS failure found in the error's causes, the network).

use std::error::Error;

const WHERE: &str = "the connection string (`[database] url`, DAP_CONNECTION_STRING or --database)";

/// The help for a PostgreSQL connection that failed.
pub fn postgres(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return match db.code().code() {
            "28P01" | "28000" => format!(
                "check the user name and password in {WHERE}, and that the server's pg_hba.conf lets this user connect from this host (a `hostssl … cert` line needs `sslcert` and `sslkey`)"
            ),
            "3D000" => "create the database (as a role with CREATEDB: `CREATE DATABASE name;` in psql, or `createdb -h HOST -U USER name`), then grant the replica's user CREATE on it (see the README's \"Replica database\"); or correct its name in the connection string".to_owned(),
            "53300" => "the server has no free connection slot: try again later, or raise its max_connections".to_owned(),
            _ => general(),
        };
    }
    if let Some(t) = find::<rustls::Error>(e) {
        return tls(
            t,
            "sslrootcert",
            "sslmode=verify-ca",
            "sslcert` and `sslkey",
        );
    }
    // tokio-postgres says so only in its text.
    if e.to_string().contains("does not support TLS") {
        return "the server does not offer TLS: enable it on the server (`ssl = on`), or use `sslmode=prefer` (or `disable`) where the network is trusted".to_owned();
    }
    general()
}

/// The help for a MySQL connection that failed.
pub fn mysql(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => match s.code {
            1045 | 1698 => format!(
                "check the user name and password in {WHERE}, and that the user may connect from this host"
            ),
            1049 => "create the database (`CREATE DATABASE name CHARACTER SET utf8mb4;` as a user with the CREATE privilege), then grant the replica's user its privileges on it (see the README's \"Replica database\"); or correct its name in the connection string".to_owned(),
            1044 => "grant the user its privileges on the database (see the README's \"Replica database\")".to_owned(),
            1040 => "the server has no free connection: try again later, or raise its max_connections".to_owned(),
            _ => general(),
        },
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            "the server does not offer TLS: enable it on the server (`ssl_cert` and `ssl_key` in its configuration), or use `ssl-mode=PREFERRED` (or `DISABLED`) where the network is trusted".to_owned()
        }
        other => match find::<rustls::Error>(other) {
            Some(t) => tls(t, "ssl-ca", "ssl-mode=VERIFY_CA", "ssl-cert` and `ssl-key"),
            None => general(),
        },
    }
}

fn general() -> String {
    format!("check {WHERE} and that the server is running and reachable from here")
}

/// The help for a failed TLS handshake, in the parameter names of the database's client.
fn tls(e: &rustls::Error, ca: &str, chain_only: &str, client: &str) -> String {
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
        let help = mysql(&e);
        assert!(help.contains("`ssl-ca=/path/to/ca.pem`"), "{help}");
        let name = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert!(
            tls(&name, "sslrootcert", "sslmode=verify-ca", "x").contains("`sslmode=verify-ca`")
        );
        let no_tls =
            mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        assert!(mysql(&no_tls).starts_with("the server does not offer TLS"));
    }
}
