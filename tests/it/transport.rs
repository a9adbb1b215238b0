//! The transport against what the sandbox does not emulate: a host without CA certificates.

use crate::common::*;

const ONE_GET: &str = r#"
[[step]]
id = "tables"
get = "/dap/query/canvas/table"
outputs = { tables = "$.tables" }
"#;

#[test]
fn a_host_without_ca_certificates_is_exit_4_and_says_what_to_install() {
    // An empty bundle where the system's would be: the HTTPS client cannot be built.
    let t = Test::new()
        .job("job.toml", ONE_GET)
        .file("empty.pem", "")
        .env("SSL_CERT_FILE", "empty.pem")
        .env("DAP_API_URL", "https://127.0.0.1:9")
        .run();
    t.expect_code(4)
        .stderr_has(&[
            "cannot set up the HTTPS client: ",
            "No CA certificates were loaded from the system",
            "= help: install the system's CA certificates (Debian and Ubuntu: `apt-get install ca-certificates`",
            "or point SSL_CERT_FILE or SSL_CERT_DIR at a CA bundle",
        ])
        .no_secret();
    assert!(
        !t.run.stderr.contains("local file") && !t.run.stderr.contains("`the HTTP client`"),
        "{}",
        t.run.stderr
    );
}
