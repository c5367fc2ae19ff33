//! The `partnercloud` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use partnercloud::controllers::context::{Settings, SystemClock};
use partnercloud::controllers::mirror::ImageMirror;
use partnercloud::controllers::partner_account::build::ClusterNetwork;
use partnercloud::simulator::{self, SimConfig};

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
    /// Run the operator against the cluster of the current kubeconfig.
    Run {
        /// Reconciles running at once per controller (1 or more: kube-runtime
        /// reads 0 as "unbounded", which this flag never allows).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        /// Rewrite image URLs by prefix before fetching, FROM=TO (repeatable).
        #[arg(long = "image-mirror")]
        image_mirrors: Vec<ImageMirror>,
        /// The cluster's pod CIDR (repeatable), cut out of the client
        /// isolation policy's "outside the cluster" egress rule.
        #[arg(long = "pod-cidr")]
        pod_cidrs: Vec<String>,
        /// Where to serve /healthz and /readyz for the kubelet's probes.
        #[arg(long, default_value = "0.0.0.0:8080")]
        health_addr: std::net::SocketAddr,
    },
    /// Run the virtualization simulator (plays KubeVirt and CDI) against the
    /// cluster of the current kubeconfig.
    Simulate {
        /// Latency of each simulated step, in milliseconds.
        #[arg(long, default_value_t = 0)]
        step_ms: u64,
    },
    /// Start a local control plane, the operator and the simulator, apply
    /// the examples and show them converging.
    Dev {
        /// Exit 0 once every example object is Ready; non-zero with the
        /// blocking conditions if that does not happen within --timeout.
        #[arg(long)]
        until_ready: bool,
        /// Seconds to wait with --until-ready.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Directory of example manifests.
        #[arg(long, default_value = "manifests/examples")]
        examples: PathBuf,
        /// Latency of each simulated step, in milliseconds.
        #[arg(long, default_value_t = 300)]
        step_ms: u64,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,kube=warn,kube_runtime=warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn client() -> Result<kube::Client, String> {
    kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach a cluster from the current kubeconfig: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crd => partnercloud::crdgen::all_yaml()
            .map(|yaml| print!("{yaml}"))
            .map_err(|e| format!("cannot render the CRDs: {e}")),
        Command::Run {
            concurrency,
            image_mirrors,
            pod_cidrs,
            health_addr,
        } => {
            init_tracing();
            match client().await {
                Ok(client) => {
                    let settings = Settings {
                        concurrency,
                        image_mirrors,
                        cluster_network: ClusterNetwork { pod_cidrs },
                        ..Settings::default()
                    };
                    let readiness = Arc::new(partnercloud::health::Readiness::default());
                    let probes =
                        tokio::spawn(partnercloud::health::serve(health_addr, readiness.clone()));
                    readiness.set(true);
                    partnercloud::controllers::run_all(client, Arc::new(SystemClock), settings)
                        .await;
                    readiness.set(false);
                    probes.abort();
                    Err("the controllers stopped (a signal, or a watch that could not be restarted)".into())
                }
                Err(e) => Err(e),
            }
        }
        Command::Simulate { step_ms } => {
            init_tracing();
            match client().await {
                Ok(client) => simulator::run(
                    client,
                    SimConfig {
                        step: Duration::from_millis(step_ms),
                        ..SimConfig::default()
                    },
                )
                .await
                .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            }
        }
        Command::Dev {
            until_ready,
            timeout,
            examples,
            step_ms,
        } => {
            init_tracing();
            let options = partnercloud::dev::DevOptions {
                examples,
                until_ready,
                timeout: Duration::from_secs(timeout),
                step: Duration::from_millis(step_ms),
            };
            partnercloud::dev::run(options)
                .await
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
