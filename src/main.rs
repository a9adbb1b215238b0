//! The `dap-run` binary: parse flags, call the library, exit with its code.

fn main() {
    let cli = dap_run::cli::parse();
    std::process::exit(dap_run::app::main(cli));
}
