//! The `dap-run` binary: parse flags, call the library, exit with its code.

use clap::Parser as _;

fn main() {
    let cli = dap_run::cli::Cli::parse();
    std::process::exit(dap_run::app::main(cli));
}
