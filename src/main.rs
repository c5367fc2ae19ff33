//! The `partnercloud` command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// partnercloud: run 1C:Enterprise franchisees' client servers on KubeVirt.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every CustomResourceDefinition as multi-document YAML.
    Crd,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => match partnercloud::crdgen::all_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the CRDs: {error}");
                ExitCode::FAILURE
            }
        },
    }
}
