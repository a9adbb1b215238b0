//! Exit codes that tell an operator what to do, through the binary against the sandbox: a job
//! that asks for a namespace or table the gateway does not have ends with 7, not with 4 (which
//! cron and alerting read as a gateway outage), in a plain step and in a `load` step.

use crate::common::*;

/// A plain step that reads a table's schema.
fn schema_step(namespace: &str, table: &str) -> String {
    format!(
        "[[step]]\nid = \"schema\"\nget = \"/dap/query/{namespace}/table/{table}/schema\"\noutputs = {{ version = \"$.version\" }}\n"
    )
}

#[test]
fn a_table_that_does_not_exist_is_exit_7() {
    Test::new()
        .job("job.toml", &schema_step("canvas", "no_such_table"))
        .status(7)
        .stderr_has(&[
            "NotFoundError: table `no_such_table` does not exist",
            "job: failed (exit 7)",
        ])
        .run();
}

#[test]
fn a_namespace_that_does_not_exist_is_exit_7() {
    Test::new()
        .job(
            "job.toml",
            "[[step]]\nid = \"tables\"\nget = \"/dap/query/no_such_namespace/table\"\n",
        )
        .status(7)
        .stderr_has(&["NotFoundError: namespace `no_such_namespace` does not exist"])
        .run();
}

#[test]
fn a_job_id_the_gateway_does_not_know_is_still_a_gateway_failure() {
    // Not a name the job file asked for: the gateway lost its own job.
    Test::new()
        .job(
            "job.toml",
            "[[step]]\nid = \"job\"\nget = \"/dap/job/no-such-job\"\n",
        )
        .status(4)
        .stderr_has(&["answered 404 Not Found: NotFoundError: job `no-such-job` does not exist"])
        .run();
}

/// A replicate job over `tables` of `namespace`, into SQLite under the output folder.
fn load_job(namespace: &str, tables: &[&str]) -> String {
    format!(
        "[vars]\ntables = {}\n\n[[step]]\nid = \"replicate\"\nfor_each = \"tables\"\nas = \"table\"\nload = {{ namespace = \"{namespace}\", table = \"{{{{ table }}}}\" }}\n",
        serde_json::to_string(tables).unwrap()
    )
}

#[test]
fn a_load_of_a_table_that_does_not_exist_is_exit_7_and_the_other_tables_load() {
    let t = Test::new()
        .job(
            "job.toml",
            &load_job("canvas", &["accounts", "no_such_table"]),
        )
        .status(7)
        .stderr_has(&[
            "(item `no_such_table`)",
            "NotFoundError: table `no_such_table` does not exist",
            "canvas.accounts: snapshot",
        ])
        .run();
    let db = rusqlite::Connection::open(t.out().join("replica.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM canvas__accounts", [], |r| r.get(0))
        .expect("accounts loaded");
    assert!(rows > 0);
}

#[test]
fn a_load_from_a_namespace_that_does_not_exist_is_exit_7() {
    Test::new()
        .job("job.toml", &load_job("no_such_namespace", &["users"]))
        .status(7)
        .stderr_has(&["NotFoundError: namespace `no_such_namespace` does not exist"])
        .run();
}

#[test]
fn a_sandbox_that_cannot_listen_on_its_address_names_it_and_is_exit_4() {
    // The port is held here, so the sandbox cannot listen on it.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    Test::new()
        .command(&["sandbox", "--addr", &addr])
        .status(4)
        .stderr_has(&[&format!("error: cannot start the sandbox on `{addr}`: ")])
        .run();
    drop(held);
}
